import type { EngineEvent } from "@pulumi/pulumi/automation";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAnalysisSpec } from "../analysis/spec";
import type { ReleaseRecord, StageConfig } from "../config/schema";
import { otherSlot, ExitCode, SETTLED_PHASES } from "../domain";
import { parseImageRef } from "../governance/artifact";
import { resolveContext } from "../pipeline/context";
import { RefusedError } from "../pipeline/errors";
import { guardLease } from "../pipeline/leaseGuard";
import { checkLeaseSettings, runnerHolder, type Lease, type ReleaseStore } from "../store/store";
import { storeFor } from "../store/url";
import { planSteps } from "../pipeline/plan";
import { newReleaseId, stateFromOutputs, type ReleaseOptions } from "../pipeline/release";
import type { StageState } from "../pipeline/machine";
import { StageStack } from "../pipeline/stack";
import { readStageConfig, stackFilePath } from "../pipeline/stackFile";
import {
  changesAgainstState,
  changesBetween,
  snapshotOf,
  type PreviewSnapshot,
  type StepMetadataLike,
} from "./changes";
import {
  checkInvariants,
  summarize,
  timeBudget,
  type TimeBudget,
  type TransitionPreview,
  type Violation,
} from "./invariants";
import { planTransitions } from "./transitions";

/**
 * `slipway plan`: the real engine's preview of every transition a release
 * would make, in order, with nothing applied. Each transition's config is
 * written to a scratch copy of the stack file, outside the project, which the
 * previews read (`--config-file`): the project's stack file is never written,
 * so no signal can leave it holding an unreleased image. Previews never write
 * the stack's state.
 */
/** The release's own options, as `slipway release` would take them. */
export interface PlanOptions extends Pick<
  ReleaseOptions,
  | "stage"
  | "projectDir"
  | "backendUrl"
  | "logDir"
  | "store"
  | "image"
  | "version"
  | "revision"
  | "env"
> {
  /** Progress, one line per transition previewed. */
  progress?: (line: string) => void;
  /** SIGINT/SIGTERM: no further preview starts; the plan ends with exit 130. */
  signal?: AbortSignal;
}

export interface PlanReport {
  stage: string;
  exitCode: ExitCode;
  /** Why nothing was previewed (bad input, stage busy), when exitCode is 6 without violations. */
  refused?: string;
  error?: string;
  artifact?: { image: string; version: string; candidateSlot: string };
  transitions: (TransitionPreview & { from?: string })[];
  budget?: TimeBudget;
  violations: Violation[];
  previewMs?: number;
}

