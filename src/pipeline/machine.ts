import type { HookPoint } from "../hooks/spec";
import { otherSlot, type ReleaseRecord, type Slot, type SlotRelease } from "../config/schema";
import { weightsFor, type Weights } from "../traffic/weights";
import { describeStep, type PlanStep } from "./plan";

/**
 * The release state machine, the one authority for transitions: it computes
 * each next state (`nextState`) and hands it to `Effects.apply`, which lands
 * it with one stack update; everything else (pauses, analysis, checks)
 * changes nothing. Pure apart from the effects, so the invariants can be
 * checked over random plans and verdict sequences.
 *
 *   deploy (candidate into the idle slot, weight 0) → smoke? →
 *   [setWeight | pause | analysis]* → promote (flip stable, weight 0) →
 *   scale down the old slot after the delay
 *   any failure → rollback (candidate weight 0, one update)
 *
 * `slipway rollback` (runRollback) uses the same transitions: rollback
 * mid-canary; flipBack after promotion while the old slot runs; restore the
 * known-good release into the idle slot, then flipBack, once it is gone.
 */

/** The part of stack config the pipeline writes. */
export interface StageState {
  stable: Slot;
  canaryWeight: number;
  slots: Record<Slot, SlotRelease>;
  release?: ReleaseRecord;
}

export type Transition =
  | { kind: "deploy"; release: ReleaseRecord; replicas: number }
  | { kind: "setWeight"; weight: number; position: number }
  | { kind: "promote"; at: string }
  | { kind: "rollback"; reason: string }
  | { kind: "scaleDown"; slot: Slot }
  /** Known-good back into an idle slot at full size, no traffic yet (rollback after scale-down). */
  | { kind: "restore"; slot: Slot; release: SlotRelease }
  /** All traffic to `slot`, which becomes stable; the release ends rolled back. */
  | { kind: "flipBack"; slot: Slot; reason: string };

/** What one transition does to the stage's config. Pure. */
export function nextState(
  state: StageState,
  t: Transition,
  fullReplicas: number,
  now: string,
): StageState {
  const release = state.release ? { ...state.release, updatedAt: now } : undefined;
  switch (t.kind) {
    case "deploy": {
      const slot = t.release.candidateSlot;
      return {
        ...state,
        canaryWeight: 0,
        slots: {
          ...state.slots,
          [slot]: {
            image: t.release.artifact.image,
            version: t.release.artifact.version,
            ...(t.release.artifact.revision ? { revision: t.release.artifact.revision } : {}),
            // Full size before any traffic, so promotion never waits for capacity.
            replicas: t.replicas,
          },
        },
        release: { ...t.release, phase: "canary", position: 0, updatedAt: now },
      };
    }
    case "setWeight":
      return {
        ...state,
        canaryWeight: t.weight,
        release: release && { ...release, position: t.position },
      };
    case "promote": {
      const candidate = otherSlot(state.stable);
      return {
        ...state,
        stable: candidate,
        canaryWeight: 0,
        slots: { ...state.slots, [candidate]: withoutReplicas(state.slots[candidate]) },
        release: release && { ...release, phase: "promoted", promotedAt: t.at },
      };
    }
    case "rollback":
      return {
        ...state,
        canaryWeight: 0,
        release: release && { ...release, phase: "rolledBack", reason: t.reason },
      };
    case "scaleDown":
      return {
        ...state,
        slots: { ...state.slots, [t.slot]: { ...state.slots[t.slot], replicas: 0 } },
        release: release && { ...release, phase: "completed" },
      };
    case "restore":
      return {
        ...state,
        canaryWeight: 0,
        slots: { ...state.slots, [t.slot]: { ...t.release, replicas: fullReplicas } },
      };
    case "flipBack":
      return {
        ...state,
        stable: t.slot,
        canaryWeight: 0,
        slots: { ...state.slots, [t.slot]: withoutReplicas(state.slots[t.slot]) },
        release: release && { ...release, phase: "rolledBack", reason: t.reason },
      };
  }
}

