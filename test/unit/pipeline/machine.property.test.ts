import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import {
  nextState,
  replicasOf,
  rollbackTransitions,
  runMachine,
  runRollback,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import type { PlanStep } from "../../../src/domain";

const FULL = 3;
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

function initialState(): StageState {
  const release: ReleaseRecord = {
    id: "r-test",
    phase: "deploying",
    candidateSlot: "green",
    artifact: { image: image("b"), version: "2.0.0" },
    previous: { slot: "blue", image: image("a"), version: "1.0.0" },
    position: 0,
    steps: 0,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
  return {
    stable: "blue",
    canaryWeight: 0,
    slots: {
      blue: { image: image("a"), version: "1.0.0" },
      green: { image: image("a"), version: "1.0.0", replicas: 0 },
    },
    release,
  };
}

const stepArb: fc.Arbitrary<PlanStep> = fc.oneof(
  fc.integer({ min: 1, max: 100 }).map((weight) => ({ kind: "setWeight" as const, weight })),
  fc
    .integer({ min: 0, max: 60 })
    .map((seconds) => ({ kind: "pause" as const, seconds, untilApproved: false })),
  fc.constant({ kind: "pause" as const, untilApproved: true }),
  fc.constant({ kind: "analysis" as const }),
);

/** Plans as the config allows them: weights rise. */
const planArb = fc.array(stepArb, { maxLength: 10 }).map((steps) => {
  let last = 0;
  return steps.filter((s) => {
    if (s.kind !== "setWeight") return true;
    if (s.weight <= last) return false;
    last = s.weight;
    return true;
  });
});

const verdictArb = fc.constantFrom("pass", "fail", "inconclusive") as fc.Arbitrary<
  "pass" | "fail" | "inconclusive"
>;

describe("release state machine (property)", () => {
  it("never promotes after a failed analysis, leaves no traffic on a rolled-back candidate, keeps stable at full size", async () => {
    await fc.assert(
      fc.asyncProperty(
        planArb,
        fc.array(verdictArb, { maxLength: 20 }),
        fc.array(fc.boolean(), { maxLength: 20 }),
        fc.array(fc.boolean(), { maxLength: 20 }),
        fc.boolean(),
        async (plan, verdicts, approvals, updateFailures, smokeOk) => {
          let clock = 0;
          let state = initialState();
          const applied: Transition[] = [];
          const handed: StageState[] = [];
          const seenVerdicts: string[] = [];
          let updates = 0;
          const fx: Effects = {
            async apply(next, t) {
              // Fail an update where the sequence says so (never the rollback itself, tested elsewhere).
              if (t.kind !== "rollback" && updateFailures[updates++])
                throw new Error("injected update failure");
              applied.push(t);
              handed.push(next);
            },
            async verify() {},
            async smoke() {
              return { ok: smokeOk, detail: smokeOk ? "200 x5" : "500 x5" };
            },
            async analyse() {
              const verdict = verdicts.shift() ?? "pass";
              seenVerdicts.push(verdict);
              return { verdict, reasons: [verdict] };
            },
            async sleep(seconds) {
              clock += seconds * 1000;
            },
            async approved() {
              return approvals.shift() ?? false;
            },
            note() {},
            now: () => clock,
          };
          const result = await runMachine(
            {
              state,
              plan,
              fullReplicas: FULL,
              smokeCheck: true,
              scaleDownDelaySeconds: 30,
              progressDeadlineSeconds: 10_000,
              inconclusiveRetries: 1,
            },
            fx,
          );
          state = result.state;

          // Never promote a release whose analysis failed.
          if (seenVerdicts.includes("fail")) {
            expect(applied.some((t) => t.kind === "promote")).toBe(false);
            expect(result.outcome).not.toBe("promoted");
          }
          // After a rollback the candidate has no traffic.
          if (result.outcome === "rolledBack") {
            expect(state.canaryWeight).toBe(0);
            expect(state.stable).toBe("blue");
            expect(applied.filter((t) => t.kind === "rollback")).toHaveLength(1);
            expect(applied.at(-1)!.kind).toBe("rollback");
          }
          if (result.outcome === "promoted") {
            expect(state.stable).toBe("green");
            expect(state.canaryWeight).toBe(0);
            // The old slot is scaled down unless that last update failed (traffic is already right).
            if (applied.at(-1)!.kind === "scaleDown")
              expect(replicasOf(state, "blue", FULL)).toBe(0);
            else expect(result.reason).toMatch(/injected update failure/);
          }
          // Rollback never walks back through the steps: no setWeight after the last step's weight goes down.
          const weights = applied
            .filter((t) => t.kind === "setWeight")
            .map((t) => (t as { weight: number }).weight);
          expect([...weights].sort((a, b) => a - b)).toEqual(weights);
          // The stable slot was at full size after every transition.
          // The state each update landed is the one the machine computed for its transition.
          let replay = initialState();
          applied.forEach((t, i) => {
            replay = nextState(replay, t, FULL, "t");
            const stableSize = replicasOf(replay, replay.stable, FULL);
            expect(stableSize).toBe(FULL);
            expect({ ...handed[i]!, release: undefined }).toEqual({
              ...replay,
              release: undefined,
            });
          });
          expect(replay.stable).toBe(state.stable);
          expect(replay.canaryWeight).toBe(state.canaryWeight);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("resumes after its last completed update without repeating it", async () => {
    const plan: PlanStep[] = [
      { kind: "setWeight", weight: 10 },
      { kind: "analysis" },
      { kind: "setWeight", weight: 50 },
      { kind: "analysis" },
    ];
    const state = initialState();
    state.release = { ...state.release!, phase: "canary", position: 1, steps: 4 };
    state.canaryWeight = 10;
    const applied: Transition[] = [];
    const fx: Effects = {
      apply: async (_next, t) => void applied.push(t),
      verify: async () => {},
      smoke: async () => ({ ok: true, detail: "" }),
      analyse: async () => ({ verdict: "pass", reasons: [] }),
      sleep: async () => {},
      approved: async () => true,
      note: () => {},
      now: () => 0,
    };
    const result = await runMachine(
      {
        state,
        plan,
        fullReplicas: FULL,
        smokeCheck: true,
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 60,
        inconclusiveRetries: 0,
      },
      fx,
    );
    expect(result.outcome).toBe("promoted");
    expect(applied.map((t) => t.kind)).toEqual(["setWeight", "promote", "scaleDown"]);
    expect((applied[0] as { weight: number }).weight).toBe(50);
  });

  it("slipway rollback: back to known-good at full size, weight 0, in as few updates as the point allows", async () => {
    const phaseArb = fc.constantFrom(
      "deploying",
      "canary",
      "paused",
      "promoted",
      "completed",
      "failed",
    ) as fc.Arbitrary<"deploying" | "canary" | "paused" | "promoted" | "completed" | "failed">;
    await fc.assert(
      fc.asyncProperty(
        phaseArb,
        fc.integer({ min: 0, max: 100 }),
        fc.constantFrom(0, 1, FULL),
        fc.boolean(),
        fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
        async (phase, weight, oldReplicas, oldImageKept, failAt) => {
          // Where the stage stands at `phase` of the release of 2.0.0 (green) over 1.0.0 (blue).
          const start = initialState();
          const rec = { ...start.release!, phase, position: 1, steps: 2 };
          const candidate = { image: image("b"), version: "2.0.0" };
          const promoted = phase === "promoted" || phase === "completed" || phase === "failed";
          const state: StageState = promoted
            ? {
                stable: "green",
                canaryWeight: 0,
                slots: {
                  green: candidate,
                  blue: {
                    ...(oldImageKept ? start.slots.blue : { image: image("c"), version: "0.9.0" }),
                    replicas: phase === "completed" ? 0 : oldReplicas,
                  },
                },
                release: { ...rec, promotedAt: new Date(0).toISOString() },
              }
            : {
                stable: "blue",
                canaryWeight: phase === "deploying" ? 0 : weight,
                slots: { blue: start.slots.blue, green: { ...candidate, replicas: FULL } },
                release: rec,
              };

          const applied: Transition[] = [];
          const handed: StageState[] = [];
          const run = runRollback(
            { state, fullReplicas: FULL, reason: "manual" },
            {
              async apply(next, t) {
                if (failAt === applied.length) throw new Error("injected update failure");
                applied.push(t);
                handed.push(next);
              },
              now: () => 0,
            },
          );
          const planned = rollbackTransitions(state, FULL, "manual");

          // As few updates as the point allows.
          const oldStillRuns = phase === "promoted" && oldImageKept && oldReplicas > 0;
          expect(planned.map((t) => t.kind)).toEqual(
            !promoted ? ["rollback"] : oldStillRuns ? ["flipBack"] : ["restore", "flipBack"],
          );

          // Every state handed to an update is the machine's, and keeps the stable slot at full size;
          // a slot being restored gets no traffic until the flip.
          const check = () => {
            let replay = state;
            applied.forEach((t, i) => {
              replay = nextState(replay, t, FULL, new Date(0).toISOString());
              expect(handed[i]).toEqual(replay);
              expect(replicasOf(replay, replay.stable, FULL)).toBe(FULL);
              if (t.kind === "restore") expect(replay.canaryWeight).toBe(0);
            });
          };

          if (failAt !== undefined && failAt < planned.length) {
            await expect(run).rejects.toThrow(/injected update failure/);
            expect(applied).toEqual(planned.slice(0, failAt));
            check();
            return;
          }
          const result = await run;
          expect(applied).toEqual(planned);
          expect(result.transitions).toEqual(planned);
          check();
          const end = result.state;
          // Known-good takes all traffic, at full size; the release ends rolled back.
          expect(end.canaryWeight).toBe(0);
          expect(end.slots[end.stable].image).toBe(image("a"));
          expect(replicasOf(end, end.stable, FULL)).toBe(FULL);
          expect(end.release!.phase).toBe("rolledBack");
          expect(end.release!.reason).toBe("manual");
          // Mid-canary the stable slot never moves.
          if (!promoted) expect(end.stable).toBe("blue");
        },
      ),
      { numRuns: 300 },
    );
  });
});
