import { clearDeadEngineLocks, describeLock } from "./engineLock";
import type { ReleaseLog } from "./log";
import type { UpdatableStack } from "./stack";

/**
 * What a killed release leaves behind, cleared before a resume, a rollback or a
 * new release touches the stack (the caller holds the stage's lease, so no other
 * slipway runs here): the engine's lock whose process is gone, and operations the
 * killed update left pending. Each is recorded in the release log; a live lock is
 * left alone (the update then fails "locked", which is the truth).
 */
export async function recoverInterruptedEngine(args: {
  stack: UpdatableStack;
  backendUrl: string;
  log: ReleaseLog;
  releaseId: string;
  note: (message: string) => void;
}): Promise<void> {
  const { stack, log } = args;
  const cleared = clearDeadEngineLocks(args.backendUrl, stack.stage);
  if (cleared.length > 0) {
    log.append({
      stage: stack.stage,
      releaseId: args.releaseId,
      event: "lock.cleared",
      reason: `the engine's lock of an update whose process is gone: ${cleared.map(describeLock).join("; ")}`,
      figures: {
        locks: cleared.map((l) => ({ file: l.file, pid: l.pid, host: l.host, since: l.since })),
      },
    });
    args.note(
      `cleared ${cleared.length} dead engine lock(s): ${cleared.map(describeLock).join("; ")}`,
    );
  }
  const pending = (await stack.clearPendingOperations?.()) ?? [];
  if (pending.length > 0) {
    log.append({
      stage: stack.stage,
      releaseId: args.releaseId,
      event: "lock.cleared",
      reason: `pending operations of a killed update resolved (removed from the state; the next update converges them): ${pending.map((p) => `${p.type} ${p.urn}`).join("; ")}`,
      figures: { pendingOperations: pending },
    });
    args.note(`resolved ${pending.length} pending operation(s) of a killed update`);
  }
}
