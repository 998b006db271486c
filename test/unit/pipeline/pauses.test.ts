import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import type { PauseReason, PlanStep, Wait } from "../../../src/domain";
import { releaseCondition } from "../../../src/pipeline/condition";
import type { LogRecord } from "../../../src/pipeline/log";
import {
  runMachine,
  weightsOf,
  WeightsDriftedError,
  type CheckpointDecision,
  type Effects,
  type MachineInput,
  type StageState,
} from "../../../src/pipeline/machine";
import { pauseServed } from "../../../src/pipeline/release";

/** Issue 21: pause reasons and timed waits are typed, in the machine's result and in the log. */
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const start = (): StageState => ({
  stable: "blue",
  canaryWeight: 0,
  slots: {
    blue: { image: image("a"), version: "1.0.0" },
    green: { image: image("a"), version: "1.0.0", replicas: 0 },
  },
  release: {
    id: "r-pauses",
    phase: "deploying",
    candidateSlot: "green",
    artifact: { image: image("b"), version: "2.0.0" },
    previous: { slot: "blue", image: image("a"), version: "1.0.0" },
    position: 0,
    steps: 3,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  },
});

interface World {
  verdict?: "pass" | "inconclusive";
  approved?: boolean;
  /** A hook with failure policy pause fails at this point. */
  hookPauseAt?: string;
  /** The live weights are moved after this transition lands. */
  driftAfter?: "setWeight" | "promote";
  onDrift?: "rollback" | "pause";
}

async function run(plan: PlanStep[], w: World) {
  let live = weightsOf(start());
  const waits: { label: string; wait: Wait }[] = [];
  const fx: Effects = {
    async apply(next, t) {
      live = weightsOf(next);
      if (w.driftAfter === t.kind) live = { blue: 70, green: 30 };
    },
    async verify(expected, when = "?") {
      if (live.blue !== expected.blue) throw new WeightsDriftedError(expected, live, when);
    },
    smoke: async () => ({ ok: true, detail: "" }),
    analyse: async () => ({ verdict: w.verdict ?? "pass", reasons: ["too few requests"] }),
    async sleep(_seconds, label, wait) {
      waits.push({ label, wait });
    },
    approved: async () => w.approved ?? false,
    note() {},
    now: () => 0,
    async checkpoint(point): Promise<CheckpointDecision> {
      return point === w.hookPauseAt
        ? { action: "pause", reason: "smoke-tests said no", hook: "smoke-tests" }
        : { action: "continue" };
    },
  };
  const input: MachineInput = {
    state: start(),
    plan,
    fullReplicas: 2,
    smokeCheck: false,
    scaleDownDelaySeconds: 30,
    progressDeadlineSeconds: 3600,
    inconclusiveRetries: 0,
    ...(w.onDrift ? { onDrift: w.onDrift } : {}),
  };
  return { result: await runMachine(input, fx), waits };
}

const weight = (n: number): PlanStep => ({ kind: "setWeight", weight: n });

describe("typed pause reasons in the machine's result", () => {
  const cases: [string, PlanStep[], World, PauseReason, string][] = [
    [
      "a pause until approved",
      [weight(10), { kind: "pause", untilApproved: true }],
      {},
      { kind: "awaitingApproval", step: 1 },
      "step 2 waits for approval",
    ],
    [
      "an inconclusive analysis",
      [weight(10), { kind: "analysis" }],
      { verdict: "inconclusive" },
      { kind: "inconclusive", step: 1 },
      "analysis inconclusive at step 2: too few requests",
    ],
    [
      "a hook with failure policy pause",
      [weight(10)],
      { hookPauseAt: "afterStep" },
      { kind: "hook", point: "afterStep", hook: "smoke-tests", step: 0 },
      "smoke-tests said no; waiting for `slipway approve`, or a passing hook on --resume",
    ],
    [
      "drift mid-canary with onDrift pause",
      [weight(10)],
      { driftAfter: "setWeight", onDrift: "pause" },
      { kind: "drift", afterPromotion: false },
      "weights drifted after the update: expected blue 90 / green 10, found blue 70 / green 30 (slipway:canary.onDrift pause): slipway release --resume puts the route back as the stack declares it and goes on, or slipway rollback",
    ],
    [
      "drift after promotion",
      [weight(10)],
      { driftAfter: "promote" },
      { kind: "drift", afterPromotion: true },
      "weights drifted after the update: expected blue 0 / green 100, found blue 70 / green 30 after promotion: the scale-down of blue is held; slipway release --resume puts the route back as the stack declares it and goes on, or slipway rollback",
    ],
  ];
  for (const [what, plan, w, pause, reason] of cases)
    it(`${what}: ${pause.kind}, with today's reason text`, async () => {
      const { result } = await run(plan, w);
      expect(result.outcome).toBe("paused");
      expect(result.pause).toEqual(pause);
      expect(result.reason).toBe(reason);
    });

  it("no other outcome carries a pause", async () => {
    const { result } = await run([weight(10)], {});
    expect(result.outcome).toBe("promoted");
    expect(result.pause).toBeUndefined();
  });

  it("hands each timed wait to the effects typed, beside the label people read", async () => {
    const { waits } = await run(
      [weight(10), { kind: "pause", seconds: 45, untilApproved: false }],
      {},
    );
    expect(waits).toEqual([
      { label: "step 2: pause 45s", wait: { kind: "stepPause", step: 1, seconds: 45 } },
      { label: "scale down blue in", wait: { kind: "scaleDownDelay", slot: "blue", seconds: 30 } },
    ]);
  });
});

