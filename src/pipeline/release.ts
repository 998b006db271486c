import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseAnalysisSpec, type AnalysisSpec } from "../analysis/spec";
import { runAnalysis, type AnalysisWindow, type MetricInputs } from "../analysis/run";
import { createPrometheusProvider } from "../analysis/providers/prometheus";
import {
  VERSION_LABEL_ALLOWED,
  versionLabelSchema,
  type ReleaseRecord,
  type StageConfig,
} from "../config/schema";
import {
  OUTCOMES,
  otherSlot,
  sameWait,
  SETTLED_PHASES,
  pipelineExitCode,
  type PipelineOutcome,
  type PlanStep,
  type Reporter,
  type Slot,
  type Wait,
} from "../domain";
import { alarmRollbackReason, AwsSetupError, prepareAwsRelease, type AwsRelease } from "../aws";
import type { StageOutputs } from "../contract/outputs";
import { ALARM_POLL_MS, INCONCLUSIVE_RETRIES, SMOKE_REQUEST_TIMEOUT_MS } from "../defaults";
import { parseImageRef, ImageRefError } from "../governance/artifact";
import { checkArtifact } from "../governance/artifactPolicy";
import { releasePolicyFindings } from "../policy/releaseCheck";
import { LogBrokenError, waitOf, type LogRecord } from "./log";
import {
  runMachine,
  weightsOf,
  type AnalysisResult,
  type Effects,
  type StageState,
  type Transition,
  InterruptedError,
  WeightsDriftedError,
} from "./machine";
import { describeStep, planSteps } from "./plan";
import {
  httpRouteRef,
  KubernetesApiReadBack,
  routeRefreshable,
  slotWorkloadOf,
  weightsReadBackFor,
  type WeightsReadBack,
} from "./readBack";
import { KubernetesServing, type ServingCheck } from "./serving";
import type { Weights } from "../traffic/weights";
import { StageStack, type StageStackOptions, type UpdatableStack } from "./stack";
import { HeaderError, type HookPoint } from "../hooks";
import type { Notifier } from "../notify";
import { checkHookSecrets, checkpointEffect, startNotifier } from "./releaseHooks";
import { readStageConfig, stageConfigFingerprint } from "./stackFile";
import { applyUpdate, configGuard } from "./update";
import { resolveContext, type PipelineContext } from "./context";
import { guardLease, LEASE_LOST, lostLeaseReason, type LeaseGuard } from "./leaseGuard";
import {
  checkLeaseSettings,
  releaseRecords,
  runnerHolder,
  verifiedRecords,
  type Lease,
  type ReleaseStore,
  type StoreLog,
} from "../store/store";
import { storeFor } from "../store/url";
import {
  closeSettledRelease,
  recordCutShortUpdate,
  RESTORE_ROUTE,
  recoverInterruptedEngine,
  rollbackUnderWay,
  sameWeights,
  unlandedIsStale,
  unlandedRelease,
} from "./recovery";
import { NotServingError, RefusedError, RouteDriftedError, RoutingNotFoundError } from "./errors";
import { armedFailpoint, failpoint } from "./failpoint";

/** Fetches metric inputs for one analysis window; tests and the rehearsal may inject their own. */
export type MetricsSource = (args: {
  config: StageConfig;
  stable: Slot;
  candidate: Slot;
  spec: AnalysisSpec;
}) => (window: AnalysisWindow) => Promise<MetricInputs>;

export interface ReleaseOptions {
  stage: string;
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  /**
   * The release store that holds the stage's lease (`--store`): else SLIPWAY_STORE, else derived
   * from the backend (src/store/url.ts). The release log stays in `logDir` whatever the store.
   */
  store?: string;
  /** The artifact: repo@sha256:… */
  image?: string;
  version?: string;
  revision?: string;
  /** DSSE envelope file for the artifact. */
  attestation?: string;
  resume?: boolean;
  /** URL that reaches the stage; the smoke check sends the tester header there. */
  smokeUrl?: string;
  prometheusUrl?: string;
  metrics?: MetricsSource;
  /** Reads back the weights in force after each update; default: `weightsReadBackFor(config, stack)`. */
  weightsReadBack?: WeightsReadBack;
  /**
   * Opens the stage's stack for its updates; default `StageStack.open` (the engine). The AWS
   * tests pass a stand-in, since the AWS provider cannot run there; everything else stays real.
   */
  openStack?: (options: StageStackOptions) => Promise<UpdatableStack>;
  report?: Reporter;
  /**
   * Aborted by SIGINT/SIGTERM (the CLI wires it): the release stops at the next safe
   * point (an update in flight lands first), records it and exits `interrupted`.
   */
  signal?: AbortSignal;
  /** Test hooks: a clock and a sleep. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Extra environment for the engine (credentials, passphrase). */
  env?: Record<string, string>;
}

export interface ReleaseReport {
  outcome: PipelineOutcome;
  /** `pipelineExitCode(outcome)`: what `release` and `promote` exit with. */
  exitCode: number;
  releaseId?: string;
  reason?: string;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function newReleaseId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `r-${stamp}-${randomBytes(2).toString("hex")}`;
}

