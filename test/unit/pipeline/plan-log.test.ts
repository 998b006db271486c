import { mkdtempSync, appendFileSync, writeFileSync } from "node:fs";
import { tmpdir, hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageLease } from "../../../src/pipeline/context";
import { PipelineBusyError } from "../../../src/pipeline/errors";
import { ReleaseLog } from "../../../src/pipeline/log";
import { describeStep, planSteps, weightAt } from "../../../src/pipeline/plan";
import { PRESET_PLANS } from "../../../src/domain";
import { release } from "../../../src/pipeline/release";
import { summarize } from "../../../src/pipeline/operations";
import { ROOT } from "../support/harness";

describe("step plans", () => {
  it("expands presets into Argo's vocabulary", () => {
    expect(planSteps({ preset: "Canary10Percent5Minutes" }).map(describeStep)).toEqual([
      "setWeight 10",
      "analysis x5 every 60s",
    ]);
    const linear = planSteps({ preset: "Linear10PercentEvery1Minute" });
    expect(linear.filter((s) => s.kind === "setWeight").map((s) => (s as any).weight)).toEqual([
      10, 20, 30, 40, 50, 60, 70, 80, 90,
    ]);
    expect(planSteps({ preset: "BlueGreenImmediate" })).toEqual([]);
    expect(Object.keys(PRESET_PLANS)).toHaveLength(3);
  });

  it("reads pauses: a duration, or until approved", () => {
    const plan = planSteps({
      steps: [{ setWeight: 5 }, { pause: { duration: "1m30s" } }, { pause: {} }, { setWeight: 50 }],
    });
    expect(plan.map(describeStep)).toEqual([
      "setWeight 5",
      "pause 90s",
      "pause until approved",
      "setWeight 50",
    ]);
    expect(weightAt(plan, 0)).toBe(0);
    expect(weightAt(plan, 3)).toBe(5);
    expect(weightAt(plan, 4)).toBe(50);
  });
});

describe("release log", () => {
  it("appends numbered records, survives a torn last line, and folds releases", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-log-"));
    const log = ReleaseLog.forStage(dir, "staging");
    log.append({
      stage: "staging",
      releaseId: "r-1",
      event: "release.started",
      artifact: {
        image: "x@sha256:" + "a".repeat(64),
        digest: "sha256:" + "a".repeat(64),
        version: "1.0.0",
      },
    });
    log.append({
      stage: "staging",
      releaseId: "r-1",
      event: "update.succeeded",
      figures: { transition: "promote" },
    });
    // What the pipeline writes once the promote update landed; the summary reads this, not figures.
    log.append({ stage: "staging", releaseId: "r-1", event: "release.promoted" });
    log.append({ stage: "staging", releaseId: "r-1", event: "release.scaledDown" });
    log.append({ stage: "staging", releaseId: "r-1", event: "release.completed" });
    appendFileSync(log.path, '{"seq": 6, "event": "upd'); // a crash mid-write
    const reopened = ReleaseLog.forStage(dir, "staging");
    expect(reopened.readAll().map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(
      reopened.append({ stage: "staging", releaseId: "r-2", event: "release.started" }).seq,
    ).toBe(6);
    const [r2, r1] = summarize(reopened.readAll());
    expect(r1!.outcome).toBe("completed");
    expect(r1!.promotedAt).toBeDefined();
    expect(r1!.scaledDownAt).toBeDefined();
    expect(r2!.outcome).toBeUndefined();
  });
});

describe("stage lease", () => {
  it("refuses a second holder and takes over a dead one", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-lease-"));
    const lease = StageLease.acquire(dir, "prod", "release 1.0.0");
    expect(() => StageLease.acquire(dir, "prod", "release 1.0.1")).toThrow(PipelineBusyError);
    expect(() => StageLease.acquire(dir, "prod", "x")).toThrow(
      /stage prod is busy: release 1.0.0 by pid \d+/,
    );
    lease.release();
    // A lease left by a process that no longer exists is stale.
    writeFileSync(
      join(dir, "prod.lock"),
      JSON.stringify({
        pid: 999_999_999,
        host: hostname(),
        what: "old",
        since: "then",
      }),
    );
    StageLease.acquire(dir, "prod", "new").release();
  });
});

describe("release refuses bad input before touching any stack", () => {
  const base = {
    projectDir: ROOT,
    backendUrl: "file:///nonexistent-backend-never-used",
    logDir: mkdtempSync(join(tmpdir(), "slipway-refuse-")),
  };
  it.each([
    [
      { stage: "qa", image: "r@sha256:" + "a".repeat(64), version: "1" },
      /--stage qa: no stack file .*stages in .*: local, prod, staging/,
    ],
    [
      { stage: "local", image: "registry.local/checkout:1.2", version: "1" },
      /--image: "registry.local\/checkout:1.2" is not pinned by digest/,
    ],
    [{ stage: "local", version: "1" }, /--image is required/],
    [{ stage: "local", image: "r@sha256:" + "a".repeat(64) }, /--version is required/],
  ])("%o", async (args, pattern) => {
    const result = await release({ ...base, ...args });
    expect(result.outcome).toBe("refused");
    expect(result.exitCode).toBe(6);
    expect(result.reason).toMatch(pattern);
  });
});