const rec = (event: LogRecord["event"], at: string, extra: Partial<LogRecord> = {}) =>
  ({
    seq: 1,
    at,
    stage: "local",
    releaseId: "r-pauses",
    event,
    actor: "a",
    prev: "",
    ...extra,
  }) as LogRecord;

describe("a served wait is found by its typed figures.pause", () => {
  const wait: Wait = { kind: "stepPause", step: 3, seconds: 75 };
  it("matches the typed wait even when the label reads differently", () => {
    const records = [
      rec("update.succeeded", "2026-01-01T00:00:00Z"),
      rec("pause.started", "2026-01-01T00:00:00Z", {
        reason: "step 4: pause 75s (an older wording)",
        figures: { seconds: 75, pause: wait },
      }),
    ];
    expect(
      pauseServed(records, "step 4: pause 75s", Date.parse("2026-01-01T00:01:00Z"), wait),
    ).toEqual({
      done: false,
      leftSeconds: 15,
    });
    // Another step's wait with the same label is not this one.
    const other: Wait = { kind: "stepPause", step: 5, seconds: 75 };
    expect(pauseServed(records, "step 4: pause 75s (an older wording)", 0, other)).toEqual({
      done: false,
    });
  });

  it("a pause shortened in the stack file before --resume lasts what the plan says now, from when it started", () => {
    const records = [
      rec("update.succeeded", "2026-01-01T00:00:00Z"),
      rec("pause.started", "2026-01-01T00:00:00Z", {
        reason: "step 4: pause 600s",
        figures: { seconds: 600, pause: { kind: "stepPause", step: 3, seconds: 600 } },
      }),
    ];
    const now = Date.parse("2026-01-01T00:01:00Z");
    expect(pauseServed(records, "step 4: pause 75s", now, wait)).toEqual({
      done: false,
      leftSeconds: 15,
    });
    expect(
      pauseServed(records, "step 4: pause 30s", now, { kind: "stepPause", step: 3, seconds: 30 }),
    ).toEqual({ done: false, leftSeconds: 0 });
  });

  it("falls back to the label for records written before waits were typed", () => {
    const records = [
      rec("update.succeeded", "2026-01-01T00:00:00Z"),
      rec("pause.started", "2026-01-01T00:00:00Z", {
        reason: "step 4: pause 75s",
        figures: { seconds: 75 },
      }),
      rec("pause.ended", "2026-01-01T00:01:15Z", { reason: "step 4: pause 75s" }),
    ];
    expect(
      pauseServed(records, "step 4: pause 75s", Date.parse("2026-01-01T00:05:00Z"), wait),
    ).toEqual({
      done: true,
    });
  });
});

describe("status reads the step of a wait from its typed figures", () => {
  const plan: PlanStep[] = [
    weight(10),
    { kind: "analysis" },
    weight(50),
    { kind: "pause", seconds: 75, untilApproved: false },
    weight(80),
  ];
  const release = {
    id: "r-pauses",
    phase: "canary",
    position: 3,
    steps: 5,
    previous: { slot: "blue" },
  } as unknown as ReleaseRecord;
  const condition = (started: LogRecord) =>
    releaseCondition({
      stage: "local",
      release,
      records: [rec("update.succeeded", "2026-01-01T00:00:00Z"), started],
      plan,
      leaseHeldByLiveProcess: true,
      deadEngineLocks: 0,
    });
  it("a typed wait names its step whatever its label says", () => {
    const c = condition(
      rec("pause.started", "2026-01-01T00:00:00Z", {
        reason: "a pause",
        figures: { seconds: 75, pause: { kind: "stepPause", step: 3, seconds: 75 } },
      }),
    );
    expect(c).toMatchObject({
      condition: "running",
      doing: "a pause",
      next: "step 5: setWeight 80",
    });
  });
  it("an old record is read by its label", () => {
    const c = condition(
      rec("pause.started", "2026-01-01T00:00:00Z", { reason: "step 4: pause 75s" }),
    );
    expect(c.next).toBe("step 5: setWeight 80");
  });
});
