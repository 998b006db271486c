import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import type { StageOutputs } from "../../../src/contract/outputs";
import { ExitCode } from "../../../src/domain";
import { unlandedIsStale } from "../../../src/pipeline/recovery";
import { release } from "../../../src/pipeline/release";
import { FileStore } from "../../../src/store/fileStore";
import { verifiedRecords } from "../../../src/store/store";
import { localProject, RenderedStack } from "../support/localStack";

/**
 * Issue 22, case 1: a release whose deploy never landed is resumed only onto the stage it was
 * started against. Another runner's release that ended meanwhile moved the stable slot; deploying
 * the old one then would put it into the slot that serves all traffic.
 */
const STAGE = "local";
const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

const record = (over: Partial<ReleaseRecord> = {}): ReleaseRecord => ({
  id: "r-20260101-000000-stal",
  phase: "deploying",
  candidateSlot: "green",
  artifact: { image: digest("d"), version: "3.0.0" },
  previous: { slot: "blue", image: digest("a"), version: "1.0.0" },
  position: 0,
  steps: 1,
  startedAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  ...over,
});
const outputs = (stableSlot: "blue" | "green", stableImage: string) =>
  ({
    stableSlot,
    releases: {
      blue: { image: stableSlot === "blue" ? stableImage : digest("e"), version: "x" },
      green: { image: stableSlot === "green" ? stableImage : digest("e"), version: "2.0.0" },
    },
  }) as unknown as StageOutputs;

describe("an unlanded release the stage has moved past", () => {
  it("is stale when the stable slot or the stable image changed since it started", () => {
    expect(unlandedIsStale(record(), outputs("blue", digest("a")))).toBeUndefined();
    expect(unlandedIsStale(record(), outputs("green", digest("c")))).toMatch(
      /started against stable 1\.0\.0 in blue, but the stage's stable release is now 2\.0\.0 in green: deploying it into green would replace the stable release that serves all traffic/,
    );
    // Same slot, another image (a release and its rollback-then-restore ended meanwhile).
    expect(unlandedIsStale(record(), outputs("blue", digest("b")))).toMatch(
      /would start from a stage that has moved on/,
    );
  });

  it("--resume refuses it (exit 6), deploys nothing and records nothing", async () => {
    const { dir, logDir } = localProject([{ setWeight: 50 }]);
    const stack = await RenderedStack.deployed(dir, STAGE);
    const before = (await stack.outputs())!;
    const common = {
      stage: STAGE,
      projectDir: dir,
      backendUrl: `file://${join(dir, "state")}`,
      logDir,
      openStack: async () => stack,
      weightsReadBack: stack.readBack,
      sleep: async () => {},
    };
    // Runner B started a release against the stable release of then; its deploy never landed.
    const log = new FileStore(logDir).log(STAGE);
    const stale = record({
      candidateSlot: before.candidateSlot,
      previous: {
        slot: before.stableSlot,
        image: before.releases[before.stableSlot].image,
        version: before.releases[before.stableSlot].version,
      },
    });
    // Meanwhile runner A's release ran to the end: the stable slot flipped.
    const promoted = await release({ ...common, image: digest("c"), version: "2.0.0" });
    expect(promoted.outcome, promoted.reason).toBe("promoted");
    const after = (await stack.outputs())!;
    expect(after.stableSlot).toBe(stale.candidateSlot);
    await log.append({
      stage: STAGE,
      releaseId: stale.id,
      event: "release.started",
      figures: { record: stale },
    });
    const updates = stack.updates.length;

    const resumed = await release({ ...common, resume: true });
    expect(resumed.outcome).toBe("refused");
    expect(resumed.exitCode).toBe(ExitCode.refused);
    expect(resumed.reason).toMatch(
      /release r-20260101-000000-stal \(3\.0\.0\) was started against stable .* but the stage's stable release is now 2\.0\.0 in .*Nothing was deployed.*slipway rollback --stage local/,
    );
    expect(stack.updates).toHaveLength(updates);
    expect((await stack.outputs())!.releases[after.stableSlot].image).toBe(digest("c"));
    // Nothing recorded for it either.
    const events = (await verifiedRecords(log)).filter((r) => r.releaseId === stale.id);
    expect(events.map((r) => r.event)).toEqual(["release.started"]);
  });
});
