import type { StageOutputs } from "../contract/outputs";
import type { LogRecord } from "./log";
import type { StoreLog } from "../store/store";
import { ConfigChangedError } from "./errors";
import { failpoint } from "./failpoint";
import { InterruptedError, weightsOf, type StageState, type Transition } from "./machine";
import type { Reporter } from "../domain";
import type { UpdatableStack, UpdateResult, UpOptions } from "./stack";
import type { Slot } from "../domain";
import {
  changedConfigKeys,
  stackFilePath,
  stageConfigFingerprint,
  type ConfigFingerprint,
} from "./stackFile";

/** Where one stage's updates land and are recorded. */
export interface StageUpdater {
  stack: UpdatableStack;
  log: StoreLog;
  report: Reporter;
  releaseId: string;
  /** SIGINT/SIGTERM: an update not yet handed to the engine does not start. */
  signal?: AbortSignal;
  /** The stage's routing resource (its outputs name it): all a step or rollback may change. */
  routing: StageOutputs["routing"];
  /** The people-owned config the release started with; an update over an edited one is refused. */
  config?: ConfigGuard;
  /**
   * The routing resource can be read back from where it lives (a cluster's API, a cloud), so a
   * rollback refreshes it first. False in render mode, where there is nothing to read.
   */
  refreshable?: boolean;
  /**
   * The Deployment (namespace/name) of a slot, on Kubernetes stages: a rollback re-applies the
   * stable slot's as the stack declares it (someone may have changed its image or scaled it
   * down: traffic is about to go back to it), unless the people-owned config was edited since
   * the release started (then the rollback stays on the route, so no edit rides along).
   */
  slotWorkload?: (slot: Slot) => string;
  /**
   * Proves this runner still holds the stage's lease (`lease.renew()`), before anything of an
   * update is written. What it throws (LeaseLostError, StoreUnreachableError) is rethrown with
   * nothing written: no stack file, no record, no update.
   */
  fence?: () => Promise<void>;
}

/** The config a release started with, and how to read it now (stackFile.ts). */
export interface ConfigGuard {
  started: ConfigFingerprint;
  /** The stack file people edit: what the refusal names. */
  file: string;
  read(): ConfigFingerprint;
}

/**
 * The guard of a release's updates on `stage`: `started` is what its `release.started` record
 * holds (`figures.config`); a release recorded before fingerprints existed starts from now.
 */
export function configGuard(projectDir: string, stage: string, records: LogRecord[]): ConfigGuard {
  const read = () => stageConfigFingerprint(projectDir, stage);
  const recorded = records.find((r) => r.event === "release.started")?.figures?.config;
  const started =
    recorded && typeof recorded === "object" && !Array.isArray(recorded)
      ? (recorded as ConfigFingerprint)
      : read();
  return { started, file: stackFilePath(projectDir, stage), read };
}

/**
 * Transitions whose update changes the routing resource and nothing else (the design's
 * invariants 1 and 2): the engine is told so (`--target`), so an edit of anything else, in
 * the stack file or the program, cannot ride along with a canary step or a rollback.
 */
const ROUTING_ONLY: readonly Transition["kind"][] = ["setWeight", "rollback"];

/**
 * Transitions that first read what they apply back from the cluster (the engine's `--refresh`):
 * a rollback takes the route back to what the stack declares even when it was deleted (it is
 * created again) or edited outside the stack (an added rule or backend is removed), instead of
 * failing on an object the state no longer describes. The mid-canary rollback is limited by
 * `--target` to the route (and the stable slot's workload); the rollbacks after promotion
 * (flip back, restore) are whole updates, so the whole stage is read back and re-applied. So is
 * a release's deploy: a release starts from the stage as the stack declares it, whatever was
 * changed by hand since (a candidate slot's image or size left edited by an earlier release).
 */
const REFRESHED: readonly Transition["kind"][] = ["deploy", "rollback", "flipBack", "restore"];