/** The stable slot runs at the service's full size; an explicit count equal to it is the same thing. */
function withoutReplicas(release: SlotRelease): SlotRelease {
  const { replicas: _replicas, ...rest } = release;
  return rest;
}

export const replicasOf = (state: StageState, slot: Slot, fullReplicas: number) =>
  state.slots[slot].replicas ?? fullReplicas;

export function weightsOf(state: StageState): Weights {
  return weightsFor(state.stable, state.canaryWeight);
}

export function transitionMessage(t: Transition, record: ReleaseRecord, plan: PlanStep[]): string {
  const who = `release ${record.id} (${record.artifact.version})`;
  switch (t.kind) {
    case "deploy":
      return `${who}: deploy ${record.artifact.image} into ${record.candidateSlot} at weight 0`;
    case "setWeight":
      return `${who}: step ${t.position}/${plan.length} ${describeStep(plan[t.position - 1]!)} → ${record.candidateSlot} ${t.weight}%`;
    case "promote":
      return `${who}: promote ${record.candidateSlot} to stable`;
    case "rollback":
      return `${who}: roll back, ${record.candidateSlot} to weight 0 (${t.reason})`;
    case "scaleDown":
      return `${who}: scale down ${t.slot} after promotion`;
    case "restore":
      return `${who}: roll back, restore ${t.release.version} into ${t.slot}`;
    case "flipBack":
      return `${who}: roll back, flip stable to ${t.slot} (${t.reason})`;
  }
}

/** `refused`: a preRollout hook stopped the release before anything changed. */
export type Outcome = "promoted" | "rolledBack" | "paused" | "failed" | "refused" | "interrupted";

/** What the hooks at a point decided (src/hooks): go on, roll back, or pause for a person. */
export type CheckpointDecision =
  { action: "continue" } | { action: "rollback" | "pause"; reason: string };

export interface AnalysisResult {
  verdict: "pass" | "fail" | "inconclusive";
  reasons: string[];
  figures?: Record<string, unknown>;
}

export interface Effects {
  /**
   * One stack update that lands `next`, the state the machine computed for
   * transition `t`; resolves when the update succeeded.
   */
  apply(next: StageState, t: Transition, message: string): Promise<void>;
  /** Reads the weights actually in force and throws if they differ from `expected`. */
  verify(expected: Weights, when?: string): Promise<void>;
  smoke(): Promise<{ ok: boolean; detail: string }>;
  analyse(step: Extract<PlanStep, { kind: "analysis" }>, index: number): Promise<AnalysisResult>;
  sleep(seconds: number, label: string): Promise<void>;
  /** True when someone approved continuing past step `index` of this release. */
  approved(index: number): Promise<boolean>;
  note(event: string, detail: Record<string, unknown>): void;
  now(): number;
  /**
   * The release reached `point` (with the plan step index at step points):
   * the adapter records it and runs the hooks there. Optional: no hooks, no checkpoints.
   */
  checkpoint?(
    point: HookPoint,
    at?: { index?: number; reason?: string },
  ): Promise<CheckpointDecision>;
}

export interface MachineInput {
  state: StageState;
  plan: PlanStep[];
  fullReplicas: number;
  smokeCheck: boolean;
  scaleDownDelaySeconds: number;
  progressDeadlineSeconds: number;
  /** Analyses retried after an inconclusive verdict before the release pauses for a person. */
  inconclusiveRetries: number;
  /** Weights drifted from the stack: roll back (default) or pause for a person. */
  onDrift?: "rollback" | "pause";
  /** A resumed release reads the weights back before it does anything else. */
  resumed?: boolean;
  /** A resumed release whose rollback was cut short: it rolls back (this is the reason), nothing else. */
  rollingBack?: string;
}

/**
 * The weights read back from the live route differ from what the stack applied:
 * someone changed them outside the program. Thrown by `Effects.verify` (and by a
 * watched pause); the machine answers it with the configured policy.
 */