/** Stable state as the last successful update left it: the stack's outputs are the truth. */
export function stateFromOutputs(outputs: StageOutputs, config: StageConfig): StageState {
  const slot = (s: Slot) => {
    const r = outputs.releases[s];
    return {
      image: r.image,
      version: r.version,
      ...(r.revision ? { revision: r.revision } : {}),
      ...(r.replicas !== config.service.replicas || s !== outputs.stableSlot
        ? { replicas: r.replicas }
        : {}),
    };
  };
  return {
    stable: outputs.stableSlot,
    canaryWeight: outputs.weights[otherSlot(outputs.stableSlot)],
    slots: { blue: slot("blue"), green: slot("green") },
    ...(outputs.release ? { release: outputs.release } : {}),
  };
}

/** Each analysis step's spec: the stage's analysis with the step's count and interval. */
function analysisOfStep(
  spec: AnalysisSpec,
  step: Extract<PlanStep, { kind: "analysis" }>,
): AnalysisSpec {
  return {
    ...spec,
    ...(step.count !== undefined ? { count: step.count } : {}),
    ...(step.intervalSeconds !== undefined ? { interval: step.intervalSeconds } : {}),
  };
}

function analysesOf(plan: PlanStep[], spec: AnalysisSpec): { label: string; spec: AnalysisSpec }[] {
  return plan.flatMap((step, i) =>
    step.kind === "analysis"
      ? [{ label: `step ${i + 1} (${describeStep(step)})`, spec: analysisOfStep(spec, step) }]
      : [],
  );
}

/** The one way a pipeline command ends: reported, and stamped with its exit code. */
export function finish(
  report: Reporter,
  outcome: PipelineOutcome,
  fields: { releaseId?: string; reason?: string } = {},
): ReleaseReport {
  // An error that is not a verdict is reported as a failed release.
  report({ type: "outcome", outcome: outcome === "error" ? "failed" : outcome, ...fields });
  return { outcome, exitCode: pipelineExitCode(outcome), ...fields };
}

/** Refused before any change (exit code 6). */
export const refuse = (report: Reporter, reason: string): ReleaseReport =>
  finish(report, "refused", { reason });

/**
 * `slipway release`: validates everything first, then walks the release through
 * the state machine on the real stack. Returns the outcome; never throws for a
 * refused or failed release (those are outcomes with exit codes).
 */
