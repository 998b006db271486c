import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StageOutputs } from "../../../src/contract/outputs";
import {
  CLOSING_EVENTS,
  closingEventOfPhase,
  OUTCOMES,
  RELEASE_PHASES,
  SETTLED_PHASES,
} from "../../../src/domain";
import { FileStore } from "../../../src/store/fileStore";
import { verifiedRecords } from "../../../src/store/store";
import { summarize } from "../../../src/pipeline/operations";
import { closeSettledRelease, unlandedRelease } from "../../../src/pipeline/recovery";

/** Issue 21: "ended" is defined once (src/domain/outcomes.ts) and read the same everywhere. */
const image = "registry.local/checkout@sha256:" + "b".repeat(64);
const id = "r-20260101-000000-abcd";
const record = (over: Record<string, unknown> = {}) => ({
  id,
  phase: "deploying",
  candidateSlot: "green",
  artifact: { image, version: "2.0.0" },
  previous: { slot: "blue", image: image.replace(/b/g, "a"), version: "1.0.0" },
  position: 0,
  steps: 2,
  startedAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  ...over,
});
const outputs = (release?: Record<string, unknown>) =>
  ({
    stableSlot: "blue",
    weights: { blue: 100, green: 0 },
    ...(release ? { release } : {}),
  }) as unknown as StageOutputs;
const freshLog = () => new FileStore(mkdtempSync(join(tmpdir(), "slipway-ended-"))).log("local");

describe("one definition of ended", () => {
  it("closes a release with the events of the outcomes that end one; paused and interrupted leave it open", async () => {
    expect([...CLOSING_EVENTS].sort()).toEqual([
      "release.completed",
      "release.failed",
      "release.refused",
      "release.rolledBack",
    ]);
    expect(CLOSING_EVENTS).not.toContain(OUTCOMES.paused.closingEvent);
    expect(CLOSING_EVENTS).not.toContain(OUTCOMES.interrupted.closingEvent);
  });

  it("settles the stack's record in the phases of those outcomes, each a declared phase", async () => {
    expect(SETTLED_PHASES).toEqual(["completed", "rolledBack", "failed"]);
    for (const phase of SETTLED_PHASES) expect(RELEASE_PHASES).toContain(phase);
    expect(closingEventOfPhase("completed")).toBe("release.completed");
    expect(closingEventOfPhase("rolledBack")).toBe("release.rolledBack");
    expect(closingEventOfPhase("canary")).toBeUndefined();
  });

  it("a release whose log ends in release.failed is not resumed as unlanded", async () => {
    const log = freshLog();
    await log.append({
      stage: "local",
      releaseId: id,
      event: "release.started",
      figures: { record: record() },
    });
    await log.append({
      stage: "local",
      releaseId: id,
      event: "update.failed",
      reason: "deploy failed",
    });
    expect((await unlandedRelease(log, outputs()))?.id).toBe(id);
    await log.append({
      stage: "local",
      releaseId: id,
      event: "release.failed",
      reason: "rollback failed",
    });
    expect(await unlandedRelease(log, outputs())).toBeUndefined();
    // The summary agrees: it ended, failed.
    const [s] = summarize(await verifiedRecords(log));
    expect(s).toMatchObject({ releaseId: id, outcome: "failed" });
    expect(s!.endedAt).toBeDefined();
  });

  it("a stack that shows the rollback landed after a release.failed gets its release.rolledBack", async () => {
    const log = freshLog();
    await log.append({
      stage: "local",
      releaseId: id,
      event: "release.started",
      figures: { record: record() },
    });
    await log.append({
      stage: "local",
      releaseId: id,
      event: "release.failed",
      reason: "rollback failed",
    });
    const landed = outputs(record({ phase: "rolledBack", position: 1, reason: "smoke" }));
    expect(await closeSettledRelease(log, "local", landed)).toBe("rolledBack");
    expect((await verifiedRecords(log)).at(-1)!.event).toBe("release.rolledBack");
    // Written once: the next look finds it.
    expect(await closeSettledRelease(log, "local", landed)).toBeUndefined();
  });

  it("summarises paused releases as paused, without an end", async () => {
    const log = freshLog();
    await log.append({ stage: "local", releaseId: id, event: "release.started" });
    await log.append({ stage: "local", releaseId: id, event: "release.paused", reason: "waits" });
    expect(summarize(await verifiedRecords(log))[0]).toMatchObject({ outcome: "paused" });
    expect(summarize(await verifiedRecords(log))[0]!.endedAt).toBeUndefined();
  });
});