/** A rollback reads the route (and the stable slot's workload) back first and re-applies them. */
function recoveryOptions(u: StageUpdater, t: Transition, next: StageState): UpOptions {
  if (!u.refreshable || !REFRESHED.includes(t.kind)) return {};
  if (t.kind !== "rollback") return { refresh: true };
  const edited = u.config ? changedConfigKeys(u.config.started, u.config.read()).length > 0 : false;
  return {
    refresh: true,
    ...(u.slotWorkload && !edited ? { alsoDeployments: [u.slotWorkload(next.stable)] } : {}),
  };
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
  // Fencing: a runner whose lease another runner took over must not land this update or record it.
  await u.fence?.();
  // A rollback still runs over an edited config: it is limited to the routing resource.
  const changed =
    u.config && t.kind !== "rollback" ? changedConfigKeys(u.config.started, u.config.read()) : [];
  if (changed.length > 0) {
    const err = new ConfigChangedError(changed, u.config!.file, message);
    await u.log.append({
      ...base,
      event: "config.changed",
      reason: err.message,
      figures: { keys: changed, file: u.config!.file, transition: t.kind },
    });
    u.report({ type: "update", phase: "failed", message: err.message });
    throw err;
  }
  u.stack.writeState(next);
  // `transition` and `updatedAt` let a recovery tell whether an update cut short by a kill landed.
  await u.log.append({
    ...base,
    event: "update.started",
    weights: weightsOf(next),
    reason: message,
    figures: { transition: t.kind, updatedAt: next.release?.updatedAt },
  });
  u.report({ type: "update", phase: "started", message });
  let result: UpdateResult;
  let repaired: string[] | undefined;
  let repairFailed: string | undefined;
  try {
    await failpoint("before", t.kind);
    if (u.signal?.aborted)
      throw new InterruptedError(
        `${String(u.signal.reason ?? "interrupted")} before: ${message} (not started)`,
      );
    const only = ROUTING_ONLY.includes(t.kind) ? u.routing : undefined;
    const options = recoveryOptions(u, t, next);
    try {
      result = await u.stack.up(message, t.kind, only, options);
    } catch (err) {
      // Re-applying the stable slot must never keep a rollback from landing: the route alone.
      if (!options.alsoDeployments?.length || u.signal?.aborted) throw err;
      repairFailed = (err as Error).message.split("\n").slice(0, 6).join(" ").slice(0, 600);
      u.report({
        type: "info",
        message: `the rollback could not re-apply ${options.alsoDeployments.join(", ")} (${repairFailed}); it lands on the route alone`,
      });
      result = await u.stack.up(message, t.kind, only, { refresh: options.refresh });
    }
    repaired = repairFailed ? undefined : options.alsoDeployments;
    await failpoint("after", t.kind);
  } catch (err) {
    u.stack.writeState(current);
    await u.log.append({
      ...base,
      event: "update.failed",
      reason: (err as Error).message.slice(0, 2000),
    });
    u.report({ type: "update", phase: "failed", message: (err as Error).message.split("\n")[0]! });
    throw err;
  }
  await u.log.append({
    ...base,
    event: "update.succeeded",
    weights: weightsOf(next),
    figures: {
      changes: result.changes,
      durationMs: result.durationMs,
      transition: t.kind,
      // What a rollback re-applied besides the route, or why it could not.
      ...(repaired ? { repaired } : {}),
      ...(repairFailed ? { repairFailed } : {}),
    },
  });
  // The milestones `history` and promotion read, recorded when their update landed.
  if (t.kind === "promote")
    await u.log.append({
      ...base,
      event: "release.promoted",
      weights: weightsOf(next),
      figures: { stable: next.stable, promotedAt: next.release?.promotedAt },
    });
  if (t.kind === "scaleDown")
    await u.log.append({ ...base, event: "release.scaledDown", figures: { slot: t.slot } });
  u.report({
    type: "update",
    phase: "succeeded",
    message,
    changes: result.changes,
    durationMs: result.durationMs,
  });
  return result;
}
