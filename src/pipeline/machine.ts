import type { ReleaseRecord, SlotRelease } from "../config/schema";
import { ROLLBACK_ATTEMPTS } from "../defaults";
import {
  otherSlot,
  type HookPoint,
  type Outcome,
  type PauseReason,
  type PlanStep,
  type Slot,
  type Wait,
} from "../domain";
import { weightsFor, type Weights } from "../traffic/weights";
import { describeStep } from "./plan";
import { ConfigChangedError, NotServingError, RoutingNotFoundError } from "./errors";

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

/** What a drift pause advises: both commands work whatever became of the route. */
const RESUME_OR_ROLLBACK =
  "slipway release --resume puts the route back as the stack declares it and goes on, or slipway rollback";

/** What the hooks at a point decided (src/hooks): go on, roll back, or pause for a person. */
export type CheckpointDecision =
  | { action: "continue" }
  /** `hook`: the hook that decided (none when an alarm did). */
  | { action: "rollback" | "pause"; reason: string; hook?: string };

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
  /**
   * Reads what serves (each slot's live pods and image, the Gateway) and throws
   * NotServingError when `state` is not served. Optional: a stage without live objects to
   * read (render mode) has none.
   */
  serving?(state: StageState, when: string): Promise<void>;
  smoke(): Promise<{ ok: boolean; detail: string }>;
  analyse(step: Extract<PlanStep, { kind: "analysis" }>, index: number): Promise<AnalysisResult>;
  /** A timed wait: `label` is what people read, `wait` what a resumed release finds it by. */
  sleep(seconds: number, label: string, wait: Wait): Promise<void>;
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
    /** What else differs in the live route (an added backend or rule, another parent), in words. */
    readonly differences: string[] = [],
  ) {
    super(
      `weights drifted ${when}: expected blue ${expected.blue} / green ${expected.green}, found blue ${found.blue} / green ${found.green}` +
        (differences.length > 0
          ? `; the route differs from the stack: ${differences.join("; ")}`
          : ""),
    );
  }
}

export interface MachineResult {
  outcome: Outcome;
  state: StageState;
  reason?: string;
  /** Why it paused (outcome `paused`): the typed form of `reason`. */
  pause?: PauseReason;
}

class StepFailure extends Error {}

/**
 * What the machine asks of its effects, one request at a time: `machineSteps` yields them and
 * a driver answers each, `runMachine` through `Effects` (a rejected effect is thrown back in
 * where the machine asked), the release plan (src/releasePlan) with recorded answers.
 */
export type MachineRequest =
  | { op: "apply"; next: StageState; t: Transition; message: string }
  | { op: "verify"; expected: Weights; when: string }
  | { op: "serving"; state: StageState; when: string }
  | { op: "smoke" }
  | { op: "analyse"; step: Extract<PlanStep, { kind: "analysis" }>; index: number }
  | { op: "sleep"; seconds: number; label: string; wait: Wait }
  | { op: "approved"; index: number }
  | { op: "checkpoint"; point: HookPoint; at?: { index?: number; reason?: string } }
  | { op: "note"; event: string; detail: Record<string, unknown> }
  | { op: "now" }
  /** The time the states the machine computes carry (`updatedAt`, `promotedAt`). */
  | { op: "clock" };

interface Answers {
  apply: void;
  verify: void;
  serving: void;
  smoke: { ok: boolean; detail: string };
  analyse: AnalysisResult;
  sleep: void;
  approved: boolean;
  checkpoint: CheckpointDecision;
  note: void;
  now: number;
  clock: string;
}

type Steps<T> = Generator<MachineRequest, T, unknown>;

function* ask<K extends MachineRequest["op"]>(
  request: Extract<MachineRequest, { op: K }>,
): Steps<Answers[K]> {
  return (yield request) as Answers[K];
}

function perform(fx: Effects, r: MachineRequest): unknown {
  switch (r.op) {
    case "apply":
      return fx.apply(r.next, r.t, r.message);
    case "verify":
      return fx.verify(r.expected, r.when);
    case "serving":
      return fx.serving?.(r.state, r.when);
    case "smoke":
      return fx.smoke();
    case "analyse":
      return fx.analyse(r.step, r.index);
    case "sleep":
      return fx.sleep(r.seconds, r.label, r.wait);
    case "approved":
      return fx.approved(r.index);
    case "checkpoint":
      return fx.checkpoint ? fx.checkpoint(r.point, r.at) : { action: "continue" };
    case "note":
      return fx.note(r.event, r.detail);
    case "now":
      return fx.now();
    case "clock":
      return new Date(fx.now()).toISOString();
  }
}

