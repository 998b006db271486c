import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StageOutputs } from "../../../src/contract/outputs";
import { armedFailpoint, failpoint } from "../../../src/pipeline/failpoint";
import { FileStore } from "../../../src/store/fileStore";
import { releaseRecords, type StoreLog } from "../../../src/store/store";
import {
  closeSettledRelease,
  recordCutShortUpdate,
  rollbackUnderWay,
  unlandedRelease,
} from "../../../src/pipeline/recovery";

const image = "registry.local/checkout@sha256:" + "b".repeat(64);
const record = (over: Record<string, unknown> = {}) => ({
  id: "r-20260101-000000-abcd",
  phase: "canary",
  candidateSlot: "green",
  artifact: { image, version: "2.0.0" },
  previous: { slot: "blue", image: image.replace(/b/g, "a"), version: "1.0.0" },
  position: 1,
  steps: 2,
  startedAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:01:00.000Z",
  ...over,
});
const outputs = (release: Record<string, unknown> | undefined, stable = "blue") =>
  ({
    stableSlot: stable,
    weights: stable === "blue" ? { blue: 50, green: 50 } : { blue: 0, green: 100 },
    ...(release ? { release } : {}),
  }) as unknown as StageOutputs;
const freshLog = () => new FileStore(mkdtempSync(join(tmpdir(), "slipway-recovery-"))).log("local");
const id = record().id;
const started = (log: StoreLog, transition: string, updatedAt: string) =>
  log.append({
    stage: "local",
    releaseId: id,
    event: "update.started",
    reason: `release ${id}: ${transition}`,
    figures: { transition, updatedAt },
  });

describe("failpoints (fault injection)", () => {
  it("is inert without SLIPWAY_FAILPOINT and names the variable on a bad value", async () => {
    expect(armedFailpoint({})).toBeUndefined();
    await failpoint("before", "deploy"); // returns at once: nothing armed in this process
    for (const bad of [
      "during",
      "during:lunch",
      "after:pause",
      "before:analysis",
      "x:deploy",
      "during:deploy:1",
    ])
      expect(() =>
        armedFailpoint({ SLIPWAY_FAILPOINT: bad, SLIPWAY_FAILPOINT_FILE: "/tmp/m" }),
      ).toThrow(
        new RegExp(
          `SLIPWAY_FAILPOINT=${JSON.stringify(bad)}: not a failpoint; allowed: before\\|during\\|landed\\|after:deploy`,
        ),
      );
    expect(() => armedFailpoint({ SLIPWAY_FAILPOINT: "during:pause" })).toThrow(
      /SLIPWAY_FAILPOINT_FILE/,
    );
    expect(
      armedFailpoint({ SLIPWAY_FAILPOINT: "after:scaleDown", SLIPWAY_FAILPOINT_FILE: "/tmp/m" }),
    ).toEqual({
      when: "after",
      kind: "scaleDown",
      file: "/tmp/m",
    });
  });

  it("writes the marker and blocks until a signal", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "slipway-fp-")), "marker");
    process.env.SLIPWAY_FAILPOINT = "during:pause";
    process.env.SLIPWAY_FAILPOINT_FILE = file;
    try {
      const blocked = failpoint("during", "pause");
      expect(readFileSync(file, "utf8")).toMatch(/^during:pause pid \d+/);
      let done = false;
      void blocked.then(() => (done = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(done).toBe(false);
      process.emit("SIGINT", "SIGINT");
      await blocked;
    } finally {
      delete process.env.SLIPWAY_FAILPOINT;
      delete process.env.SLIPWAY_FAILPOINT_FILE;
    }
  });
});

describe("recovery records after a kill", () => {
  it("an update cut short that landed (the outputs carry its updatedAt) is recorded as succeeded", async () => {
    const log = freshLog();
    await started(log, "promote", "2026-01-01T00:02:00.000Z");
    await recordCutShortUpdate(
      log,
      "local",
      id,
      outputs(
        record({
          phase: "promoted",
          updatedAt: "2026-01-01T00:02:00.000Z",
          promotedAt: "2026-01-01T00:02:00.000Z",
        }),
        "green",
      ),
    );
    const events = (await releaseRecords(log, id)).map((r) => [r.event, r.figures?.transition]);
    expect(events).toEqual([
      ["update.started", "promote"],
      ["update.succeeded", "promote"],
      ["release.promoted", undefined],
    ]);
    // Recorded once: a second recovery adds nothing.
    await recordCutShortUpdate(log, "local", id, outputs(record({ phase: "promoted" })));
    expect(await releaseRecords(log, id)).toHaveLength(3);
  });

  it("one that did not land is recorded as failed, and a rollback cut short is still under way", async () => {
    const log = freshLog();
    await started(log, "rollback", "2026-01-01T00:02:00.000Z");
    await recordCutShortUpdate(log, "local", id, outputs(record()));
    expect((await releaseRecords(log, id)).at(-1)).toMatchObject({
      event: "update.failed",
      figures: { cutShort: true },
    });
    expect(await rollbackUnderWay(log, id)).toMatch(/rollback/);
  });

  it("a release the stack says ended, without its closing record, is closed once", async () => {
    const log = freshLog();
    await started(log, "scaleDown", "2026-01-01T00:03:00.000Z");
    const out = outputs(
      record({ phase: "completed", updatedAt: "2026-01-01T00:03:00.000Z" }),
      "green",
    );
    expect(await closeSettledRelease(log, "local", out)).toBe("promoted");
    expect((await releaseRecords(log, id)).map((r) => r.event)).toEqual([
      "update.started",
      "update.succeeded",
      "release.scaledDown",
      "release.completed",
    ]);
    expect(await closeSettledRelease(log, "local", out)).toBeUndefined();
  });

  it("a release started whose deploy never landed is found from release.started", async () => {
    const log = freshLog();
    await log.append({
      stage: "local",
      releaseId: id,
      event: "release.started",
      figures: { record: record({ phase: "deploying", position: 0 }) },
    });
    expect((await unlandedRelease(log, outputs(undefined)))?.id).toBe(id);
    // Once the stack names it, or the log closes it, it is not unlanded.
    expect(await unlandedRelease(log, outputs(record()))).toBeUndefined();
    await log.append({ stage: "local", releaseId: id, event: "release.rolledBack" });
    expect(await unlandedRelease(log, outputs(undefined))).toBeUndefined();
  });
});
