import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import {
  runMachine,
  weightsOf,
  WeightsDriftedError,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import type { PlanStep } from "../../../src/domain";
import { pauseServed } from "../../../src/pipeline/release";
import type { LogRecord } from "../../../src/pipeline/log";
import { RoutingNotFoundError } from "../../../src/pipeline/errors";
import type { Weights } from "../../../src/traffic/weights";

/**
 * Issue 12, observation 2: drift during a pause or an analysis is caught before
 * traffic moves on, answered by slipway:canary.onDrift, and an analysis over a
 * drifted window never counts. A live route is simulated: the machine's updates
 * write it, a "person" edits it between effects.
 */
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
function start(): StageState {
  const release: ReleaseRecord = {
    id: "r-drift",
    phase: "deploying",
    candidateSlot: "green",
    artifact: { image: image("b"), version: "2.0.0" },
    previous: { slot: "blue", image: image("a"), version: "1.0.0" },
    position: 0,
    steps: 4,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
  return {
    stable: "blue",
    canaryWeight: 0,
    slots: {
      blue: { image: image("a"), version: "1.0.0" },
      green: { ...{ image: image("a"), version: "1.0.0" }, replicas: 0 },
    },
    release,
  };
}

const PLAN: PlanStep[] = [
  { kind: "setWeight", weight: 10 },
  { kind: "pause", seconds: 60, untilApproved: false },
  { kind: "analysis" },
  { kind: "setWeight", weight: 50 },
];

function world(
  driftAt: "pause" | "analysis" | "promote" | "deletedAfterPromote" | "none",
  options: { onDrift?: "rollback" | "pause" } = {},
) {
  let live: Weights = weightsOf(start());
  let deleted = false;
  const applied: Transition["kind"][] = [];
  const checks: { when: string; found: Weights; ok: boolean }[] = [];
  let analyses = 0;
  const fx: Effects = {
    async apply(next, t) {
      live = weightsOf(next); // the update rewrites the route
      applied.push(t.kind);
      // Someone moves traffic back to the old slot right after the promotion.
      if (driftAt === "promote" && t.kind === "promote") live = { blue: 50, green: 50 };
      // Or deletes the route.
      if (driftAt === "deletedAfterPromote" && t.kind === "promote") deleted = true;
    },
    async verify(expected, when = "?") {
      if (deleted)
        throw new RoutingNotFoundError("checkout-local/checkout", "no HTTPRoute in the cluster");
      const ok = live.blue === expected.blue && live.green === expected.green;
      checks.push({ when, found: live, ok });
      if (!ok) throw new WeightsDriftedError(expected, live, when);
    },
    async smoke() {
      return { ok: true, detail: "" };
    },
    async analyse() {
      analyses++;
      if (driftAt === "analysis") live = { blue: 0, green: 100 };
      return { verdict: "pass", reasons: [] };
    },
    async sleep() {
      if (driftAt === "pause") live = { blue: 0, green: 100 };
    },
    async approved() {
      return false;
    },
    note() {},
    now: () => 0,
  };
  const run = () =>
    runMachine(
      {
        state: start(),
        plan: PLAN,
        fullReplicas: 2,
        smokeCheck: false,
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 3600,
        inconclusiveRetries: 1,
        ...options,
      },
      fx,
    );
  return { run, applied, checks, live: () => live, analyses: () => analyses };
}

describe("drift watching", () => {
  it("catches blue 0 / green 100 made during a pause before the next step, and rolls back (default)", async () => {
    const w = world("pause");
    const result = await w.run();
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /weights drifted before step 3: expected blue 90 \/ green 10, found blue 0 \/ green 100/,
    );
    // No analysis judged the split nobody chose, and the next setWeight never ran.
    expect(w.analyses()).toBe(0);
    expect(w.applied).toEqual(["deploy", "setWeight", "rollback"]);
    expect(w.live()).toEqual({ blue: 100, green: 0 });
  });

  it("does not count an analysis whose window drifted", async () => {
    const w = world("analysis");
    const result = await w.run();
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(/weights drifted after the analysis of step 3/);
    expect(w.applied).toEqual(["deploy", "setWeight", "rollback"]);
  });

  it("pauses instead when slipway:canary.onDrift is pause, leaving the stage for a person", async () => {
    const w = world("pause", { onDrift: "pause" });
    const result = await w.run();
    expect(result.outcome).toBe("paused");
    expect(result.reason).toMatch(
      /onDrift pause\): slipway release --resume puts the route back as the stack declares it and goes on, or slipway rollback/,
    );
    expect(w.applied).toEqual(["deploy", "setWeight"]);
  });

  it("after promotion: no automatic rollback, the scale-down is held, paused for a person", async () => {
    const w = world("promote");
    const result = await w.run();
    expect(result.outcome).toBe("paused");
    expect(result.reason).toMatch(
      /weights drifted after the update: expected blue 0 \/ green 100, found blue 50 \/ green 50 after promotion: the scale-down of blue is held/,
    );
    expect(w.applied).toEqual(["deploy", "setWeight", "setWeight", "promote"]);
    expect(result.state.release!.phase).toBe("promoted");
  });

  it("after promotion, a deleted route is never called promoted: the scale-down is held, paused for a person", async () => {
    const w = world("deletedAfterPromote");
    const result = await w.run();
    expect(result.outcome).toBe("paused");
    expect(result.pause).toEqual({ kind: "drift", afterPromotion: true });
    expect(result.reason).toMatch(
      /^the route could not be read back: .*no HTTPRoute in the cluster.* after promotion: the scale-down of blue is held; slipway release --resume puts the route back as the stack declares it and goes on, or slipway rollback$/,
    );
    expect(w.applied).toEqual(["deploy", "setWeight", "setWeight", "promote"]);
  });

  it("reads back before every step, after every analysis, before promotion, and on resume", async () => {
    const w = world("none");
    expect((await w.run()).outcome).toBe("promoted");
    expect(w.checks.map((c) => c.when)).toEqual([
      "after the update", // deploy
      "after the update", // setWeight 10
      "before step 3", // after the pause
      "after the analysis of step 3",
      "after the update", // setWeight 50
      "before promotion", // right before the flip, however fresh the last read
      "after the update", // promote
      "before the scale-down",
    ]);

    const mid = { ...start(), canaryWeight: 10 };
    mid.release = { ...mid.release!, phase: "canary", position: 1 };
    const seen: string[] = [];
    const r = await runMachine(
      {
        state: mid,
        plan: PLAN,
        fullReplicas: 2,
        smokeCheck: false,
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 3600,
        inconclusiveRetries: 1,
        resumed: true,
      },
      {
        async apply() {},
        async verify(expected, when) {
          seen.push(when!);
          throw new WeightsDriftedError(expected, { blue: 0, green: 100 }, when!);
        },
        async smoke() {
          return { ok: true, detail: "" };
        },
        async analyse() {
          return { verdict: "pass", reasons: [] };
        },
        async sleep() {},
        async approved() {
          return false;
        },
        note() {},
        now: () => 0,
      },
    );
    expect(seen[0]).toBe("on resume");
    expect(r.outcome).toBe("rolledBack");
  });
});

