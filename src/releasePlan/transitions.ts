import type { ReleaseRecord } from "../config/schema";
import type { PlanStep } from "../domain";
import {
  machineSteps,
  nextState,
  rollbackTransitions,
  weightsOf,
  type AnalysisResult,
  type CheckpointDecision,
  type MachineRequest,
  type StageState,
  type Transition,
} from "../pipeline/machine";
import { describeStep } from "../pipeline/plan";

/**
 * The transitions a release would make, in order, each with the stack config
 * it would write: the happy path (deploy, every setWeight, promote, scale
 * down) and the rollback from each point. Pure: derived by running the state
 * machine itself (`machineSteps`) with recording effects, and the machine's
 * own `rollbackTransitions` from each point, so the plan cannot drift from
 * what a release does.
 */
export type PlannedKind = Transition["kind"];

export interface PlannedTransition {
  /** e.g. "deploy", "step 1 setWeight 10", "rollback after step 1". */
  label: string;
  kind: PlannedKind;
  /** Label of the transition whose result this one starts from (undefined: the stage as it is). */
  from?: string;
  /** Plan step index (0-based) for setWeight. */
  stepIndex?: number;
  /** The config the transition writes. */
  state: StageState;
  weights: { blue: number; green: number };
  /** Whether this is a rollback (the rollback invariant applies). */
  rollback: boolean;
}

export function planTransitions(
  start: StageState,
  record: ReleaseRecord,
  plan: readonly PlanStep[],
  fullReplicas: number,
  now: string,
): PlannedTransition[] {
  const out: PlannedTransition[] = [];
  let previous: string | undefined;
  const add = (t: Omit<PlannedTransition, "weights">) =>
    out.push({ ...t, weights: weightsOf(t.state) });

  // The machine's own rollback from the state a forward transition landed: one update mid-canary,
  // a flip back after promotion while the old slot still runs (two updates later on, chained).
  const rollbackFrom = (label: string, state: StageState) => {
    let from = label;
    const back = rollbackTransitions(state, fullReplicas, "plan");
    back.forEach((t, i) => {
      state = nextState(state, t, fullReplicas, now);
      const step = i === back.length - 1 ? `rollback after ${label}` : `${t.kind} after ${label}`;
      add({ label: step, kind: t.kind, from, state, rollback: true });
      from = step;
    });
  };

  // Every analysis passes, every approval is granted, every hook passes, sleeps return at once;
  // each update the machine applies is recorded with the state it lands.
  const answer = (r: MachineRequest): unknown => {
    switch (r.op) {
      case "apply": {
        const label =
          r.t.kind === "setWeight"
            ? `step ${r.t.position} ${describeStep(plan[r.t.position - 1]!)}`
            : r.t.kind === "scaleDown"
              ? "scale down"
              : r.t.kind;
        add({
          label,
          kind: r.t.kind,
          ...(previous ? { from: previous } : {}),
          ...(r.t.kind === "setWeight" ? { stepIndex: r.t.position - 1 } : {}),
          state: r.next,
          rollback: false,
        });
        // After the scale-down the release is over: going back is `slipway rollback`'s, not the plan's.
        if (r.t.kind !== "scaleDown") rollbackFrom(label, r.next);
        previous = label;
        return undefined;
      }
      case "smoke":
        return { ok: true, detail: "plan" };
      case "analyse":
        return { verdict: "pass", reasons: [] } satisfies AnalysisResult;
      case "approved":
        return true;
      case "checkpoint":
        return { action: "continue" } satisfies CheckpointDecision;
      case "now":
        return Date.parse(now);
      case "clock":
        return now;
      case "verify":
      case "serving":
      case "sleep":
      case "note":
        return undefined;
    }
  };

  const steps = machineSteps({
    state: { ...start, release: record },
    plan: [...plan],
    fullReplicas,
    smokeCheck: false,
    scaleDownDelaySeconds: 0,
    progressDeadlineSeconds: Infinity,
    inconclusiveRetries: 0,
  });
  for (let step = steps.next(); !step.done; step = steps.next(answer(step.value)));
  return out;
}