export async function previewPlan(options: PlanOptions): Promise<PlanReport> {
  const progress = options.progress ?? (() => {});
  const refused = (reason: string): PlanReport => ({
    stage: options.stage,
    exitCode: ExitCode.refused,
    refused: reason,
    transitions: [],
    violations: [],
  });
  const ctx = resolveContext(options);
  let store: ReleaseStore;
  try {
    store = storeFor(ctx, options.store);
    checkLeaseSettings(); // a bad SLIPWAY_RUNNER_ID or lease TTL: refused before anything is read
  } catch (err) {
    if (err instanceof RefusedError) return refused(err.message);
    throw err;
  }
  let config: StageConfig;
  try {
    config = readStageConfig(ctx.projectDir, options.stage);
    if (!options.image) return refused("--image is required (repo@sha256:<64 hex>)");
    parseImageRef(options.image, "--image");
    if (!options.version)
      return refused("--version is required: the release's version label, e.g. 1.4.2");
  } catch (err) {
    return refused((err as Error).message);
  }
  const plan = planSteps(config.canary);
  let analysis;
  try {
    analysis = parseAnalysisSpec(config.canary.analysis);
  } catch (err) {
    return refused((err as Error).message);
  }
  let lease: Lease;
  try {
    // A release running meanwhile would move the outputs the plan starts from.
    lease = await store.acquireLease(options.stage, runnerHolder(`plan ${options.version}`));
  } catch (err) {
    store.close();
    if (err instanceof RefusedError) return refused(err.message);
    // The store did not answer: nothing was previewed, and no invariant was judged.
    return {
      stage: options.stage,
      exitCode: ExitCode.error,
      error: (err as Error).message,
      transitions: [],
      violations: [],
    };
  }
  // Kept for the previews' duration; a plan whose lease was lost starts no further preview.
  const guard = guardLease(lease, { note: progress });
  const scratch = mkdtempSync(join(tmpdir(), "slipway-plan-"));
  const configFile = join(scratch, `Pulumi.${options.stage}.yaml`);
  const started = Date.now();
  try {
    copyFileSync(stackFilePath(ctx.projectDir, options.stage), configFile);
    const stack = await StageStack.open({
      stage: options.stage,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...ctx.env, ...(options.env ?? {}) },
      configFile,
    });
    const outputs = await stack.outputs();
    if (outputs?.release && !SETTLED_PHASES.includes(outputs.release.phase))
      return refused(
        `stage ${options.stage} has release ${outputs.release.id} in progress (${outputs.release.phase}); a plan is for the next release`,
      );
    // A stage never deployed: its stack file is what the first deploy starts from.
    const state: StageState = outputs
      ? stateFromOutputs(outputs, config)
      : {
          stable: config.traffic.stable,
          canaryWeight: config.traffic.canaryWeight,
          slots: config.slots,
        };
    if (state.slots[state.stable].image === options.image)
      return refused(`${options.image} is already the stable release of ${options.stage}`);
    const now = new Date().toISOString();
    const stableRelease = state.slots[state.stable];
    const record: ReleaseRecord = {
      id: newReleaseId(new Date()),
      phase: "deploying",
      candidateSlot: otherSlot(state.stable),
      artifact: {
        image: options.image!,
        version: options.version!,
        ...(options.revision ? { revision: options.revision } : {}),
      },
      previous: {
        slot: state.stable,
        image: stableRelease.image,
        version: stableRelease.version,
        ...(stableRelease.revision ? { revision: stableRelease.revision } : {}),
      },
      position: 0,
      steps: plan.length,
      startedAt: now,
      updatedAt: now,
    };
    const planned = planTransitions(state, record, plan, config.service.replicas, now);
    const snapshots = new Map<string, PreviewSnapshot>();
    const transitions: PlanReport["transitions"] = [];
    for (const t of planned) {
      const lost = guard.lost();
      if (lost)
        return {
          stage: options.stage,
          exitCode: ExitCode.leaseLost,
          error: `the lease of stage ${options.stage} was lost (${lost.message}); no further preview started, nothing was changed`,
          transitions,
          violations: [],
        };
      if (options.signal?.aborted)
        return {
          stage: options.stage,
          exitCode: ExitCode.interrupted,
          error: `interrupted (${String(options.signal.reason)}) before previewing ${t.label}; nothing was changed`,
          transitions,
          violations: [],
        };
      stack.writeState(t.state);
      const steps: StepMetadataLike[] = [];
      const t0 = Date.now();
      await stack.stack.preview({
        color: "never",
        configFile,
        message: `slipway plan ${options.version}: ${t.label}`,
        onEvent: (e: EngineEvent) => {
          if (e.resourcePreEvent) steps.push(e.resourcePreEvent.metadata as StepMetadataLike);
        },
      });
      const snapshot = snapshotOf(steps);
      snapshots.set(t.label, snapshot);
      const before = t.from === undefined ? undefined : snapshots.get(t.from);
      const fromWeights = planned.find((p) => p.label === t.from)?.weights;
      const routingChanged =
        fromWeights !== undefined &&
        (fromWeights.blue !== t.weights.blue || fromWeights.green !== t.weights.green);
      const changes = before
        ? changesBetween(before, snapshot, { routingChanged })
        : changesAgainstState(snapshot);
      transitions.push({
        label: t.label,
        kind: t.kind,
        ...(t.from ? { from: t.from } : {}),
        weights: t.weights,
        changes,
        summary: summarize(changes),
      });
      progress(`previewed ${t.label} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
    const violations = checkInvariants(transitions, planned);
    return {
      stage: options.stage,
      exitCode: violations.length > 0 ? ExitCode.refused : ExitCode.ok,
      artifact: {
        image: record.artifact.image,
        version: record.artifact.version,
        candidateSlot: record.candidateSlot,
      },
      transitions,
      budget: timeBudget(
        plan,
        analysis,
        config.canary.scaleDownDelaySeconds,
        config.canary.progressDeadlineSeconds,
      ),
      violations,
      previewMs: Date.now() - started,
    };
  } catch (err) {
    return {
      stage: options.stage,
      // The engine's preview got the same Ctrl-C: an interruption, not a failure.
      exitCode: options.signal?.aborted ? ExitCode.interrupted : ExitCode.error,
      error: (err as Error).message,
      transitions: [],
      violations: [],
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await guard.end();
    store.close();
  }
}

/** The plan for a person: per transition, the weights after it and what would change. */
export function formatPlan(report: PlanReport): string {
  if (report.refused) return `plan refused: ${report.refused}`;
  if (report.error) return `plan failed: ${report.error}`;
  const lines: string[] = [];
  const a = report.artifact!;
  lines.push(`plan for stage ${report.stage}: ${a.version} (${a.image}) into ${a.candidateSlot}`);
  const width = Math.max(...report.transitions.map((t) => t.label.length));
  for (const t of report.transitions) {
    const counts = Object.entries(t.summary)
      .map(([op, n]) => `${op} ${n}`)
      .join(", ");
    lines.push(
      `  ${t.label.padEnd(width)}  blue ${String(t.weights.blue).padStart(3)} / green ${String(t.weights.green).padStart(3)}  ${counts || "no resource changes"}`,
    );
    for (const c of t.changes)
      lines.push(
        `      ${c.op} ${c.type} ${c.name}${c.paths.length ? `: ${c.paths.slice(0, 6).join(", ")}${c.paths.length > 6 ? `, … (${c.paths.length} paths)` : ""}` : ""}`,
      );
  }
  const b = report.budget!;
  lines.push(
    `time budget: pauses ${b.pauseSeconds}s${b.approvalPauses ? ` + ${b.approvalPauses} until approved` : ""}, analyses ${b.analysisSeconds}s ` +
      `(canary ${b.canarySeconds}s of the ${b.progressDeadlineSeconds}s progress deadline${b.fitsDeadline ? "" : " — DOES NOT FIT"}), scale down ${b.scaleDownDelaySeconds}s after promotion`,
  );
  if (report.violations.length === 0) lines.push("invariants: all hold");
  for (const v of report.violations)
    lines.push(`✗ invariant ${v.invariant} broken by ${v.transition}: ${v.detail}`);
  return lines.join("\n");
}
