import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import { releaseCondition } from "../../../src/pipeline/condition";
import type { LogRecord } from "../../../src/pipeline/log";
import { planSteps } from "../../../src/pipeline/plan";

/** Issue 12, observations 1 and 7: status says interrupted, what runs now, the right next step and the commands. */
const plan = planSteps({
  steps: [{ setWeight: 10 }, { analysis: {} }, { setWeight: 50 }, { pause: { duration: "75s" } }],
} as any);
const release = {
  id: "r-1",
  phase: "canary",
  position: 1,
  steps: 4,
  previous: { slot: "blue" },
} as unknown as ReleaseRecord;
const rec = (event: LogRecord["event"], extra: Partial<LogRecord> = {}) =>
  ({
    seq: 1,
    at: "2026-01-01T00:00:00Z",
    stage: "local",
    releaseId: "r-1",
    event,
    actor: "a",
    prev: "",
    ...extra,
  }) as LogRecord;
const during = [
  rec("update.succeeded"),
  rec("analysis.measured", {
    step: { index: 1, description: "analysis" },
    figures: { measurement: 0 },
  }),
];

describe("release condition for status", () => {
  it("while an analysis runs: now the analysis, next the step after it", () => {
    const c = releaseCondition({
      stage: "local",
      release,
      records: during,
      plan,
      leaseHeldByLiveProcess: true,
      deadEngineLocks: 0,
    });
    expect(c.condition).toBe("running");
    expect(c.doing).toMatch(/^analysis of step 2 .*measurement 1$/);
    expect(c.next).toBe("step 3: setWeight 50");
    expect(c.commands).toEqual([]);
  });

  it("a killed release is interrupted, with the exact commands that continue or roll back", () => {
    const c = releaseCondition({
      stage: "local",
      release,
      records: during,
      plan,
      leaseHeldByLiveProcess: false,
      deadEngineLocks: 1,
    });
    expect(c.condition).toBe("interrupted");
    expect(c.commands).toEqual([
      "slipway release --stage local --resume",
      "slipway rollback --stage local",
    ]);
  });

  it("after a rollback that did not land, it says the resume finishes the rollback, not the next step", () => {
    const c = releaseCondition({
      stage: "local",
      release: { ...release, candidateSlot: "green" } as ReleaseRecord,
      records: [
        ...during,
        rec("update.started", {
          reason: "analysis failed at step 2: errors",
          figures: { transition: "rollback" },
        }),
        rec("update.failed", { figures: { transition: "rollback" } }),
        rec("release.failed"),
      ],
      plan,
      leaseHeldByLiveProcess: false,
      deadEngineLocks: 0,
    });
    expect(c).toEqual({
      condition: "interrupted",
      doing: "a rollback that did not land: analysis failed at step 2: errors",
      next: "finish the rollback (green to weight 0, one update); no step runs again",
      commands: ["slipway release --stage local --resume", "slipway rollback --stage local"],
    });
  });

  it("a release that paused for approval is paused, not interrupted", () => {
    const c = releaseCondition({
      stage: "local",
      release: { ...release, position: 3 } as ReleaseRecord,
      records: [rec("update.succeeded"), rec("approval.awaited"), rec("release.paused")],
      plan,
      leaseHeldByLiveProcess: false,
      deadEngineLocks: 0,
    });
    expect(c.condition).toBe("paused");
    expect(c.next).toBe("step 4: pause 75s");
    expect(c.commands[0]).toBe("slipway approve --stage local --release r-1");
  });
});
