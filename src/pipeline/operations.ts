import type { ReleaseRecord, StageConfig } from "../config/schema";
import { flagHealth } from "../config/flags";
import { closesRelease, pipelineExitCode, SETTLED_PHASES, type Reporter } from "../domain";
import type { StageOutputs } from "../contract/outputs";
import { parseImageRef } from "../governance/artifact";
import { checkStageName, resolveContext, type PipelineContext } from "./context";
import { guardLease, lostLeaseReason } from "./leaseGuard";
import {
  checkLeaseSettings,
  releaseRecords,
  runnerHolder,
  verifiedRecords,
  type Lease,
  type ReleaseStore,
} from "../store/store";
import { storeFor } from "../store/url";
import { armedFailpoint } from "./failpoint";
import { RefusedError, UnknownReleaseError, UnknownStageError, type LeaseHolder } from "./errors";
import { LogBrokenError, type LogProblem, type LogReading, type LogRecord } from "./log";
import { passedReleaseOf } from "./promotionEvidence";
import {
  closeSettledRelease,
  recordCutShortUpdate,
  recoverInterruptedEngine,
  unlandedIn,
  unlandedIsStale,
  unlandedRelease,
} from "./recovery";
import { stageEngineLocks, type EngineLock } from "./engineLock";
import { releaseCondition, type ReleaseCondition } from "./condition";
import { planSteps } from "./plan";
import { runRollback, weightsOf, type Transition } from "./machine";
import {
  finish,
  refuse,
  release,
  stateFromOutputs,
  type ReleaseOptions,
  type ReleaseReport,
} from "./release";
import { routeRefreshable, slotWorkloadOf } from "./readBack";
import { StageStack } from "./stack";
import { listStages, readStageConfig } from "./stackFile";
import { applyUpdate, configGuard } from "./update";

/**
 * The other pipeline commands: rollback, promote across stages, approve,
 * status and history. Each validates before it touches a stack.
 */

export interface StageArgs {
  stage: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  /** `--store`: where the stage's lease lives (else SLIPWAY_STORE, else derived; src/store/url.ts). */
  store?: string;
  report?: Reporter;
  env?: Record<string, string>;
}

/**
 * Back to known-good from any point, in as few updates as the point allows:
 * mid-canary, the candidate's weight to 0 (one update); after promotion while
 * the old slot still runs, flip back (one update); later, deploy the previous
 * known-good artifact into the idle slot, then flip (two updates).
 */
