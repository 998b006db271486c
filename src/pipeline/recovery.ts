import { releaseRecordSchema, type ReleaseRecord } from "../config/schema";
import { closesRelease, closingEventOfPhase, otherSlot } from "../domain";
import type { StageOutputs } from "../contract/outputs";
import { clearDeadStageEngineLocks, describeLock } from "./engineLock";
import { rollbackCutShort } from "./condition";
import { releaseRecords, verifiedRecords, type StoreLog } from "../store/store";
import type { UpdatableStack } from "./stack";
import type { Weights } from "../traffic/weights";
import type { LogRecord } from "./log";

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
  log: StoreLog;
  releaseId: string;
  note: (message: string) => void;
  /** The host of a runner whose expired lease this one took over: its engine locks are dead. */
  deadHost?: string;
}): Promise<void> {
  const { stack, log } = args;
  const cleared = await clearDeadStageEngineLocks(args.backendUrl, stack.stage, {
    deadHosts: args.deadHost ? [args.deadHost] : [],
  });
  if (cleared.length > 0) {
    await log.append({
      stage: stack.stage,
      releaseId: args.releaseId,
      event: "lock.cleared",
      reason: `the engine's lock of an update whose process is gone (or whose runner's lease expired): ${cleared.map(describeLock).join("; ")}`,
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
    await log.append({
      stage: stack.stage,
      releaseId: args.releaseId,
      event: "lock.cleared",
      reason: `pending operations of a killed update resolved (removed from the state; the next update converges them): ${pending.map((p) => `${p.type} ${p.urn}`).join("; ")}`,
      figures: { pendingOperations: pending },
    });
    args.note(`resolved ${pending.length} pending operation(s) of a killed update`);
  }
}

/**
 * An update cut short by a kill: the release's last `update.started` has no
 * result. Recorded now as it ended, from the stack's outputs (which carry the
 * `updatedAt` of the state the update was to land): `update.succeeded` (and the
 * promote/scale-down milestone) when it landed, `update.failed` when it did not,
 * so the log agrees with the stack and a landed update is never counted twice.
 */
export async function recordCutShortUpdate(
  log: StoreLog,
  stage: string,
  releaseId: string,
  outputs: StageOutputs | undefined,
  live?: Weights,
): Promise<"routeAhead" | undefined> {
  const records = await releaseRecords(log, releaseId);
  const i = records.map((r) => r.event).lastIndexOf("update.started");
  if (i < 0) return undefined;
  const result = records
    .slice(i + 1)
    .find((r) => r.event === "update.succeeded" || r.event === "update.failed");
  if (result) {
    // An update that failed (or was cancelled by a Ctrl-C) after the engine had changed the
    // route leaves it ahead of the outputs just as a kill does; so does a restoration of the
    // route that failed in turn.
    if (!live || !outputs || result.event !== "update.failed") return undefined;
    if (sameWeights(live, outputs.weights)) return undefined;
    const intended =
      (result.figures?.routeLanded as Weights | undefined) ??
      (records[i]!.figures?.transition === RESTORE_ROUTE ? live : records[i]!.weights);
    return intended && sameWeights(live, intended) ? "routeAhead" : undefined;
  }
  const started = records[i]!;
  const f = started.figures ?? {};
  const base = { stage, releaseId, ...(started.step ? { step: started.step } : {}) };
  if (f.transition === RESTORE_ROUTE) {
    // The outputs never change with a restoration: the live route says whether it landed.
    const restored = !!outputs && !!live && sameWeights(live, outputs.weights);
    await log.append({
      ...base,
      event: restored ? "update.succeeded" : "update.failed",
      ...(restored ? { weights: live } : {}),
      reason: restored
        ? `landed before the process ended (the live route carries the stack's weights); recorded on recovery: ${started.reason}`
        : `cut short before the route was restored: ${started.reason}`,
      figures: {
        transition: f.transition,
        ...(restored ? { recovered: true } : { cutShort: true }),
      },
    });
    return !restored && live ? "routeAhead" : undefined;
  }
  const landed =
    outputs?.release?.id === releaseId &&
    typeof f.updatedAt === "string" &&
    outputs.release.updatedAt === f.updatedAt;
  if (!outputs || !landed) {
    // The engine had changed the route, then the process ended before the stack's outputs were
    // written: the live route carries this update's weights, the outputs the previous ones.
    const intended = started.weights;
    const ahead =
      !!outputs &&
      !!live &&
      !!intended &&
      sameWeights(live, intended) &&
      !sameWeights(live, outputs.weights);
    await log.append({
      ...base,
      event: "update.failed",
      reason: ahead
        ? `cut short after it changed the route (live blue ${live!.blue} / green ${live!.green}, this update's weights) but before the stack recorded it: ${started.reason}`
        : `cut short, did not land (the stack's outputs do not carry it): ${started.reason}`,
      figures: {
        transition: f.transition,
        cutShort: true,
        ...(ahead ? { routeLanded: live } : {}),
      },
    });
    return ahead ? "routeAhead" : undefined;
  }
  await log.append({
    ...base,
    event: "update.succeeded",
    weights: outputs.weights,
    reason: `landed before the process ended; recorded on recovery: ${started.reason}`,
    figures: { transition: f.transition, recovered: true },
  });
  if (f.transition === "promote")
    await log.append({
      ...base,
      event: "release.promoted",
      weights: outputs.weights,
      figures: { stable: outputs.stableSlot, promotedAt: outputs.release!.promotedAt },
    });
  if (f.transition === "scaleDown")
    await log.append({
      ...base,
      event: "release.scaledDown",
      figures: { slot: otherSlot(outputs.stableSlot) },
    });
  return undefined;
}

/** The transition of the update that takes a route ahead of the stack back to it (release.ts). */
export const RESTORE_ROUTE = "restoreRoute";

export const sameWeights = (a: Weights, b: Weights) => a.blue === b.blue && a.green === b.green;

/**
 * The stack says the release ended (completed or rolled back: its last update
 * landed) but the log lacks the record of that end: the process ended before
 * writing it. Appends it; returns the release's outcome, or undefined when nothing
 * was missing. Only the end the stack says counts: a `release.failed` (its rollback
 * did not land, as far as that process saw) is followed by the `release.rolledBack`
 * of the rollback the stack shows landed.
 */
export async function closeSettledRelease(
  log: StoreLog,
  stage: string,
  outputs: StageOutputs | undefined,
): Promise<"promoted" | "rolledBack" | undefined> {
  const rec = outputs?.release;
  if (!rec || (rec.phase !== "completed" && rec.phase !== "rolledBack")) return undefined;
  const records = await releaseRecords(log, rec.id);
  const closing = closingEventOfPhase(rec.phase);
  if (records.length === 0 || records.some((r) => r.event === closing)) return undefined;
  await recordCutShortUpdate(log, stage, rec.id, outputs);
  await log.append({
    stage,
    releaseId: rec.id,
    event: rec.phase === "completed" ? "release.completed" : "release.rolledBack",
    weights: outputs!.weights,
    reason: `${rec.reason ? `${rec.reason}; ` : ""}recorded on recovery: the stack says ${rec.phase}, the process ended before recording it`,
  });
  return rec.phase === "completed" ? "promoted" : "rolledBack";
}

/**
 * A release the log started whose deploy never landed (the stack's outputs do not
 * name it) and that nothing closed (CLOSING_EVENTS, src/domain): a kill before or
 * during its first update. Returns its record (from `release.started`), which
 * `--resume` deploys. A release that ended `failed` (its deploy and then its rollback
 * did not land) is closed: its verdict was announced, and a new release starts afresh.
 */
export async function unlandedRelease(
  log: StoreLog,
  outputs: StageOutputs | undefined,
): Promise<ReleaseRecord | undefined> {
  return unlandedIn(await verifiedRecords(log), outputs);
}

/** unlandedRelease over records already read (a verified log, oldest first). Pure. */
export function unlandedIn(
  records: LogRecord[],
  outputs: StageOutputs | undefined,
): ReleaseRecord | undefined {
  const started = records.filter((r) => r.event === "release.started").at(-1);
  if (!started || started.releaseId === outputs?.release?.id) return undefined;
  const own = records.filter((r) => r.releaseId === started.releaseId);
  if (own.some((r) => closesRelease(r.event))) return undefined;
  const parsed = releaseRecordSchema.safeParse(started.figures?.record);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Why an unlanded release must not be deployed now, or undefined when it still may: it was
 * started against a stable release the stage no longer has (another runner's release ended
 * since, or a rollback moved traffic), so its candidate slot may now be the stable one. Pure.
 */
export function unlandedIsStale(
  unlanded: ReleaseRecord,
  outputs: StageOutputs,
): string | undefined {
  const stable = outputs.releases[outputs.stableSlot];
  if (
    unlanded.candidateSlot !== outputs.stableSlot &&
    unlanded.previous.slot === outputs.stableSlot &&
    unlanded.previous.image === stable.image
  )
    return undefined;
  const into =
    unlanded.candidateSlot === outputs.stableSlot
      ? "would replace the stable release that serves all traffic"
      : "would start from a stage that has moved on";
  return (
    `release ${unlanded.id} (${unlanded.artifact.version}) was started against stable ${unlanded.previous.version} in ${unlanded.previous.slot}, ` +
    `but the stage's stable release is now ${stable.version} in ${outputs.stableSlot}: deploying it into ${unlanded.candidateSlot} ${into}`
  );
}

/** The rollback a kill or signal cut short (its update started, none landed since), or undefined. */
export async function rollbackUnderWay(
  log: StoreLog,
  releaseId: string,
): Promise<string | undefined> {
  return rollbackCutShort(await releaseRecords(log, releaseId));
}
