import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import {
  nextState,
  rollbackTransitions,
  runMachine,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import { planSteps } from "../../../src/pipeline/plan";
import { planTransitions } from "../../../src/releasePlan";

/**
 * Issue 21: the plan is the machine's own run, not a walk written beside it. A release run
 * through `runMachine` with ordinary effects (every approval granted, every analysis passing)
 * applies exactly the plan's forward transitions, and each rollback the plan lists is the
 * machine's `rollbackTransitions` from the state before it.
 */
const img = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const NOW = "2026-12-01T10:00:00.000Z";
const start: StageState = {
  stable: "blue",
  canaryWeight: 0,
  slots: {
    blue: { image: img("1"), version: "1.0.0" },
    green: { image: img("1"), version: "1.0.0", replicas: 0 },
  },
};
const record: ReleaseRecord = {
  id: "r-20261201-100000-ab12",
  phase: "deploying",
  candidateSlot: "green",
  artifact: { image: img("2"), version: "1.1.0" },
  previous: { slot: "blue", image: img("1"), version: "1.0.0" },
  position: 0,
  steps: 5,
  startedAt: NOW,
  updatedAt: NOW,
};
const plan = planSteps({
  steps: [
    { setWeight: 10 },
    { pause: { untilApproved: true } },
    { analysis: { count: 2, interval: "1m" } },
    { setWeight: 40 },
    { pause: { duration: "30s" } },
  ],
});

async function recordedRun(): Promise<{ t: Transition; next: StageState }[]> {
  const applied: { t: Transition; next: StageState }[] = [];
  const fx: Effects = {
    async apply(next, t) {
      applied.push({ t, next });
    },
    async verify() {},
    smoke: async () => ({ ok: true, detail: "" }),
    analyse: async () => ({ verdict: "pass", reasons: [] }),
    async sleep() {},
    approved: async () => true,
    note() {},
    now: () => Date.parse(NOW),
  };
  const result = await runMachine(
    {
      state: { ...start, release: record },
      plan,
      fullReplicas: 2,
      smokeCheck: true,
      scaleDownDelaySeconds: 0,
      progressDeadlineSeconds: 3600,
      inconclusiveRetries: 0,
    },
    fx,
  );
  expect(result.outcome).toBe("promoted");
  return applied;
}

describe("the plan derived from the machine", () => {
  it("lists exactly the transitions the machine applies in a recorded run, with their states", async () => {
    const applied = await recordedRun();
    const planned = planTransitions(start, record, plan, 2, NOW);
    const forward = planned.filter((p) => !p.rollback);
    expect(forward.map((p) => p.kind)).toEqual(applied.map((a) => a.t.kind));
    expect(forward.map((p) => p.kind)).toEqual([
      "deploy",
      "setWeight",
      "setWeight",
      "promote",
      "scaleDown",
    ]);
    expect(forward.map((p) => p.state)).toEqual(applied.map((a) => a.next));
  });

  it("takes each rollback from the machine's rollbackTransitions at that point", async () => {
    const applied = await recordedRun();
    const planned = planTransitions(start, record, plan, 2, NOW);
    const rollbacks = planned.filter((p) => p.rollback);
    // One rollback from every point but the last: after the scale-down the release is over.
    expect(rollbacks.map((r) => r.from)).toEqual(
      planned.filter((p) => !p.rollback && p.kind !== "scaleDown").map((p) => p.label),
    );
    rollbacks.forEach((r, i) => {
      const at = applied[i]!.next;
      const [t] = rollbackTransitions(at, 2, "plan");
      expect(r.kind).toBe(t!.kind);
      expect(r.state).toEqual(nextState(at, t!, 2, NOW));
    });
    expect(rollbacks.map((r) => r.kind)).toEqual(["rollback", "rollback", "rollback", "flipBack"]);
  });
});