describe("a resumed pause", () => {
  const rec = (event: LogRecord["event"], at: string, extra: Partial<LogRecord> = {}) =>
    ({
      seq: 1,
      at,
      stage: "local",
      releaseId: "r",
      event,
      actor: "a",
      prev: "",
      ...extra,
    }) as LogRecord;
  const label = "step 2: pause 75s";

  it("is not served again once it ended after the last update", () => {
    const records = [
      rec("update.succeeded", "2026-01-01T00:00:00Z"),
      rec("pause.started", "2026-01-01T00:00:01Z", { reason: label, figures: { seconds: 75 } }),
      rec("pause.ended", "2026-01-01T00:01:16Z", { reason: label }),
    ];
    expect(pauseServed(records, label, Date.parse("2026-01-01T00:05:00Z"))).toEqual({ done: true });
  });

  it("serves only what is left of a pause cut short", () => {
    const records = [
      rec("update.succeeded", "2026-01-01T00:00:00Z"),
      rec("pause.started", "2026-01-01T00:00:00Z", { reason: label, figures: { seconds: 75 } }),
    ];
    expect(pauseServed(records, label, Date.parse("2026-01-01T00:01:00Z"))).toEqual({
      done: false,
      leftSeconds: 15,
    });
    expect(pauseServed(records, label, Date.parse("2026-01-01T00:02:00Z"))).toEqual({
      done: false,
      leftSeconds: 0,
    });
  });

  it("is served in full when it belongs to an earlier update", () => {
    const records = [
      rec("pause.started", "2026-01-01T00:00:00Z", { reason: label, figures: { seconds: 75 } }),
      rec("pause.ended", "2026-01-01T00:01:15Z", { reason: label }),
      rec("update.succeeded", "2026-01-01T00:02:00Z"),
    ];
    expect(pauseServed(records, label, Date.parse("2026-01-01T00:03:00Z"))).toEqual({
      done: false,
    });
  });
});