export async function release(given: ReleaseOptions): Promise<ReleaseReport> {
  const report: Reporter = given.report ?? (() => {});
  const now = given.now ?? Date.now;
  // A lost lease stops the release where a signal would: at the next safe point.
  const leaseLost = new AbortController();
  const options: ReleaseOptions = {
    ...given,
    signal: given.signal ? AbortSignal.any([given.signal, leaseLost.signal]) : leaseLost.signal,
  };
  const sleep = interruptibleSleep(options.sleep ?? defaultSleep, options.signal);
  let ctx: PipelineContext;
  let store: ReleaseStore;
  try {
    ctx = resolveContext(options);
    // A bad --store or SLIPWAY_STORE, or a shared backend with a machine-local store: refused now.
    store = storeFor(ctx, options.store);
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
  // Everything that can be refused is refused before the lease and any update.
  let config: StageConfig;
  try {
    config = readStageConfig(ctx.projectDir, options.stage);
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  if (!options.resume) {
    if (!options.image)
      return refuse(report, "--image is required (repo@sha256:<64 hex>), or --resume");
    try {
      parseImageRef(options.image, "--image");
    } catch (err) {
      if (err instanceof ImageRefError) return refuse(report, err.message);
      throw err;
    }
    if (!options.version)
      return refuse(report, "--version is required: the release's version label, e.g. 1.4.2");
    if (!versionLabelSchema.safeParse(options.version).success)
      return refuse(
        report,
        `--version ${JSON.stringify(options.version.length > 80 ? `${options.version.slice(0, 80)}…` : options.version)}: not a version label; ${VERSION_LABEL_ALLOWED}`,
      );
  }
  const plan = planSteps(config.canary);
  let analysisSpec: AnalysisSpec;
  try {
    analysisSpec = parseAnalysisSpec(config.canary.analysis);
  } catch (err) {
    return refuse(report, (err as Error).message);
  }
  // Artifact integrity and the policy pack's rules: refused before the lease and any update.
  let verdict: ReturnType<typeof checkArtifact> | undefined;
  if (!options.resume) {
    const policy = releasePolicyFindings(
      config,
      options.image!,
      [0, ...plan.flatMap((p) => (p.kind === "setWeight" ? [p.weight] : []))],
      new Date(now()),
    );
    for (const f of policy.advisory)
      report({ type: "info", message: `policy ${f.policy} (advisory): ${f.message}` });
    if (policy.mandatory.length > 0)
      return refuse(
        report,
        `policy refused, nothing deployed: ${policy.mandatory.map((f) => `${f.policy}: ${f.message}`).join("; ")}`,
      );
    try {
      verdict = checkArtifact({
        image: options.image!,
        imageKey: "--image",
        envelope: options.attestation
          ? JSON.parse(readFileSync(options.attestation, "utf8"))
          : undefined,
        policy: config.artifacts,
      });
    } catch (err) {
      return refuse(report, `artifact refused, nothing deployed: ${(err as Error).message}`);
    }
  }

  const log = store.log(options.stage);
  try {
    await verifiedRecords(log);
  } catch (err) {
    store.close();
    if (err instanceof LogBrokenError) return refuse(report, err.message);
    return finish(report, "error", { reason: (err as Error).message });
  }
  // Tokens for hook and webhook headers come from the environment: all present, or refused now.
  const hookEnv = hookEnvironment(options);
  try {
    checkHookSecrets(config, hookEnv);
  } catch (err) {
    if (err instanceof HeaderError) return refuse(report, err.message);
    throw err;
  }
  let lease: Lease;
  try {
    lease = await store.acquireLease(
      options.stage,
      runnerHolder(options.resume ? "release --resume" : `release ${options.version}`),
    );
  } catch (err) {
    store.close();
    // Busy, or a bad lease setting: refused. A store that does not answer: an error; either way nothing changed.
    if (err instanceof RefusedError) return refuse(report, err.message);
    return finish(report, "error", { reason: (err as Error).message });
  }
  // The heartbeat keeps the lease; its loss aborts the release, fences each update and the log.
  const guard = guardLease(lease, {
    logs: [log],
    note: (message) => report({ type: "info", message }),
  });
  guard.signal.addEventListener("abort", () => leaseLost.abort(guard.signal.reason), {
    once: true,
  });

  let notifier: Notifier | undefined;
  let aws: AwsRelease | undefined;
  try {
    notifier = await startNotifier(config, log, hookEnv);
    const openStack = options.openStack ?? ((o: StageStackOptions) => StageStack.open(o));
    const stack = await openStack({
      stage: options.stage,
      projectDir: ctx.projectDir,
      backendUrl: ctx.backendUrl,
      env: { ...ctx.env, ...(options.env ?? {}) },
    });
    let outputs = await stack.outputs();
    if (config.platform === "aws") {
      // What the release reads on AWS comes from the outputs; without it nothing is updated.
      try {
        aws = await prepareAwsRelease({
          stageName: options.stage,
          config,
          outputs,
          analyses: analysesOf(plan, analysisSpec),
          candidate:
            outputs?.release && !SETTLED_PHASES.includes(outputs.release.phase)
              ? outputs.release.candidateSlot
              : otherSlot(outputs?.stableSlot ?? config.traffic.stable),
        });
      } catch (err) {
        if (err instanceof AwsSetupError) return refuse(report, err.message);
        throw err;
      }
    }
    // A killed earlier run may have left the engine's lock and pending operations behind.
    await recoverInterruptedEngine({
      stack,
      backendUrl: ctx.backendUrl,
      deadHost: lease.takenOverFrom?.host,
      log,
      releaseId: outputs?.release?.id ?? `stage-${options.stage}`,
      note: (message) => report({ type: "info", message }),
    });
    if (!outputs) {
      // A never-deployed stage: every check that can refuse runs before the bootstrap update.
      if (options.resume)
        return refuse(
          report,
          `nothing to resume on stage ${options.stage}: it has never been deployed`,
        );
      const configured = config.slots[config.traffic.stable];
      if (configured.image === options.image)
        return refuse(report, `${options.image} is already the stable release of ${options.stage}`);
      report({
        type: "info",
        message: `stage ${options.stage} has never been deployed; deploying it as configured first`,
      });
      await guard.fence();
      report({ type: "update", phase: "started", message: `bootstrap stage ${options.stage}` });
      const result = await stack.up(`bootstrap stage ${options.stage}`);
      report({
        type: "update",
        phase: "succeeded",
        message: `bootstrap stage ${options.stage}`,
        ...result,
      });
      outputs = (await stack.outputs())!;
    }
    const active =
      outputs.release && !SETTLED_PHASES.includes(outputs.release.phase)
        ? outputs.release
        : undefined;
    const readBack =
      options.weightsReadBack ??
      weightsReadBackFor(config, stack instanceof StageStack ? stack : undefined, aws);
    // A kill may have cut the last update short, or ended the process before its closing record.
    // A resume reads the live route first: an update that changed it before the process ended
    // is told from one that never reached the cluster.
    const routeAhead =
      !!outputs.release &&
      (await recordCutShortUpdate(
        log,
        options.stage,
        outputs.release.id,
        outputs,
        options.resume && active ? await liveWeights(readBack, outputs) : undefined,
      )) === "routeAhead";
    const closed = await closeSettledRelease(log, options.stage, outputs);
    if (options.resume && closed)
      return finish(report, closed, {
        releaseId: outputs.release!.id,
        reason: `release ${outputs.release!.id} had ${closed === "promoted" ? "completed" : "rolled back"} before the process ended; its record is written now`,
      });
    const unlanded = active ? undefined : await unlandedRelease(log, outputs);

    let state: StageState;
    let rollingBack: string | undefined;
    if (options.resume && !active && unlanded) {
      // Started, but its deploy never landed: the resume deploys it, unless the stage moved on
      // since (never into the slot that now serves all traffic).
      const stale = unlandedIsStale(unlanded, outputs);
      if (stale)
        return refuse(
          report,
          `${stale}. Nothing was deployed. Close it with: slipway rollback --stage ${options.stage} (it records that it never deployed), then start a new release`,
        );
      await recordCutShortUpdate(log, options.stage, unlanded.id, outputs);
      state = { ...stateFromOutputs(outputs, config), release: unlanded };
      stack.writeState(stateFromOutputs(outputs, config));
      await log.append({
        stage: options.stage,
        releaseId: unlanded.id,
        event: "release.resumed",
        reason: "its deploy had not landed; deploying it",
      });
      report({ type: "info", message: `resuming ${unlanded.id}: deploying it` });
    } else if (options.resume) {
      if (!active)
        return refuse(
          report,
          `nothing to resume on stage ${options.stage}: no release in progress`,
        );
      // The stack file may hold a half-written next step; the outputs hold what was applied.
      state = stateFromOutputs(outputs, config);
      stack.writeState(state);
      // A rollback that was under way when the process ended is finished, not forgotten.
      rollingBack = await rollbackUnderWay(log, active.id);
      // A route edited or deleted during a pause (a drift pause, or a kill): the resume puts it
      // back as the stack declares it before the machine goes on, as the pause advised.
      const drifted = routeAhead || rollingBack ? undefined : await routeDrift(readBack, outputs);
      if ((routeAhead || drifted) && !rollingBack) {
        await guard.fence();
        await restoreRoute({
          stack,
          log,
          report,
          outputs,
          releaseId: active.id,
          refresh: routeRefreshable(config),
          ...(drifted ? { found: drifted } : {}),
        });
      }
      await log.append({
        stage: options.stage,
        releaseId: active.id,
        event: "release.resumed",
        reason: `at phase ${active.phase}, step ${active.position}/${plan.length}`,
      });
      report({
        type: "info",
        message: `resuming ${active.id} at phase ${active.phase}, step ${active.position}/${plan.length}`,
      });
    } else {
      if (active) {
        return refuse(
          report,
          `stage ${options.stage} has release ${active.id} (${active.artifact.version}) in progress, phase ${active.phase} at step ${active.position}/${active.steps}; ` +
            "finish it with `slipway release --resume` or `slipway rollback`",
        );
      }
      const stable = outputs.releases[outputs.stableSlot];
      if (stable.image === options.image)
        return refuse(report, `${options.image} is already the stable release of ${options.stage}`);
      state = stateFromOutputs(outputs, config);
      const at = new Date(now());
      const record: ReleaseRecord = {
        id: newReleaseId(at),
        phase: "deploying",
        candidateSlot: otherSlot(outputs.stableSlot),
        artifact: {
          image: options.image!,
          version: options.version!,
          ...(options.revision ? { revision: options.revision } : {}),
        },
        previous: {
          slot: outputs.stableSlot,
          image: stable.image,
          version: stable.version,
          ...(stable.revision ? { revision: stable.revision } : {}),
        },
        position: 0,
        steps: plan.length,
        startedAt: at.toISOString(),
        updatedAt: at.toISOString(),
      };
      state = { ...state, release: record };
      const digest = parseImageRef(record.artifact.image, "--image").digest;
      await log.append({
        stage: options.stage,
        releaseId: record.id,
        event: "release.started",
        artifact: {
          image: record.artifact.image,
          digest,
          version: record.artifact.version,
          revision: record.artifact.revision,
        },
        weights: outputs.weights,
        // The whole record: a resume deploys it when a kill ended the process before the deploy landed.
        // The people-owned config it starts with: an update over an edited one is refused.
        figures: {
          plan: plan.map(describeStep),
          previous: record.previous,
          record,
          config: stageConfigFingerprint(ctx.projectDir, options.stage),
        },
      });
      await log.append({
        stage: options.stage,
        releaseId: record.id,
        event: "artifact.verified",
        artifact: { image: record.artifact.image, digest, version: record.artifact.version },
        verdict: verdict!.status === "verified" ? "pass" : undefined,
        figures:
          verdict!.status === "verified"
            ? { provenance: verdict!.verified.provenance }
            : { note: verdict!.note },
      });
      report({
        type: "info",
        message: `release ${record.id}: ${record.artifact.version} into ${record.candidateSlot} (stable ${record.previous.slot} ${record.previous.version}), ${plan.length} steps`,
      });
    }

    return await drive({
      stack,
      outputs,
      readBack,
      aws,
      state,
      config,
      plan,
      analysisSpec,
      log,
      report,
      now,
      sleep,
      options,
      ctx,
      rollingBack,
      guard,
    });
  } catch (err) {
    const lost = guard.lost();
    if (lost) return finish(report, "leaseLost", { reason: lostLeaseReason(options.stage, lost) });
    return finish(report, "error", { reason: (err as Error).message });
  } finally {
    // Deliveries are bounded by their timeouts and retries; their failures are only recorded.
    await notifier?.flush();
    aws?.close();
    await guard.end();
    store.close();
  }
}

/**
 * How the live route differs from what the stack declares (missing, edited, other weights), or
 * undefined when it agrees or cannot be read for another reason (the machine's own read-back
 * says so then).
 */
async function routeDrift(
  readBack: WeightsReadBack,
  outputs: StageOutputs,
): Promise<string | undefined> {
  try {
    const live = await readBack.read(outputs);
    return sameWeights(live, outputs.weights)
      ? undefined
      : `blue ${live.blue} / green ${live.green}`;
  } catch (err) {
    if (err instanceof RouteDriftedError) return err.message;
    if (err instanceof RoutingNotFoundError && !err.unreachable) return err.message;
    return undefined;
  }
}

/** The weights the live route carries, or undefined when it cannot be read (the resume's verify says why). */
async function liveWeights(
  readBack: WeightsReadBack,
  outputs: StageOutputs,
): Promise<Weights | undefined> {
  try {
    return await readBack.read(outputs);
  } catch (err) {
    return err instanceof RouteDriftedError ? err.weights : undefined;
  }
}

/**
 * A resume after an update that changed the route but was cut short before the stack recorded
 * it: the route goes back to what the stack holds (one update limited to it, which reads it back
 * first), so the step runs again from a route that agrees with the stack, instead of the
 * difference being taken for drift and a release that passed every step being rolled back.
 */
async function restoreRoute(a: {
  stack: UpdatableStack;
  log: StoreLog;
  report: Reporter;
  outputs: StageOutputs;
  releaseId: string;
  /** Read the route back first (not in render mode: nothing to read there). */
  refresh: boolean;
  /** What the resume found instead of the stack's route (a drift); absent after a cut-short update. */
  found?: string;
}): Promise<void> {
  const { stack, outputs } = a;
  const base = { stage: stack.stage, releaseId: a.releaseId };
  const message = `restore the route of ${stack.stage} to the stack's weights (blue ${outputs.weights.blue} / green ${outputs.weights.green}) ${a.found ? `(found: ${a.found.slice(0, 300)})` : "before the step runs again"}`;
  await a.log.append({
    ...base,
    event: "update.started",
    weights: outputs.weights,
    reason: message,
    figures: { transition: RESTORE_ROUTE },
  });
  a.report({ type: "update", phase: "started", message });
  try {
    const result = await stack.up(message, RESTORE_ROUTE, outputs.routing, { refresh: a.refresh });
    await a.log.append({
      ...base,
      event: "update.succeeded",
      weights: outputs.weights,
      figures: {
        changes: result.changes,
        durationMs: result.durationMs,
        transition: RESTORE_ROUTE,
      },
    });
    a.report({ type: "update", phase: "succeeded", message, ...result });
  } catch (err) {
    await a.log.append({
      ...base,
      event: "update.failed",
      reason: (err as Error).message.slice(0, 2000),
    });
    throw err;
  }
}

/** Where `{fromEnv}` header values come from: the process environment and the options' extra env. */
const hookEnvironment = (options: ReleaseOptions): Record<string, string | undefined> => ({
  ...process.env,
  ...(options.env ?? {}),
});

interface DriveArgs {
  stack: UpdatableStack;
  /** AWS stages: the metrics, alarms and read-back prepared before any update. */
  aws?: AwsRelease;
  /** The stage's outputs before the release; the routing id in them never changes with a step. */
  outputs: StageOutputs;
  readBack: WeightsReadBack;
  state: StageState;
  config: StageConfig;
  plan: PlanStep[];
  analysisSpec: AnalysisSpec;
  log: StoreLog;
  report: Reporter;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  options: ReleaseOptions;
  ctx: PipelineContext;
  /** Resuming a release whose rollback a kill or signal cut short: finish the rollback. */
  rollingBack?: string;
  /** The stage's lease: fenced before each update; once lost, nothing more lands or is recorded. */
  guard: LeaseGuard;
}

/**
 * What serves can be read on a stage whose route is read from the API server: each slot's
 * Deployment, and the Gateway when its URL is known (`--smoke-url`); on AWS, each slot's ECS
 * service and target health, with the clients the release prepared. In render mode there are
 * no live objects here to read.
 */
function servingCheckFor(a: DriveArgs): ServingCheck | undefined {
  if (a.aws) return a.aws.serving;
  if (!(a.readBack instanceof KubernetesApiReadBack)) return undefined;
  const readBack = a.readBack;
  return new KubernetesServing(
    () => readBack.api(),
    a.config.service.name,
    httpRouteRef(a.outputs).namespace,
    a.options.smokeUrl
      ? {
          url: a.options.smokeUrl,
          healthPath: a.config.service.healthPath,
          testerHeader: () => a.stack.testerHeader(),
        }
      : undefined,
  );
}

async function drive(a: DriveArgs): Promise<ReleaseReport> {
  const { stack, config, plan, log, report, now } = a;
  const stage = a.options.stage;
  const releaseId = a.state.release!.id;
  let current = a.state;
  const base = () => ({ stage, releaseId });
  const stepOf = (t: Transition) =>
    t.kind === "setWeight"
      ? { index: t.position - 1, description: describeStep(plan[t.position - 1]!) }
      : undefined;

  const updater = {
    stack,
    log,
    report,
    releaseId,
    signal: a.options.signal,
    routing: a.outputs.routing,
    config: configGuard(a.ctx.projectDir, stage, await releaseRecords(log, releaseId)),
    refreshable: routeRefreshable(config),
    slotWorkload: slotWorkloadOf(config, a.outputs),
    fence: () => a.guard.fence(),
  };

  /** Reads the weights in force back from the live route; drift is logged and thrown. */
  const watchWeights = async (expected: Weights, when: string): Promise<void> => {
    let found: Weights;
    let differences: string[] = [];
    try {
      found = await a.readBack.read(a.outputs);
    } catch (err) {
      // The route carries more than weights the stack did not set: drift all the same.
      if (!(err instanceof RouteDriftedError)) throw err;
      found = err.weights;
      differences = err.differences;
    }
    const ok =
      found.blue === expected.blue && found.green === expected.green && !differences.length;
    await log.append({
      ...base(),
      event: ok ? "weights.verified" : "weights.drifted",
      weights: found,
      figures: { expected, found, when, ...(differences.length ? { differences } : {}) },
    });
    report({ type: "weights", ...found, verified: ok });
    if (!ok) throw new WeightsDriftedError(expected, found, when, differences);
  };

  /**
   * AWS: the candidate's CloudWatch alarms, read while the release runs. A
   * reason to roll back when one is in ALARM, or when they cannot be read (as
   * CodeDeploy does unless told to ignore poll failures); undefined otherwise.
   */
  const alarmsOf = a.aws?.alarms;
  const alarmRollback = alarmsOf
    ? async (): Promise<string | undefined> => {
        const candidate = otherSlot(current.stable);
        let reason: string;
        let firing: { name: string; reason: string; since?: string }[] = [];
        try {
          firing = (await alarmsOf(candidate)).firing;
          if (firing.length === 0) return undefined;
          reason = alarmRollbackReason(firing);
        } catch (err) {
          reason = `the alarms of ${candidate} could not be read: ${(err as Error).message}`;
        }
        await log.append({
          ...base(),
          event: "alarm.fired",
          reason,
          figures: { slot: candidate, firing },
        });
        report({ type: "info", message: reason });
        return reason;
      }
    : undefined;
  const hooks = checkpointEffect({
    config,
    log,
    env: hookEnvironment(a.options),
    plan,
    state: () => current,
    endpoint: a.outputs.endpoint,
    testerHeader: () => stack.testerHeader(),
  });

  const serving = servingCheckFor(a);
  const effects: Effects = {
    ...(serving
      ? {
          async serving(state, when) {
            try {
              await serving.check(state, a.config.service.replicas, when);
            } catch (err) {
              if (err instanceof NotServingError)
                await log.append({
                  ...base(),
                  event: "serving.failed",
                  reason: err.message,
                  figures: { when, problems: err.problems },
                });
              throw err;
            }
          },
        }
      : {}),
    async apply(next, t, message) {
      const signal = a.options.signal;
      if (signal?.aborted)
        throw new InterruptedError(`${signalName(signal)} before: ${message} (not started)`);
      try {
        await applyUpdate(updater, current, next, t, message, stepOf(t));
      } catch (err) {
        if (err instanceof InterruptedError) throw err;
        // Not this runner's stage any more: the machine stops here, and neither rolls back nor records.
        if (a.guard.lost())
          throw new InterruptedError(`${LEASE_LOST} before: ${message} (not started)`);
        // The same signal reached the engine, which cancelled the update: the stack says what landed.
        if (signal?.aborted)
          throw new InterruptedError(
            `${signalName(signal)} during: ${message} (the engine stopped it)`,
          );
        throw err;
      }
      current = next;
      if (signal?.aborted)
        throw new InterruptedError(`${signalName(signal)} after: ${message} (landed)`);
    },
    verify: (expected, when = "after the update") => watchWeights(expected, when),
    async smoke() {
      if (!a.options.smokeUrl || !config.canary.smokeCheck)
        return { ok: true, detail: "no smoke check configured" };
      const header = await stack.testerHeader();
      const url = new URL(config.canary.smokeCheck.path, a.options.smokeUrl).toString();
      const codes: number[] = [];
      for (let i = 0; i < config.canary.smokeCheck.requests; i++) {
        try {
          const res = await fetch(url, {
            headers: header ? { [header.name]: header.value } : {},
            signal: AbortSignal.timeout(SMOKE_REQUEST_TIMEOUT_MS),
          });
          codes.push(res.status);
        } catch {
          codes.push(0);
        }
      }
      const ok = codes.every((c) => c >= 200 && c < 400);
      await log.append({
        ...base(),
        event: ok ? "smoke.passed" : "smoke.failed",
        figures: { url, codes },
      });
      return { ok, detail: `${url}: ${codes.join(",")}` };
    },
    async analyse(step, index) {
      const spec = analysisOfStep(a.analysisSpec, step);
      const stable = current.stable;
      const candidate = otherSlot(stable);
      const metrics = metricsFetcher(a, spec, stable, candidate);
      let fetches = 0;
      // Fault injection (failpoint.ts): `during:analysis` holds the second fetch, after a measurement.
      const fetchMetrics = async (w: AnalysisWindow) => {
        if (++fetches === 2) await failpoint("during", "analysis");
        return metrics(w);
      };
      // An alarm in ALARM ends the analysis at the next look and fails the step.
      let alarm: string | undefined;
      const aborted = new AbortController();
      const watched = alarmRollback
        ? async (w: AnalysisWindow) => {
            alarm = await alarmRollback();
            if (alarm) {
              aborted.abort();
              throw new Error(alarm);
            }
            return fetchMetrics(w);
          }
        : fetchMetrics;
      const measured = await runAnalysis({
        spec,
        fetch: watched,
        signal: aborted.signal,
        now,
        sleep: a.sleep,
        onMeasurement: async (m) => {
          await log.append({
            ...base(),
            event: "analysis.measured",
            step: { index, description: describeStep(step) },
            verdict: m.phase === "error" ? undefined : m.phase,
            figures: {
              measurement: m.index,
              window: m.window,
              error: m.error,
              metrics: m.result?.metrics,
            },
          });
        },
      });
      const outcome = alarm
        ? { ...measured, verdict: "fail" as const, reasons: [alarm] }
        : measured;
      const result: AnalysisResult = {
        verdict: outcome.verdict,
        reasons: outcome.reasons,
        figures: { counts: outcome.counts },
      };
      const last = outcome.measurements.at(-1);
      await log.append({
        ...base(),
        event: `analysis.${outcome.verdict === "pass" ? "passed" : outcome.verdict === "fail" ? "failed" : "inconclusive"}`,
        step: { index, description: describeStep(step) },
        verdict: outcome.verdict,
        weights: weightsOf(current),
        figures: { counts: outcome.counts, metrics: last?.result?.metrics },
        reason: outcome.reasons.join("; "),
      });
      report({ type: "analysis", index, verdict: outcome.verdict, reasons: outcome.reasons });
      return result;
    },
    async sleep(seconds, label, wait) {
      if (seconds <= 0) return;
      // A resumed release does not serve again a pause it already served, in full or in part.
      const served = pauseServed(await releaseRecords(log, releaseId), label, now(), wait);
      if (served.done) return;
      const left = served.leftSeconds ?? seconds;
      if (left <= 0) {
        await log.append({
          ...base(),
          event: "pause.ended",
          reason: label,
          figures: { pause: wait },
        });
        return;
      }
      await log.append({
        ...base(),
        event: "pause.started",
        reason: label,
        figures: {
          seconds,
          ...(served.leftSeconds !== undefined ? { resumedWithSecondsLeft: left } : {}),
          pause: wait,
        },
      });
      report({ type: "wait", label, seconds: left });
      await failpoint("during", "pause");
      // During a canary a long pause reads the weights back every driftCheckSeconds.
      const watching = current.release?.phase === "canary";
      // On AWS it also looks at the candidate's alarms at least every minute; one in ALARM ends
      // the pause, and the checkpoint after it rolls back.
      const chunk = watching
        ? Math.min(config.canary.driftCheckSeconds, alarmRollback ? ALARM_POLL_MS / 1000 : Infinity)
        : left;
      const until = now() + left * 1000;
      for (let remaining = left * 1000; remaining > 0; remaining = until - now()) {
        await a.sleep(Math.min(remaining, chunk * 1000));
        if (watching && until - now() > 0) {
          await watchWeights(weightsOf(current), `during ${label}`);
          if (alarmRollback && (await alarmRollback())) break;
        }
      }
      await log.append({
        ...base(),
        event: "pause.ended",
        reason: label,
        figures: { pause: wait },
      });
    },
    async approved(index) {
      const approvals = (await releaseRecords(log, releaseId)).filter(
        (r) => r.event === "approval.recorded",
      );
      const ok = approvals.some((r) => r.step === undefined || r.step.index === index);
      if (!ok)
        await log.append({
          ...base(),
          event: "approval.awaited",
          // index -1: a gate outside the steps (a hook's pause), approved for the whole release.
          ...(plan[index] ? { step: { index, description: describeStep(plan[index]!) } } : {}),
        });
      return ok;
    },
    note(event, detail) {
      report({ type: "info", message: `${event}: ${JSON.stringify(detail)}` });
    },
    now,
    async checkpoint(point, at) {
      // Before each step, after each update and before promotion the alarms come first.
      if (alarmRollback && ALARM_POINTS.includes(point)) {
        const reason = await alarmRollback();
        if (reason) return { action: "rollback", reason };
      }
      return hooks(point, at);
    },
  };

  const result = await runMachine(
    {
      state: current,
      plan,
      fullReplicas: config.service.replicas,
      smokeCheck: !!config.canary.smokeCheck,
      scaleDownDelaySeconds: config.canary.scaleDownDelaySeconds,
      progressDeadlineSeconds: config.canary.progressDeadlineSeconds,
      inconclusiveRetries: INCONCLUSIVE_RETRIES,
      onDrift: config.canary.onDrift,
      resumed: !!a.options.resume,
      ...(a.rollingBack ? { rollingBack: a.rollingBack } : {}),
    },
    effects,
  );

  const lost = a.guard.lost();
  if (lost) return finish(report, "leaseLost", { releaseId, reason: lostLeaseReason(stage, lost) });
  const event: LogRecord["event"] = OUTCOMES[result.outcome].closingEvent;
  if (result.outcome === "interrupted")
    result.reason = `${result.reason}; continue with: slipway release --stage ${stage} --resume, or go back with: slipway rollback --stage ${stage}`;
  await log.append({
    ...base(),
    event,
    weights: weightsOf(result.state),
    reason: result.reason,
    ...(result.pause ? { figures: { pause: result.pause } } : {}),
  });
  return finish(report, result.outcome, { releaseId, reason: result.reason });
}

/** Where the machine stands between updates with traffic on the candidate. */
const ALARM_POINTS: readonly HookPoint[] = [
  "afterDeploy",
  "beforeStep",
  "afterStep",
  "confirmPromotion",
];

function metricsFetcher(
  a: DriveArgs,
  spec: AnalysisSpec,
  stable: Slot,
  candidate: Slot,
): (w: AnalysisWindow) => Promise<MetricInputs> {
  if (a.options.metrics) return a.options.metrics({ config: a.config, stable, candidate, spec });
  if (a.aws) return a.aws.metrics({ spec, stable, candidate });
  const url = a.options.prometheusUrl ?? a.config.kubernetes.prometheusUrl;
  if (!url)
    throw new Error(
      `stage ${a.options.stage} has no slipway:kubernetes.prometheusUrl and no --prometheus-url`,
    );
  return createPrometheusProvider({
    url,
    service: a.config.service.name,
    stableSlot: stable,
    candidateSlot: candidate,
    metrics: spec.metrics,
    stepSeconds: a.config.kubernetes.prometheusStepSeconds,
  });
}

/**
 * How much of the timed wait `wait` (labelled `label`) this release already served,
 * from its log: a pause ended since the last update is done; one started and not
 * ended has the rest of its time left. Records are matched by their typed
 * `figures.pause`; a record written before waits were typed has none and is matched
 * by its `reason`, the label. Pure.
 */
export function pauseServed(
  records: LogRecord[],
  label: string,
  nowMs: number,
  wait?: Wait,
): { done: boolean; leftSeconds?: number } {
  let lastUpdate = -1;
  records.forEach((r, i) => {
    if (r.event === "update.succeeded") lastUpdate = i;
  });
  const since = records.slice(lastUpdate + 1).filter((r) => {
    const typed = waitOf(r);
    return typed && wait ? sameWait(typed, wait) : r.reason === label;
  });
  if (since.some((r) => r.event === "pause.ended")) return { done: true };
  const started = since.find((r) => r.event === "pause.started");
  // A step's pause lasts what the plan says now, counted from when it started: a person who
  // shortened it in the stack file before --resume gets the shorter pause, not the old one.
  const seconds = wait?.kind === "stepPause" ? wait.seconds : started?.figures?.seconds;
  if (!started || typeof seconds !== "number") return { done: false };
  return {
    done: false,
    leftSeconds: Math.max(0, Math.ceil((Date.parse(started.at) + seconds * 1000 - nowMs) / 1000)),
  };
}

const signalName = (signal: AbortSignal): string =>
  typeof signal.reason === "string" ? signal.reason : "interrupted";

/** A sleep that ends at once, with InterruptedError, when the release is asked to stop. */
export function interruptibleSleep(
  sleep: (ms: number) => Promise<void>,
  signal: AbortSignal | undefined,
): (ms: number) => Promise<void> {
  if (!signal) return sleep;
  return (ms) =>
    new Promise<void>((resolve, reject) => {
      const stop = () => reject(new InterruptedError(`${signalName(signal)} during a wait`));
      if (signal.aborted) return stop();
      signal.addEventListener("abort", stop, { once: true });
      sleep(ms).then(
        () => {
          signal.removeEventListener("abort", stop);
          resolve();
        },
        (err) => {
          signal.removeEventListener("abort", stop);
          reject(err);
        },
      );
    });
}