export async function rollback(args: StageArgs & { reason?: string }): Promise<ReleaseReport> {
  const report = args.report ?? (() => {});
  let ctx: PipelineContext;
  let store: ReleaseStore;
  try {
    ctx = resolveContext(args);
    store = storeFor(ctx, args.store);
    checkLeaseSettings(); // a bad SLIPWAY_RUNNER_ID or lease TTL: refused before anything is read
  } catch (err) {
    if (err instanceof RefusedError) return refuse(report, err.message);
    throw err;
  }
  try {
    armedFailpoint(); // fault injection (failpoint.ts): a bad SLIPWAY_FAILPOINT refuses up front
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  let config: StageConfig;
  try {
    config = readStageConfig(ctx.projectDir, args.stage);
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  const log = store.log(args.stage);
  try {
    await verifiedRecords(log);
  } catch (err) {
    store.close();
    if (err instanceof LogBrokenError) return refuse(report, err.message);
    return finish(report, "error", { reason: (err as Error).message });
  }
  let lease: Lease;
  try {
    lease = await store.acquireLease(args.stage, runnerHolder("rollback"));
  } catch (err) {
    store.close();
    if (err instanceof RefusedError) return refuse(report, err.message);
    return finish(report, "error", { reason: (err as Error).message });
  }
  // Each update is fenced; once the lease is lost, nothing more lands or is recorded.
  const guard = guardLease(lease, {
    logs: [log],
    note: (message) => report({ type: "info", message }),
  });
  try {
    const stack = await StageStack.open({
      stage: args.stage,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...ctx.env, ...args.env },
    });
    const outputs = await stack.outputs();
    const unlanded =
      outputs && !(outputs.release && !SETTLED_PHASES.includes(outputs.release.phase))
        ? await unlandedRelease(log, outputs)
        : undefined;
    const releaseId = unlanded?.id ?? outputs?.release?.id;
    if (!outputs || !releaseId)
      return refuse(report, `stage ${args.stage} has no release to roll back`);
    // A killed release may have left the engine's lock and pending operations behind, and an
    // update it cut short is recorded as it ended.
    await recoverInterruptedEngine({
      stack,
      backendUrl: ctx.backendUrl,
      deadHost: lease.takenOverFrom?.host,
      log,
      releaseId,
      note: (message) => report({ type: "info", message }),
    });
    await recordCutShortUpdate(log, args.stage, releaseId, outputs);
    if (unlanded) {
      // A kill before its deploy landed: traffic never left the stable slot; the stack file goes back.
      stack.writeState(stateFromOutputs(outputs, config));
      const reason = `${args.reason ?? "manual rollback"}: release ${unlanded.id} never deployed (its deploy did not land); nothing to undo, traffic is on ${outputs.stableSlot}`;
      await log.append({
        stage: args.stage,
        releaseId: unlanded.id,
        event: "release.rolledBack",
        weights: outputs.weights,
        reason,
      });
      report({ type: "outcome", outcome: "rolledBack", releaseId: unlanded.id, reason });
      return {
        outcome: "rolledBack",
        exitCode: pipelineExitCode("rolledBack"),
        releaseId: unlanded.id,
        reason,
      };
    }
    const rec = outputs.release!;
    // A rollback that landed unrecorded is closed.
    if (rec.phase === "rolledBack" && (await closeSettledRelease(log, args.stage, outputs))) {
      const reason = `release ${rec.id} had rolled back before the process ended; its record is written now; traffic is on ${outputs.stableSlot}`;
      report({ type: "outcome", outcome: "rolledBack", releaseId: rec.id, reason });
      return {
        outcome: "rolledBack",
        exitCode: pipelineExitCode("rolledBack"),
        releaseId: rec.id,
        reason,
      };
    }
    if (rec.phase === "rolledBack")
      return refuse(
        report,
        `release ${rec.id} is already rolled back; traffic is on ${outputs.stableSlot}`,
      );
    await closeSettledRelease(log, args.stage, outputs);
    const reason = args.reason ?? "manual rollback";
    // The machine decides the transitions and their states; each lands as one update.
    let current = stateFromOutputs(outputs, config);
    // Its rollback transition changes only the route; a flip back or a restore is refused over
    // config edited since the release started, as the release's own updates are.
    const updater = {
      stack,
      log,
      report,
      releaseId: rec.id,
      routing: outputs.routing,
      config: configGuard(ctx.projectDir, args.stage, await releaseRecords(log, rec.id)),
      refreshable: routeRefreshable(config),
      slotWorkload: slotWorkloadOf(config, outputs),
      fence: () => guard.fence(),
    };
    const { state, transitions } = await runRollback(
      { state: current, fullReplicas: config.service.replicas, reason },
      {
        async apply(next, t, message) {
          await applyUpdate(updater, current, next, t, message);
          current = next;
        },
        now: Date.now,
      },
    );
    const how = describeRollback(transitions);
    await log.append({
      stage: args.stage,
      releaseId: rec.id,
      event: "release.rolledBack",
      reason: `${reason} (${how})`,
      weights: weightsOf(state),
    });
    report({
      type: "outcome",
      outcome: "rolledBack",
      releaseId: rec.id,
      reason: `${reason} (${how})`,
    });
    return {
      outcome: "rolledBack",
      exitCode: pipelineExitCode("rolledBack"),
      releaseId: rec.id,
      reason,
    };
  } catch (err) {
    const lost = guard.lost();
    if (lost) return finish(report, "leaseLost", { reason: lostLeaseReason(args.stage, lost) });
    return finish(report, "error", { reason: (err as Error).message });
  } finally {
    await guard.end();
    store.close();
  }
}

/** How many updates a rollback took, and what they did, for the log and the outcome. */
function describeRollback(transitions: Transition[]): string {
  const last = transitions.at(-1)!;
  if (last.kind !== "flipBack") return "candidate weight 0, one update";
  const restore = transitions.find((t) => t.kind === "restore");
  return restore
    ? `restored ${restore.release.version} into ${restore.slot} and flipped, two updates`
    : `flipped back to ${last.slot}, one update`;
}

type SummaryOutcome = "completed" | "rolledBack" | "failed" | "paused" | "refused";

/** Releases of a stage, newest first, folded from the log. */
export interface ReleaseSummary {
  releaseId: string;
  artifact?: LogRecord["artifact"];
  startedAt: string;
  outcome?: SummaryOutcome;
  /** When the promote update landed (`release.promoted`). */
  promotedAt?: string;
  /** When the old slot's scale-down landed (`release.scaledDown`). */
  scaledDownAt?: string;
  endedAt?: string;
}

export function summarize(records: LogRecord[]): ReleaseSummary[] {
  const byId = new Map<string, ReleaseSummary>();
  for (const r of records) {
    let s = byId.get(r.releaseId);
    if (!s) {
      s = { releaseId: r.releaseId, startedAt: r.at };
      byId.set(r.releaseId, s);
    }
    if (r.artifact && !s.artifact) s.artifact = r.artifact;
    if (r.event === "release.promoted") s.promotedAt = r.at;
    if (r.event === "release.scaledDown") s.scaledDownAt = r.at;
    // The summary names an ended release by its closing event (`release.completed` → completed).
    if (closesRelease(r.event))
      [s.outcome, s.endedAt] = [r.event.slice("release.".length) as SummaryOutcome, r.at];
    if (r.event === "release.paused") s.outcome = "paused";
  }
  return [...byId.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

export interface PromoteArgs extends Omit<
  ReleaseOptions,
  "stage" | "image" | "version" | "revision"
> {
  from: string;
  to: string;
  /** Which artifact; defaults to the source stage's current stable release. */
  image?: string;
}

/**
 * `promote --from staging --to prod`: only an artifact whose release in the
 * source stage ended promoted (and is still its stable release) may go on,
 * after soak, approval and freeze gates; the target receives the same digest.
 */
export async function promote(args: PromoteArgs): Promise<ReleaseReport> {
  const report = args.report ?? (() => {});
  let ctx: PipelineContext;
  let store: ReleaseStore;
  try {
    checkStageName(args.from);
    ctx = resolveContext({ ...args, stage: args.to });
    // Refused before any gate is recorded; the release it starts takes the lease from this store.
    store = storeFor(ctx, args.store);
  } catch (err) {
    if (err instanceof RefusedError) return refuse(report, err.message);
    throw err;
  }
  try {
    return await promoteFrom(args, ctx, store, report);
  } finally {
    store.close();
  }
}

/** The gates of `promote`, reading both stages' logs from `store`; then the release into the target. */
async function promoteFrom(
  args: PromoteArgs,
  ctx: PipelineContext,
  store: ReleaseStore,
  report: Reporter,
): Promise<ReleaseReport> {
  const stages = listStages(ctx.projectDir);
  for (const s of [args.from, args.to])
    if (!stages.includes(s)) return refuse(report, new UnknownStageError(s, stages).message);
  let target: StageConfig;
  try {
    target = readStageConfig(ctx.projectDir, args.to);
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  if (target.promotion.from && target.promotion.from !== args.from) {
    return refuse(
      report,
      `stage ${args.to} takes promotions from ${target.promotion.from} (slipway:promotion.from), not from ${args.from}`,
    );
  }
  // The source's log must verify and its stack must agree with it (promotionEvidence.ts).
  const sourceLog = store.log(args.from);
  const targetLog = store.log(args.to);
  let sourceRecords: LogRecord[];
  let targetRecords: LogRecord[];
  try {
    sourceRecords = await verifiedRecords(sourceLog);
    targetRecords = await verifiedRecords(targetLog);
  } catch (err) {
    if (err instanceof LogBrokenError) return refuse(report, err.message);
    return finish(report, "error", { reason: (err as Error).message });
  }
  const sourceCtx = resolveContext({ ...args, stage: args.from });
  let sourceOutputs: StageOutputs | undefined;
  try {
    const source = await StageStack.open({
      stage: args.from,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...sourceCtx.env, ...args.env },
    });
    sourceOutputs = await source.outputs();
  } catch (err) {
    return refuse(report, `cannot read stage ${args.from}'s stack: ${(err as Error).message}`);
  }
  const evidence = passedReleaseOf({
    from: args.from,
    to: args.to,
    records: sourceRecords,
    outputs: sourceOutputs,
    image: args.image,
  });
  if (!evidence.ok) return refuse(report, evidence.reason);
  const candidate = evidence.passed;
  const promotedAt = Date.parse(candidate.promotedAt);
  const now = (args.now ?? Date.now)();
  const soakLeft = promotedAt / 1000 + target.promotion.soakSeconds - now / 1000;
  const gate = async (reason: string) => {
    await targetLog.append({
      stage: args.to,
      releaseId: candidate.releaseId,
      event: "promotion.gated",
      reason,
    });
    return refuse(report, reason);
  };
  if (soakLeft > 0) {
    return await gate(
      `${candidate.artifact.version} has soaked ${Math.floor((now - promotedAt) / 1000)}s in ${args.from}; ${args.to} requires ${target.promotion.soakSeconds}s (slipway:promotion.soakSeconds), ${Math.ceil(soakLeft)}s to go`,
    );
  }
  if (target.promotion.requireApproval) {
    const approved = targetRecords.some(
      (r) => r.event === "approval.recorded" && r.releaseId === candidate.releaseId,
    );
    if (!approved) {
      return await gate(
        `${args.to} requires approval (slipway:promotion.requireApproval); run: slipway approve --stage ${args.to} --release ${candidate.releaseId}`,
      );
    }
  }
  for (const w of target.promotion.freezeWindows) {
    if (now >= Date.parse(w.start) && now < Date.parse(w.end))
      return await gate(`${args.to} is frozen until ${w.end}: ${w.reason}`);
  }
  const art = candidate.artifact;
  parseImageRef(art.image, "artifact");
  report({
    type: "info",
    message: `promoting ${art.version} (${art.digest}) from ${args.from} (release ${candidate.releaseId}) to ${args.to}`,
  });
  return release({
    ...args,
    stage: args.to,
    image: art.image,
    version: art.version,
    revision: art.revision,
  });
}

/** Records an approval: for a paused step of a release, or for promoting a release into this stage. */
export async function approve(args: {
  stage: string;
  release: string;
  step?: number;
  reason?: string;
  actor?: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  store?: string;
}): Promise<LogRecord> {
  const ctx = resolveContext(args);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const store = storeFor(ctx, args.store);
  try {
    return await approveIn(store, stages, args);
  } finally {
    store.close();
  }
}

async function approveIn(
  store: ReleaseStore,
  stages: string[],
  args: { stage: string; release: string; step?: number; reason?: string; actor?: string },
): Promise<LogRecord> {
  let known = false;
  for (const s of stages)
    if ((await releaseRecords(store.log(s), args.release)).length > 0) {
      known = true;
      break;
    }
  if (!known) throw new UnknownReleaseError(args.release);
  return store.log(args.stage).append({
    stage: args.stage,
    releaseId: args.release,
    event: "approval.recorded",
    ...(args.step !== undefined
      ? { step: { index: args.step - 1, description: `step ${args.step}` } }
      : {}),
    reason: args.reason ?? "approved",
    ...(args.actor ? { actor: args.actor } : {}),
  });
}

export interface StageStatus {
  stage: string;
  deployed: boolean;
  outputs?: StageOutputs;
  release?: ReleaseRecord & { active: boolean; waitingFor?: string };
  flags: { name: string; enabled: boolean; owner: string; expires: string; health: string }[];
  lastEvents: LogRecord[];
  /** Lines of the release log that do not verify (empty when it does). */
  logProblems: LogProblem[];
  /** The engine's locks on the stack (file and S3 backends); a dead one is cleared by resume or rollback. */
  engineLocks: EngineLock[];
  /** Running, paused or interrupted, what it does now and the commands that continue it. */
  condition?: ReleaseCondition;
  /**
   * The stage's lease as the release store holds it: who, and whether it still counts (held
   * and unexpired). `unreadable` says why it could not be read; the lease then counts as held.
   */
  lease?: {
    store: string;
    where?: string;
    holder?: LeaseHolder;
    live: boolean;
    unreadable?: string;
  };
  /** A release the log started whose deploy never landed (killed before or during it). */
  unlanded?: { id: string; version: string; condition: ReleaseCondition };
}

export async function status(args: StageArgs): Promise<StageStatus> {
  const ctx = resolveContext(args);
  const store = storeFor(ctx, args.store);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const config = readStageConfig(ctx.projectDir, args.stage);
  const log = store.log(args.stage);
  let lease: StageStatus["lease"];
  let outputs: StageOutputs | undefined;
  let reading: LogReading;
  try {
    const stack = await StageStack.open({
      stage: args.stage,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...ctx.env, ...args.env },
    });
    outputs = await stack.outputs();
    // After the outputs: a release that holds the lease now is running whatever they say.
    lease = await stageLeaseOf(store, args.stage);
    // Status reports a broken log rather than failing: it is what someone looks at to recover.
    reading = await log.read();
  } finally {
    store.close();
  }
  const rec = outputs?.release;
  const records = rec ? reading.records.filter((r) => r.releaseId === rec.id) : [];
  // An engine lock on a shared backend is dead once its runner's lease expired unrenewed.
  const locks = await stageEngineLocks(ctx.backendUrl, args.stage, {
    deadHosts: lease && !lease.live && lease.holder ? [lease.holder.host] : [],
  });
  const unlanded =
    reading.problems.length === 0 && !(rec && !SETTLED_PHASES.includes(rec.phase))
      ? unlandedIn(reading.records, outputs)
      : undefined;
  const staleUnlanded = unlanded && outputs ? unlandedIsStale(unlanded, outputs) : undefined;
  const lastAwait = [...records]
    .reverse()
    .find((r) => r.event === "approval.awaited" || r.event === "release.paused");
  return {
    stage: args.stage,
    deployed: !!outputs,
    outputs,
    release: rec && {
      ...rec,
      active: !SETTLED_PHASES.includes(rec.phase),
      ...(lastAwait && !SETTLED_PHASES.includes(rec.phase)
        ? { waitingFor: lastAwait.reason ?? "approval" }
        : {}),
    },
    flags: Object.entries(config.flags).map(([name, f]) => ({
      name,
      ...f,
      health: flagHealth(f, new Date()),
    })),
    lastEvents: reading.records.slice(-10),
    logProblems: reading.problems,
    engineLocks: locks,
    ...(lease ? { lease } : {}),
    ...(unlanded
      ? {
          unlanded: {
            id: unlanded.id,
            version: unlanded.artifact.version,
            condition: {
              condition: lease?.live ? "running" : "interrupted",
              doing: staleUnlanded
                ? `nothing: ${staleUnlanded}; close it with rollback`
                : "its deploy, which had not landed",
              commands: [
                // A release the stage moved past is closed, never deployed.
                ...(staleUnlanded ? [] : [`slipway release --stage ${args.stage} --resume`]),
                `slipway rollback --stage ${args.stage}`,
              ],
            },
          },
        }
      : {}),
    ...(rec
      ? {
          condition: releaseCondition({
            stage: args.stage,
            release: rec,
            records,
            plan: planSteps(config.canary),
            leaseHeldByLiveProcess: lease?.live ?? false,
            deadEngineLocks: locks.filter((l) => l.dead).length,
          }),
        }
      : {}),
  };
}

/**
 * The stage's lease for `status`: undefined when no runner holds it. One that cannot be read
 * (the store does not answer, the object is not a lease) counts as held: status never calls a
 * release interrupted while a runner may still be driving it.
 */
export async function stageLeaseOf(
  store: ReleaseStore,
  stage: string,
): Promise<StageStatus["lease"] | undefined> {
  try {
    const state = await store.readLease(stage);
    if (!state) return undefined;
    return {
      store: store.describe(),
      where: state.where,
      ...(state.holder ? { holder: state.holder } : {}),
      live: state.live,
    };
  } catch (err) {
    return { store: store.describe(), live: true, unreadable: (err as Error).message };
  }
}

/**
 * The release log of a stage as it verifies: the valid records (of one release,
 * if asked) and every line that is not a valid chained record.
 */
export async function history(args: {
  stage: string;
  release?: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  store?: string;
}): Promise<{ path: string; records: LogRecord[]; problems: LogProblem[] }> {
  const ctx = resolveContext(args);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const store = storeFor(ctx, args.store);
  const log = store.log(args.stage);
  let reading: LogReading;
  try {
    reading = await log.read();
  } finally {
    store.close();
  }
  return {
    path: log.where,
    records: args.release
      ? reading.records.filter((r) => r.releaseId === args.release)
      : reading.records,
    problems: reading.problems,
  };
}
