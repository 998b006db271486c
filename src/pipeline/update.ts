import type { ReleaseLog } from "./log";
import { failpoint } from "./failpoint";
import { InterruptedError, weightsOf, type StageState, type Transition } from "./machine";
import type { Reporter } from "./release";
import type { UpdatableStack, UpdateResult } from "./stack";

/** Where one stage's updates land and are recorded. */
export interface StageUpdater {
  stack: UpdatableStack;
  log: ReleaseLog;
  report: Reporter;
  releaseId: string;
  /** SIGINT/SIGTERM: an update not yet handed to the engine does not start. */
  signal?: AbortSignal;
}

/**
 * The one writer of stage state, for `release` and `rollback` alike: writes
 * `next` (the machine's state for transition `t`) into the stack file, lands it
 * with one update and records it. On failure the stack file goes back to
 * `current`, what the stack actually holds, and the error is rethrown.
 */
export async function applyUpdate(
  u: StageUpdater,
  current: StageState,
  next: StageState,
  t: Transition,
  message: string,
  step?: { index: number; description: string },
): Promise<UpdateResult> {
  const base = { stage: u.stack.stage, releaseId: u.releaseId, step };
  u.stack.writeState(next);
  // `transition` and `updatedAt` let a recovery tell whether an update cut short by a kill landed.
  u.log.append({
    ...base,
    event: "update.started",
    weights: weightsOf(next),
    reason: message,
    figures: { transition: t.kind, updatedAt: next.release?.updatedAt },
  });
  u.report({ type: "update", phase: "started", message });
  let result: UpdateResult;
  try {
    await failpoint("before", t.kind);
    if (u.signal?.aborted)
      throw new InterruptedError(
        `${String(u.signal.reason ?? "interrupted")} before: ${message} (not started)`,
      );
    result = await u.stack.up(message, t.kind);
    await failpoint("after", t.kind);
  } catch (err) {
    u.stack.writeState(current);
    u.log.append({
      ...base,
      event: "update.failed",
      reason: (err as Error).message.slice(0, 2000),
    });
    u.report({ type: "update", phase: "failed", message: (err as Error).message.split("\n")[0]! });
    throw err;
  }
  u.log.append({
    ...base,
    event: "update.succeeded",
    weights: weightsOf(next),
    figures: { changes: result.changes, durationMs: result.durationMs, transition: t.kind },
  });
  // The milestones `history` and promotion read, recorded when their update landed.
  if (t.kind === "promote")
    u.log.append({
      ...base,
      event: "release.promoted",
      weights: weightsOf(next),
      figures: { stable: next.stable, promotedAt: next.release?.promotedAt },
    });
  if (t.kind === "scaleDown")
    u.log.append({ ...base, event: "release.scaledDown", figures: { slot: t.slot } });
  u.report({
    type: "update",
    phase: "succeeded",
    message,
    changes: result.changes,
    durationMs: result.durationMs,
  });
  return result;
}