/**
 * A signal (SIGINT, SIGTERM) asked the release to stop. Effects throw it at a
 * safe point: before an update starts, after the one in flight has landed, or
 * out of a pause or analysis. The machine stops there: no rollback, nothing
 * more; the stack says where the release stands, and `--resume` or `rollback`
 * continues from it.
 */
export class InterruptedError extends Error {
  override name = "InterruptedError";
}

export class WeightsDriftedError extends Error {
  override name = "WeightsDriftedError";
  constructor(
    readonly expected: Weights,
    readonly found: Weights,
    readonly when: string,
  ) {
    super(
      `weights drifted ${when}: expected blue ${expected.blue} / green ${expected.green}, found blue ${found.blue} / green ${found.green}`,
    );
  }
}

export interface MachineResult {
  outcome: Outcome;
  state: StageState;
  reason?: string;
}

class StepFailure extends Error {}

/**
 * Runs (or resumes) the release recorded in `input.state.release` to an outcome.
 * A resumed release continues after its last completed update; no update is repeated.
 */
export async function runMachine(input: MachineInput, fx: Effects): Promise<MachineResult> {
  let state = input.state;
  const record = () => state.release!;
  const iso = () => new Date(fx.now()).toISOString();

  const apply = async (t: Transition) => {
    const message = transitionMessage(t, record(), input.plan);
    const next = nextState(state, t, input.fullReplicas, iso());
    await fx.apply(next, t, message);
    state = next;
  };

  // True while the weights in force were read back since the last wait (pause or analysis).
  let fresh = false;
  const verify = async (when = "after the update") => {
    try {
      await fx.verify(weightsOf(state), when);
      fresh = true;
    } catch (err) {
      if (err instanceof WeightsDriftedError) throw err;
      throw new StepFailure(`weights in force differ from the stack: ${(err as Error).message}`);
    }
  };

  const rollback = async (reason: string): Promise<MachineResult> => {
    fx.note("rollback", { reason });
    let lastError: unknown;
    // The rollback is a single update; retried because it is the one that must land.
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await apply({ kind: "rollback", reason });
        try {
          await verify();
        } catch (err) {
          fx.note("rollback.unverified", { reason: (err as Error).message });
        }
        try {
          // onRollback hooks observe; their failure is logged and changes nothing.
          await checkpoint("onRollback", { reason });
        } catch (err) {
          fx.note("hook.error", { point: "onRollback", error: (err as Error).message });
        }
        return { outcome: "rolledBack", state, reason };
      } catch (err) {
        if (err instanceof InterruptedError)
          return {
            outcome: "interrupted",
            state,
            reason: `${reason}; rollback interrupted: ${err.message}`,
          };
        lastError = err;
        fx.note("rollback.retry", { attempt, error: (err as Error).message });
      }
    }
    return {
      outcome: "failed",
      state,
      reason: `${reason}; rollback failed: ${(lastError as Error).message}`,
    };
  };

  const checkpoint = (point: HookPoint, at?: { index?: number; reason?: string }) =>
    fx.checkpoint
      ? fx.checkpoint(point, at)
      : Promise.resolve<CheckpointDecision>({ action: "continue" });

  /**
   * A gate: a failing hook rolls back, or pauses until someone approves (a
   * step's approval, or one for the whole release) or the hook passes when the
   * release is resumed. Undefined: go on.
   */
  const gate = async (point: HookPoint, index?: number): Promise<MachineResult | undefined> => {
    const decision = await checkpoint(point, index === undefined ? undefined : { index });
    if (decision.action === "continue") return undefined;
    if (decision.action === "rollback") return await rollback(decision.reason);
    if (await fx.approved(index ?? -1)) {
      fx.note("hook.approved", { point, reason: decision.reason });
      return undefined;
    }
    return {
      outcome: "paused",
      state,
      reason: `${decision.reason}; waiting for \`slipway approve\`, or a passing hook on --resume`,
    };
  };

  const deadline = Date.parse(record().startedAt) + input.progressDeadlineSeconds * 1000;

  if (input.rollingBack && (record().phase === "canary" || record().phase === "paused"))
    return await rollback(`finishing a rollback cut short: ${input.rollingBack}`);
  try {
    if (input.resumed && record().phase !== "deploying") await verify("on resume");
    if (record().phase === "deploying") {
      const pre = await checkpoint("preRollout");
      if (pre.action !== "continue")
        return { outcome: "refused", state, reason: `${pre.reason}; nothing was deployed` };
      await apply({ kind: "deploy", release: record(), replicas: input.fullReplicas });
      await verify();
      if (input.smokeCheck) {
        const smoke = await fx.smoke();
        fx.note(smoke.ok ? "smoke.passed" : "smoke.failed", { detail: smoke.detail });
        if (!smoke.ok) return await rollback(`smoke check failed: ${smoke.detail}`);
      }
    }

    if (record().phase === "canary") {
      // The checks that follow the last update: here, so that a resumed release runs them again
      // (like pauses and analyses, hooks change nothing).
      const position = record().position;
      const after =
        position === 0
          ? await gate("afterDeploy")
          : input.plan[position - 1]?.kind === "setWeight"
            ? await gate("afterStep", position - 1)
            : undefined;
      if (after) return after;
      for (let index = position; index < input.plan.length; index++) {
        if (fx.now() > deadline)
          return await rollback(`progress deadline of ${input.progressDeadlineSeconds}s passed`);
        const step = input.plan[index]!;
        // Drift made during the previous pause, analysis or gate is caught before traffic moves on.
        if (!fresh) await verify(`before step ${index + 1}`);
        const before = await gate("beforeStep", index);
        if (before) return before;
        if (step.kind === "setWeight") {
          await apply({ kind: "setWeight", weight: step.weight, position: index + 1 });
          await verify();
          const done = await gate("afterStep", index);
          if (done) return done;
          continue;
        } else if (step.kind === "pause") {
          if (step.untilApproved) {
            if (!(await fx.approved(index)))
              return { outcome: "paused", state, reason: `step ${index + 1} waits for approval` };
          } else {
            await fx.sleep(step.seconds ?? 0, `step ${index + 1}: ${describeStep(step)}`);
            fresh = false;
          }
        } else {
          let result = await fx.analyse(step, index);
          // An analysis over a drifted window never counts: the split it measured is not the plan's.
          await verify(`after the analysis of step ${index + 1}`);
          for (
            let retry = 0;
            result.verdict === "inconclusive" && retry < input.inconclusiveRetries;
            retry++
          ) {
            fx.note("analysis.retry", { index, reasons: result.reasons });
            result = await fx.analyse(step, index);
            await verify(`after the analysis of step ${index + 1}`);
          }
          if (result.verdict === "fail")
            return await rollback(
              `analysis failed at step ${index + 1}: ${result.reasons.join("; ")}`,
            );
          if (result.verdict === "inconclusive" && !(await fx.approved(index))) {
            return {
              outcome: "paused",
              state,
              reason: `analysis inconclusive at step ${index + 1}: ${result.reasons.join("; ")}`,
            };
          }
        }
        const done = await gate("afterStep", index);
        if (done) return done;
      }
      const confirmed = await gate("confirmPromotion");
      if (confirmed) return confirmed;
      await apply({ kind: "promote", at: iso() });
      await verify();
    }

    if (record().phase === "promoted") {
      // postRollout hooks observe the promotion (also again on a resume); a failure is only logged.
      await checkpoint("postRollout");
      const promotedAt = Date.parse(record().promotedAt ?? iso());
      const waitSeconds = Math.max(
        0,
        promotedAt / 1000 + input.scaleDownDelaySeconds - fx.now() / 1000,
      );
      await fx.sleep(waitSeconds, `scale down ${record().previous.slot} in`);
      // The old slot loses its pods only while no traffic is sent to it.
      await verify("before the scale-down");
      await apply({ kind: "scaleDown", slot: otherSlot(state.stable) });
    }
    if (record().phase === "completed") return { outcome: "promoted", state };
    if (record().phase === "rolledBack")
      return { outcome: "rolledBack", state, reason: record().reason };
    return { outcome: "failed", state, reason: `release is in phase ${record().phase}` };
  } catch (err) {
    if (err instanceof InterruptedError)
      return { outcome: "interrupted", state, reason: err.message };
    if (err instanceof WeightsDriftedError && record().phase === "promoted") {
      // The release passed every step: drift after its promotion is no evidence against it, so
      // no automatic rollback (that is a person's call); the scale-down is held, since it would
      // take the pods of a slot the drifted route still sends traffic to.
      return {
        outcome: "paused",
        state,
        reason: `${err.message} after promotion: the scale-down of ${otherSlot(state.stable)} is held; restore the weights and run slipway release --resume, or slipway rollback`,
      };
    }
    if (
      err instanceof WeightsDriftedError &&
      record().phase !== "promoted" &&
      record().phase !== "completed"
    ) {
      if (input.onDrift === "pause")
        return {
          outcome: "paused",
          state,
          reason: `${err.message} (slipway:canary.onDrift pause): restore the weights and run slipway release --resume, or slipway rollback`,
        };
      return await rollback(err.message);
    }
    const reason =
      err instanceof StepFailure || err instanceof WeightsDriftedError
        ? err.message
        : `stack update failed: ${(err as Error).message}`;
    if (record().phase === "promoted" || record().phase === "completed") {
      // After promotion the candidate is stable; a failed scale-down leaves traffic where it belongs.
      return { outcome: "promoted", state, reason };
    }
    return await rollback(reason);
  }
}