/**
 * Runs (or resumes) the release recorded in `input.state.release` to an outcome.
 * A resumed release continues after its last completed update; no update is repeated.
 */
export async function runMachine(input: MachineInput, fx: Effects): Promise<MachineResult> {
  const steps = machineSteps(input);
  let step = steps.next();
  while (!step.done) {
    let answer: unknown;
    try {
      answer = await perform(fx, step.value);
    } catch (err) {
      step = steps.throw(err);
      continue;
    }
    step = steps.next(answer);
  }
  return step.value;
}

/** The machine itself (see `runMachine`), as the requests it makes of its effects. */
export function* machineSteps(input: MachineInput): Steps<MachineResult> {
  let state = input.state;
  const record = () => state.release!;
  const iso = () => ask({ op: "clock" });
  const note = (event: string, detail: Record<string, unknown>) =>
    ask({ op: "note", event, detail });

  const apply = function* (t: Transition) {
    const message = transitionMessage(t, record(), input.plan);
    const next = nextState(state, t, input.fullReplicas, yield* iso());
    yield* ask({ op: "apply", next, t, message });
    state = next;
  };

  // True while the weights in force were read back since the last wait (pause or analysis).
  let fresh = false;
  const verify = function* (when = "after the update") {
    try {
      yield* ask({ op: "verify", expected: weightsOf(state), when });
    } catch (err) {
      // Drift and a route gone are answered on their own (after promotion: a pause, not a
      // "promoted" over a route that is not the stack's).
      if (err instanceof WeightsDriftedError || err instanceof RoutingNotFoundError) throw err;
      throw new StepFailure(`weights in force differ from the stack: ${(err as Error).message}`);
    }
    // The weights are only half of it: a slot at its weight must also serve.
    yield* ask({ op: "serving", state, when });
    fresh = true;
  };

  const checkpoint = (point: HookPoint, at?: { index?: number; reason?: string }) =>
    ask({ op: "checkpoint", point, ...(at === undefined ? {} : { at }) });

  const rollback = function* (reason: string): Steps<MachineResult> {
    yield* note("rollback", { reason });
    let lastError: unknown;
    // The rollback is a single update; retried because it is the one that must land.
    for (let attempt = 1; attempt <= ROLLBACK_ATTEMPTS; attempt++) {
      try {
        yield* apply({ kind: "rollback", reason });
        let unverified: string | undefined;
        try {
          yield* verify();
        } catch (err) {
          unverified = (err as Error).message;
          yield* note("rollback.unverified", { reason: unverified });
        }
        try {
          // onRollback hooks observe; their failure is logged and changes nothing.
          yield* checkpoint("onRollback", { reason });
        } catch (err) {
          yield* note("hook.error", { point: "onRollback", error: (err as Error).message });
        }
        // The update landed, so the stack is rolled back; what is in force was not confirmed,
        // and the report says so rather than a plain "rolled back".
        return {
          outcome: "rolledBack",
          state,
          reason:
            unverified === undefined
              ? reason
              : `${reason}; the rollback landed but what is in force could not be confirmed: ${unverified}`,
        };
      } catch (err) {
        if (err instanceof InterruptedError) return rollbackCutShort(reason, err);
        lastError = err;
        yield* note("rollback.retry", { attempt, error: (err as Error).message });
      }
    }
    return rollbackCutShort(reason, lastError);
  };

  /** A rollback that did not land: interrupted by a signal, or failed (the stack says where it stands). */
  const rollbackCutShort = (reason: string, err: unknown): MachineResult =>
    err instanceof InterruptedError
      ? { outcome: "interrupted", state, reason: `${reason}; rollback interrupted: ${err.message}` }
      : {
          outcome: "failed",
          state,
          reason: `${reason}; rollback failed: ${(err as Error).message}`,
        };

  /** After promotion: the machine's own rollback transitions from here (flip back, or restore and flip). */
  const flipBack = function* (reason: string): Steps<MachineResult> {
    yield* note("rollback", { reason });
    try {
      for (const t of rollbackTransitions(state, input.fullReplicas, reason)) yield* apply(t);
    } catch (err) {
      return rollbackCutShort(reason, err);
    }
    try {
      yield* ask({ op: "verify", expected: weightsOf(state), when: "after the rollback" });
    } catch (err) {
      yield* note("rollback.unverified", { reason: (err as Error).message });
    }
    return { outcome: "rolledBack", state, reason };
  };

  /**
   * A gate: a failing hook rolls back, or pauses until someone approves (a
   * step's approval, or one for the whole release) or the hook passes when the
   * release is resumed. Undefined: go on.
   */
  const gate = function* (point: HookPoint, index?: number): Steps<MachineResult | undefined> {
    const decision = yield* checkpoint(point, index === undefined ? undefined : { index });
    if (decision.action === "continue") return undefined;
    if (decision.action === "rollback") return yield* rollback(decision.reason);
    if (yield* ask({ op: "approved", index: index ?? -1 })) {
      yield* note("hook.approved", { point, reason: decision.reason });
      return undefined;
    }
    return {
      outcome: "paused",
      state,
      reason: `${decision.reason}; waiting for \`slipway approve\`, or a passing hook on --resume`,
      pause: {
        kind: "hook",
        point,
        ...(decision.hook === undefined ? {} : { hook: decision.hook }),
        ...(index === undefined ? {} : { step: index }),
      },
    };
  };

  const deadline = Date.parse(record().startedAt) + input.progressDeadlineSeconds * 1000;

  if (input.rollingBack && (record().phase === "canary" || record().phase === "paused"))
    return yield* rollback(`finishing a rollback cut short: ${input.rollingBack}`);
  try {
    if (input.resumed && record().phase !== "deploying") yield* verify("on resume");
    if (record().phase === "deploying") {
      const pre = yield* checkpoint("preRollout");
      if (pre.action !== "continue")
        return { outcome: "refused", state, reason: `${pre.reason}; nothing was deployed` };
      yield* apply({ kind: "deploy", release: record(), replicas: input.fullReplicas });
      yield* verify();
      if (input.smokeCheck) {
        const smoke = yield* ask({ op: "smoke" });
        yield* note(smoke.ok ? "smoke.passed" : "smoke.failed", { detail: smoke.detail });
        if (!smoke.ok) return yield* rollback(`smoke check failed: ${smoke.detail}`);
      }
    }

    if (record().phase === "canary") {
      // The checks that follow the last update: here, so that a resumed release runs them again
      // (like pauses and analyses, hooks change nothing).
      const position = record().position;
      const after =
        position === 0
          ? yield* gate("afterDeploy")
          : input.plan[position - 1]?.kind === "setWeight"
            ? yield* gate("afterStep", position - 1)
            : undefined;
      if (after) return after;
      for (let index = position; index < input.plan.length; index++) {
        if ((yield* ask({ op: "now" })) > deadline)
          return yield* rollback(`progress deadline of ${input.progressDeadlineSeconds}s passed`);
        const step = input.plan[index]!;
        // Drift made during the previous pause, analysis or gate is caught before traffic moves on.
        if (!fresh) yield* verify(`before step ${index + 1}`);
        const before = yield* gate("beforeStep", index);
        if (before) return before;
        if (step.kind === "setWeight") {
          yield* apply({ kind: "setWeight", weight: step.weight, position: index + 1 });
          yield* verify();
          const done = yield* gate("afterStep", index);
          if (done) return done;
          continue;
        } else if (step.kind === "pause") {
          if (step.untilApproved) {
            if (!(yield* ask({ op: "approved", index })))
              return {
                outcome: "paused",
                state,
                reason: `step ${index + 1} waits for approval`,
                pause: { kind: "awaitingApproval", step: index },
              };
          } else {
            const seconds = step.seconds ?? 0;
            yield* ask({
              op: "sleep",
              seconds,
              label: `step ${index + 1}: ${describeStep(step)}`,
              wait: { kind: "stepPause", step: index, seconds },
            });
            fresh = false;
          }
        } else {
          let result = yield* ask({ op: "analyse", step, index });
          // An analysis over a drifted window never counts: the split it measured is not the plan's.
          yield* verify(`after the analysis of step ${index + 1}`);
          for (
            let retry = 0;
            result.verdict === "inconclusive" && retry < input.inconclusiveRetries;
            retry++
          ) {
            yield* note("analysis.retry", { index, reasons: result.reasons });
            result = yield* ask({ op: "analyse", step, index });
            yield* verify(`after the analysis of step ${index + 1}`);
          }
          if (result.verdict === "fail")
            return yield* rollback(
              `analysis failed at step ${index + 1}: ${result.reasons.join("; ")}`,
            );
          if (result.verdict === "inconclusive" && !(yield* ask({ op: "approved", index }))) {
            return {
              outcome: "paused",
              state,
              reason: `analysis inconclusive at step ${index + 1}: ${result.reasons.join("; ")}`,
              pause: { kind: "inconclusive", step: index },
            };
          }
        }
        const done = yield* gate("afterStep", index);
        if (done) return done;
      }
      const confirmed = yield* gate("confirmPromotion");
      if (confirmed) return confirmed;
      // Read back and probed right before the flip, however fresh the last read: a gate or a
      // pause may have passed since, and a promotion into a slot that does not serve is an outage.
      yield* verify("before promotion");
      yield* apply({ kind: "promote", at: yield* iso() });
      yield* verify();
    }

    if (record().phase === "promoted") {
      // postRollout hooks observe the promotion (also again on a resume); a failure is only logged.
      yield* checkpoint("postRollout");
      const promotedAt = Date.parse(record().promotedAt ?? (yield* iso()));
      const waitSeconds = Math.max(
        0,
        promotedAt / 1000 + input.scaleDownDelaySeconds - (yield* ask({ op: "now" })) / 1000,
      );
      const slot = record().previous.slot;
      yield* ask({
        op: "sleep",
        seconds: waitSeconds,
        label: `scale down ${slot} in`,
        wait: { kind: "scaleDownDelay", slot, seconds: waitSeconds },
      });
      // The old slot loses its pods only while no traffic is sent to it.
      yield* verify("before the scale-down");
      yield* apply({ kind: "scaleDown", slot: otherSlot(state.stable) });
    }
    if (record().phase === "completed") return { outcome: "promoted", state };
    if (record().phase === "rolledBack")
      return { outcome: "rolledBack", state, reason: record().reason };
    return { outcome: "failed", state, reason: `release is in phase ${record().phase}` };
  } catch (err) {
    if (err instanceof InterruptedError)
      return { outcome: "interrupted", state, reason: err.message };
    if (err instanceof ConfigChangedError) {
      // Config drift, answered as weights drift is: a rollback (the one update an edited config
      // cannot ride along with) or, with onDrift pause and always after promotion, a person's call.
      const afterPromotion = record().phase === "promoted" || record().phase === "completed";
      if (afterPromotion || input.onDrift === "pause")
        return {
          outcome: "paused",
          state,
          reason: `${err.message}${afterPromotion ? "; the scale-down is held" : ` (slipway:canary.onDrift pause)`}: then slipway release --resume, or slipway rollback`,
          pause: { kind: "configChanged", keys: err.keys, afterPromotion },
        };
      return yield* rollback(err.message);
    }
    if (err instanceof NotServingError && record().phase === "promoted") {
      // The new stable does not serve: the old slot is not scaled down; traffic goes back to
      // it (while it still runs the previous release, one update), whatever the steps said.
      return yield* flipBack(
        `${err.message}: the scale-down is held and traffic returns to ${record().previous.slot}`,
      );
    }
    if (
      (err instanceof WeightsDriftedError || err instanceof RoutingNotFoundError) &&
      record().phase === "promoted"
    ) {
      // The release passed every step: drift after its promotion (an edited or a deleted route)
      // is no evidence against it, so no automatic rollback (that is a person's call); the
      // scale-down is held, since it would take the pods of a slot the drifted route still sends
      // traffic to. Never "promoted" while the route is not the stack's.
      return {
        outcome: "paused",
        state,
        reason: `${err instanceof RoutingNotFoundError ? `the route could not be read back: ${err.message}` : err.message} after promotion: the scale-down of ${otherSlot(state.stable)} is held; ${RESUME_OR_ROLLBACK}`,
        pause: { kind: "drift", afterPromotion: true },
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
          reason: `${err.message} (slipway:canary.onDrift pause): ${RESUME_OR_ROLLBACK}`,
          pause: { kind: "drift", afterPromotion: false },
        };
      return yield* rollback(err.message);
    }
    const reason =
      err instanceof StepFailure ||
      err instanceof WeightsDriftedError ||
      err instanceof NotServingError
        ? err.message
        : err instanceof RoutingNotFoundError
          ? `the route could not be read back: ${err.message}`
          : `stack update failed: ${(err as Error).message}`;
    if (record().phase === "promoted" || record().phase === "completed") {
      // After promotion the candidate is stable; a failed scale-down leaves traffic where it belongs.
      return { outcome: "promoted", state, reason };
    }
    return yield* rollback(reason);
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
