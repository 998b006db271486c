import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import type { HookPoint } from "../../../src/hooks";
import {
  runMachine,
  type CheckpointDecision,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import type { PlanStep } from "../../../src/domain";

/** The machine's checkpoints: where hooks run, and what their decisions do. */
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const plan: PlanStep[] = [
  { kind: "setWeight", weight: 10 },
  { kind: "analysis" },
  { kind: "setWeight", weight: 50 },
];

function start(phase: ReleaseRecord["phase"] = "deploying", position = 0): StageState {
  return {
    stable: "blue",
    canaryWeight: 0,
    slots: {
      blue: { image: image("a"), version: "1.0.0" },
      green: { image: image("a"), version: "1.0.0", replicas: 0 },
    },
    release: {
      id: "r-test",
      phase,
      candidateSlot: "green",
      artifact: { image: image("b"), version: "2.0.0" },
      previous: { slot: "blue", image: image("a"), version: "1.0.0" },
      position,
      steps: plan.length,
      startedAt: new Date(0).toISOString(),
      updatedAt: new Date(0).toISOString(),
    },
  };
}

function harness(
  decide: (point: HookPoint, index?: number) => CheckpointDecision,
  approved = false,
) {
  const trail: string[] = [];
  const fx: Effects = {
    async apply(_next, t: Transition) {
      trail.push(`apply ${t.kind}${t.kind === "setWeight" ? ` ${t.weight}` : ""}`);
    },
    async verify() {},
    async smoke() {
      return { ok: true, detail: "" };
    },
    async analyse() {
      trail.push("analyse");
      return { verdict: "pass", reasons: [] };
    },
    async sleep() {},
    async approved() {
      return approved;
    },
    note() {},
    now: () => 0,
    async checkpoint(point, at) {
      trail.push(`${point}${at?.index !== undefined ? ` ${at.index + 1}` : ""}`);
      return decide(point, at?.index);
    },
  };
  return { fx, trail };
}

const input = (state: StageState) => ({
  state,
  plan,
  fullReplicas: 2,
  smokeCheck: false,
  scaleDownDelaySeconds: 0,
  progressDeadlineSeconds: 3600,
  inconclusiveRetries: 0,
});
const pass = (): CheckpointDecision => ({ action: "continue" });

describe("hook checkpoints in the state machine", () => {
  it("reaches every point in release order", async () => {
    const { fx, trail } = harness(pass);
    const result = await runMachine(input(start()), fx);
    expect(result.outcome).toBe("promoted");
    expect(trail).toEqual([
      "preRollout",
      "apply deploy",
      "afterDeploy",
      "beforeStep 1",
      "apply setWeight 10",
      "afterStep 1",
      "beforeStep 2",
      "analyse",
      "afterStep 2",
      "beforeStep 3",
      "apply setWeight 50",
      "afterStep 3",
      "confirmPromotion",
      "apply promote",
      "postRollout",
      "apply scaleDown",
    ]);
  });

  it("a failing confirmPromotion with policy rollback rolls back in one update; onRollback hears it", async () => {
    const { fx, trail } = harness((p) =>
      p === "confirmPromotion" ? { action: "rollback", reason: "change ticket closed" } : pass(),
    );
    const result = await runMachine(input(start()), fx);
    expect(result).toMatchObject({ outcome: "rolledBack", reason: "change ticket closed" });
    expect(trail.slice(-3)).toEqual(["confirmPromotion", "apply rollback", "onRollback"]);
    expect(trail).not.toContain("apply promote");
  });

  it("a failing confirmPromotion with policy pause waits for a person; approved, it promotes", async () => {
    const gate = (p: HookPoint): CheckpointDecision =>
      p === "confirmPromotion" ? { action: "pause", reason: "hook gate failed: 500" } : pass();
    const paused = harness(gate);
    const result = await runMachine(input(start()), paused.fx);
    expect(result.outcome).toBe("paused");
    expect(result.reason).toMatch(/hook gate failed: 500; waiting for `slipway approve`/);
    expect(paused.trail).not.toContain("apply promote");
    // Resumed (the stack says: canary, all steps done) with an approval: the hook runs again, then promotion.
    const resumed = harness(gate, true);
    const state = { ...result.state };
    expect(state.release!.position).toBe(3);
    expect((await runMachine(input(state), resumed.fx)).outcome).toBe("promoted");
    expect(resumed.trail.slice(0, 3)).toEqual(["afterStep 3", "confirmPromotion", "apply promote"]);
  });

  it("a failing preRollout refuses the release before any update", async () => {
    const { fx, trail } = harness((p) =>
      p === "preRollout" ? { action: "pause", reason: "hook freeze failed: 423" } : pass(),
    );
    const result = await runMachine(input(start()), fx);
    expect(result).toMatchObject({
      outcome: "refused",
      reason: "hook freeze failed: 423; nothing was deployed",
    });
    expect(trail).toEqual(["preRollout"]);
  });

  it("a resumed release runs the checks after its last update again: afterDeploy at position 0", async () => {
    const { fx, trail } = harness((p) =>
      p === "afterDeploy" ? { action: "rollback", reason: "acceptance tests failed" } : pass(),
    );
    const result = await runMachine(input(start("canary", 0)), fx);
    expect(result.outcome).toBe("rolledBack");
    expect(trail).toEqual(["afterDeploy", "apply rollback", "onRollback"]);
  });
});
