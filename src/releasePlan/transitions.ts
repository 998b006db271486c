import { otherSlot, type ReleaseRecord } from "../config/schema";
import { nextState, weightsOf, type StageState, type Transition } from "../pipeline/machine";
import { describeStep, type PlanStep } from "../pipeline/plan";

/**
 * The transitions a release would make, in order, each with the stack config
 * it would write: the happy path (deploy, every setWeight, promote, scale
 * down) and the rollback from each point. Pure; the states come from the
 * state machine's own `nextState`, so the plan previews exactly what a
 * release would write.
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
  const add = (t: Omit<PlannedTransition, "weights">) => {
    out.push({ ...t, weights: weightsOf(t.state) });
    return t.state;
  };
  const rollbackFrom = (label: string, state: StageState) =>
    add({
      label: `rollback after ${label}`,
      kind: "rollback",
      from: label,
      state: nextState(state, { kind: "rollback", reason: "plan" }, fullReplicas, now),
      rollback: true,
    });

  let state: StageState = { ...start, release: record };
  state = add({
    label: "deploy",
    kind: "deploy",
    state: nextState(
      state,
      { kind: "deploy", release: record, replicas: fullReplicas },
      fullReplicas,
      now,
    ),
    rollback: false,
  });
  rollbackFrom("deploy", state);
  let previous = "deploy";
  plan.forEach((step, index) => {
    if (step.kind !== "setWeight") return;
    const label = `step ${index + 1} ${describeStep(step)}`;
    state = add({
      label,
      kind: "setWeight",
      from: previous,
      stepIndex: index,
      state: nextState(
        state,
        { kind: "setWeight", weight: step.weight, position: index + 1 },
        fullReplicas,
        now,
      ),
      rollback: false,
    });
    rollbackFrom(label, state);
    previous = label;
  });
  const promoted = add({
    label: "promote",
    kind: "promote",
    from: previous,
    state: nextState(state, { kind: "promote", at: now }, fullReplicas, now),
    rollback: false,
  });
  // After promotion, while the old slot still runs, a rollback flips stable back (one update).
  add({
    label: "rollback after promote",
    kind: "flipBack",
    from: "promote",
    state: nextState(
      promoted,
      { kind: "flipBack", slot: record.previous.slot, reason: "plan" },
      fullReplicas,
      now,
    ),
    rollback: true,
  });
  add({
    label: "scale down",
    kind: "scaleDown",
    from: "promote",
    state: nextState(
      promoted,
      { kind: "scaleDown", slot: otherSlot(promoted.stable) },
      fullReplicas,
      now,
    ),
    rollback: false,
  });
  return out;
}