/**
 * The transitions that take the stage back to known-good from where `state`
 * stands, in as few updates as that point allows: mid-canary, the candidate's
 * weight to 0; after promotion while the old slot still runs the previous
 * release, flip back to it; later, restore that release into the idle slot,
 * then flip to it. Pure; `state.release` is the release being rolled back.
 */
export function rollbackTransitions(
  state: StageState,
  fullReplicas: number,
  reason: string,
): Transition[] {
  const rec = state.release;
  if (!rec) throw new Error("rollbackTransitions: the state records no release");
  if (rec.phase === "deploying" || rec.phase === "canary" || rec.phase === "paused")
    return [{ kind: "rollback", reason }];
  const previous = rec.previous.slot;
  const oldStillRuns =
    rec.phase === "promoted" &&
    state.slots[previous].image === rec.previous.image &&
    replicasOf(state, previous, fullReplicas) > 0;
  if (oldStillRuns) return [{ kind: "flipBack", slot: previous, reason }];
  const idle = otherSlot(state.stable);
  return [
    {
      kind: "restore",
      slot: idle,
      release: {
        image: rec.previous.image,
        version: rec.previous.version,
        ...(rec.previous.revision ? { revision: rec.previous.revision } : {}),
      },
    },
    { kind: "flipBack", slot: idle, reason },
  ];
}

export interface RollbackInput {
  state: StageState;
  fullReplicas: number;
  reason: string;
}

/**
 * `slipway rollback`: applies `rollbackTransitions` one update each, through the
 * same effects as a release. Throws what a failed update throws; the returned
 * state is what the last update landed.
 */
export async function runRollback(
  input: RollbackInput,
  fx: Pick<Effects, "apply" | "now">,
): Promise<{ state: StageState; transitions: Transition[] }> {
  let state = input.state;
  const transitions = rollbackTransitions(state, input.fullReplicas, input.reason);
  for (const t of transitions) {
    const next = nextState(state, t, input.fullReplicas, new Date(fx.now()).toISOString());
    await fx.apply(next, t, transitionMessage(t, state.release!, []));
    state = next;
  }
  return { state, transitions };
}
