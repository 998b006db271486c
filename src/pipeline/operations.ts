import { otherSlot, SETTLED_PHASES, type ReleaseRecord, type StageConfig } from "../config/schema";
import { flagHealth } from "../config/flags";
import { pipelineExitCode } from "../cli/exitCodes";
import type { StageOutputs } from "../contract/outputs";
import { parseImageRef } from "../governance/artifact";
import { checkStageName, resolveContext, StageLease, type PipelineContext } from "./context";
import { RefusedError, UnknownReleaseError, UnknownStageError } from "./errors";
import { LogBrokenError, ReleaseLog, type LogProblem, type LogRecord } from "./log";
import { passedReleaseOf } from "./promotionEvidence";
import { weightsOf, type StageState } from "./machine";
import {
  finish,
  refuse,
  release,
  stateFromOutputs,
  type ReleaseOptions,
  type ReleaseReport,
  type Reporter,
} from "./release";
import { StageStack } from "./stack";
import { listStages, readStageConfig } from "./stackFile";

/**
 * The other pipeline commands: rollback, promote across stages, approve,
 * status and history. Each validates before it touches a stack.
 */

interface StageArgs {
  stage: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  report?: Reporter;
  env?: Record<string, string>;
}

async function applyState(
  stack: StageStack,
  log: ReleaseLog,
  report: Reporter,
  releaseId: string,
  from: StageState,
  to: StageState,
  message: string,
): Promise<void> {
  stack.writeState(to);
  log.append({
    stage: stack.stage,
    releaseId,
    event: "update.started",
    weights: weightsOf(to),
    reason: message,
  });
  report({ type: "update", phase: "started", message });
  try {
    const result = await stack.up(message);
    log.append({
      stage: stack.stage,
      releaseId,
      event: "update.succeeded",
      weights: weightsOf(to),
      figures: { changes: result.changes, durationMs: result.durationMs },
    });
    report({ type: "update", phase: "succeeded", message, ...result });
  } catch (err) {
    stack.writeState(from);
    log.append({
      stage: stack.stage,
      releaseId,
      event: "update.failed",
      reason: (err as Error).message.slice(0, 2000),
    });
    throw err;
  }
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
  try {
    ctx = resolveContext(args);
  } catch (err) {
    if (err instanceof RefusedError) return refuse(report, err.message);
    throw err;
  }
  let config: StageConfig;
  try {
    config = readStageConfig(ctx.projectDir, args.stage);
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  const log = ReleaseLog.forStage(ctx.logDir, args.stage);
  try {
    log.assertVerified();
  } catch (err) {
    if (err instanceof LogBrokenError) return refuse(report, err.message);
    throw err;
  }
  let lease: StageLease;
  try {
    lease = StageLease.acquire(ctx.logDir, args.stage, "rollback");
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  try {
    const stack = await StageStack.open({
      stage: args.stage,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...ctx.env, ...args.env },
    });
    const outputs = await stack.outputs();
    if (!outputs?.release) return refuse(report, `stage ${args.stage} has no release to roll back`);
    const rec = outputs.release;
    const now = new Date().toISOString();
    const state = stateFromOutputs(outputs, config);
    const reason = args.reason ?? "manual rollback";
    const done = (how: string): ReleaseReport => {
      log.append({
        stage: args.stage,
        releaseId: rec.id,
        event: "release.rolledBack",
        reason: `${reason} (${how})`,
        weights: outputs.weights,
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
    };
    const settledRecord = (r: ReleaseRecord): ReleaseRecord => ({
      ...r,
      phase: "rolledBack",
      reason,
      updatedAt: now,
    });

    if (rec.phase === "deploying" || rec.phase === "canary" || rec.phase === "paused") {
      const to: StageState = { ...state, canaryWeight: 0, release: settledRecord(rec) };
      await applyState(
        stack,
        log,
        report,
        rec.id,
        state,
        to,
        `release ${rec.id}: roll back, ${rec.candidateSlot} to weight 0 (${reason})`,
      );
      return done("candidate weight 0, one update");
    }

    const previousSlot = rec.previous.slot;
    const oldStillRuns =
      rec.phase === "promoted" &&
      outputs.releases[previousSlot].image === rec.previous.image &&
      outputs.releases[previousSlot].replicas > 0;
    if (oldStillRuns) {
      const to: StageState = {
        ...state,
        stable: previousSlot,
        canaryWeight: 0,
        slots: { ...state.slots, [previousSlot]: withoutReplicas(state.slots[previousSlot]) },
        release: settledRecord(rec),
      };
      await applyState(
        stack,
        log,
        report,
        rec.id,
        state,
        to,
        `release ${rec.id}: roll back, flip stable back to ${previousSlot} (${reason})`,
      );
      return done(`flipped back to ${previousSlot}, one update`);
    }

    if (rec.phase === "rolledBack")
      return refuse(
        report,
        `release ${rec.id} is already rolled back; traffic is on ${outputs.stableSlot}`,
      );

    // Later: the old slot is gone. Restore the previous known-good release into the idle slot, then flip.
    // The release record names what was stable before it: the known-good artifact.
    const knownGood = rec.previous;
    const idle = otherSlot(outputs.stableSlot);
    const restored: StageState = {
      ...state,
      canaryWeight: 0,
      slots: {
        ...state.slots,
        [idle]: {
          image: knownGood.image,
          version: knownGood.version,
          ...(knownGood.revision ? { revision: knownGood.revision } : {}),
          replicas: config.service.replicas,
        },
      },
    };
    await applyState(
      stack,
      log,
      report,
      rec.id,
      state,
      restored,
      `release ${rec.id}: roll back, restore ${knownGood.version} into ${idle}`,
    );
    const flipped: StageState = {
      ...restored,
      stable: idle,
      slots: { ...restored.slots, [idle]: withoutReplicas(restored.slots[idle]) },
      release: settledRecord(rec),
    };
    await applyState(
      stack,
      log,
      report,
      rec.id,
      restored,
      flipped,
      `release ${rec.id}: roll back, flip stable to ${idle} (${reason})`,
    );
    return done(`restored ${knownGood.version} into ${idle} and flipped, two updates`);
  } catch (err) {
    return finish(report, "error", { reason: (err as Error).message });
  } finally {
    lease.release();
  }
}

function withoutReplicas<T extends { replicas?: number }>(r: T): Omit<T, "replicas"> {
  const { replicas: _r, ...rest } = r;
  return rest;
}

/** Releases of a stage, newest first, folded from the log. */
export interface ReleaseSummary {
  releaseId: string;
  artifact?: LogRecord["artifact"];
  startedAt: string;
  outcome?: "completed" | "rolledBack" | "failed" | "paused" | "refused";
  promotedAt?: string;
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
    if (r.event === "update.succeeded" && (r.figures as any)?.transition === "promote")
      s.promotedAt = r.at;
    if (r.event === "release.completed") [s.outcome, s.endedAt] = ["completed", r.at];
    if (r.event === "release.rolledBack") [s.outcome, s.endedAt] = ["rolledBack", r.at];
    if (r.event === "release.failed") [s.outcome, s.endedAt] = ["failed", r.at];
    if (r.event === "release.refused") [s.outcome, s.endedAt] = ["refused", r.at];
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
  try {
    checkStageName(args.from);
    ctx = resolveContext({ ...args, stage: args.to });
  } catch (err) {
    if (err instanceof RefusedError) return refuse(report, err.message);
    throw err;
  }
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
  const sourceLog = ReleaseLog.forStage(ctx.logDir, args.from);
  const targetLog = ReleaseLog.forStage(ctx.logDir, args.to);
  let sourceRecords: LogRecord[];
  let targetRecords: LogRecord[];
  try {
    sourceRecords = sourceLog.readAll();
    targetRecords = targetLog.readAll();
  } catch (err) {
    if (err instanceof LogBrokenError) return refuse(report, err.message);
    throw err;
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
  const gate = (reason: string) => {
    targetLog.append({
      stage: args.to,
      releaseId: candidate.releaseId,
      event: "promotion.gated",
      reason,
    });
    return refuse(report, reason);
  };
  if (soakLeft > 0) {
    return gate(
      `${candidate.artifact.version} has soaked ${Math.floor((now - promotedAt) / 1000)}s in ${args.from}; ${args.to} requires ${target.promotion.soakSeconds}s (slipway:promotion.soakSeconds), ${Math.ceil(soakLeft)}s to go`,
    );
  }
  if (target.promotion.requireApproval) {
    const approved = targetRecords.some(
      (r) => r.event === "approval.recorded" && r.releaseId === candidate.releaseId,
    );
    if (!approved) {
      return gate(
        `${args.to} requires approval (slipway:promotion.requireApproval); run: slipway approve --stage ${args.to} --release ${candidate.releaseId}`,
      );
    }
  }
  for (const w of target.promotion.freezeWindows) {
    if (now >= Date.parse(w.start) && now < Date.parse(w.end))
      return gate(`${args.to} is frozen until ${w.end}: ${w.reason}`);
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
export function approve(args: {
  stage: string;
  release: string;
  step?: number;
  reason?: string;
  actor?: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
}): LogRecord {
  const ctx = resolveContext(args);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const known = stages.some((s) =>
    ReleaseLog.forStage(ctx.logDir, s)
      .readAll()
      .some((r) => r.releaseId === args.release),
  );
  if (!known) throw new UnknownReleaseError(args.release);
  return ReleaseLog.forStage(ctx.logDir, args.stage).append({
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
}

export async function status(args: StageArgs): Promise<StageStatus> {
  const ctx = resolveContext(args);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const config = readStageConfig(ctx.projectDir, args.stage);
  const log = ReleaseLog.forStage(ctx.logDir, args.stage);
  const stack = await StageStack.open({
    stage: args.stage,
    projectDir: ctx.projectDir,
    backendUrl: ctx.backendUrl,
    env: { ...ctx.env, ...args.env },
  });
  const outputs = await stack.outputs();
  const rec = outputs?.release;
  // Status reports a broken log rather than failing: it is what someone looks at to recover.
  const reading = log.verify();
  const records = rec ? reading.records.filter((r) => r.releaseId === rec.id) : [];
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
  };
}

/**
 * The release log of a stage as it verifies: the valid records (of one release,
 * if asked) and every line that is not a valid chained record.
 */
export function history(args: {
  stage: string;
  release?: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
}): { path: string; records: LogRecord[]; problems: LogProblem[] } {
  const ctx = resolveContext(args);
  const stages = listStages(ctx.projectDir);
  if (!stages.includes(args.stage)) throw new UnknownStageError(args.stage, stages);
  const log = ReleaseLog.forStage(ctx.logDir, args.stage);
  const reading = log.verify();
  return {
    path: log.path,
    records: args.release
      ? reading.records.filter((r) => r.releaseId === args.release)
      : reading.records,
    problems: reading.problems,
  };
}
