import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPrometheusProvider } from "../analysis/providers/prometheus";
import type { Runtime } from "../config/schema";
import { OUTCOMES, otherSlot, type PipelineEvent, type Reporter } from "../domain";
import { KubeApiError, KubeClient, kubePaths } from "../kube/client";
import { type LogRecord, ReleaseLog } from "../pipeline/log";
import { release, type MetricsSource } from "../pipeline/release";
import { planSteps } from "../pipeline/plan";
import { StageLease } from "../pipeline/context";
import { PipelineBusyError } from "../pipeline/errors";
import {
  anyRunning,
  type ClusterDriver,
  type ClusterInfo,
  localClusterDriver,
} from "./clusterDriver";
import { startHookSink } from "./hookSink";
import { describeServerErrors, LoadGenerator, untilNoRouteServes } from "./load";
import { descendants, freePort, PidFile } from "../processes";
import { analysisConfig, DEMO, type RehearsalProfile } from "./profile";
import { ensurePrometheus, startPrometheus, type LocalPrometheus } from "./prometheus";
import { type Artifact, LocalRegistry } from "./registry";
import { releaseFacts, writeReleaseReport } from "./report";
import { configureStage, scratchStage } from "./scratch";
import { SplitRecorder } from "./split";
import { summaryJson } from "./summary";
import type { RehearsalMode, RehearsedRelease, RehearsalResult } from "./result";
import {
  liveSource,
  renderedSource,
  SlotSupervisor,
  type SlotSource,
  type SupervisorEvent,
} from "./supervisor";
import { readStageConfig } from "../pipeline/stackFile";

/**
 * `slipway rehearse` (`npm start`): a whole release cycle on the local stage
 * with real processes, real traffic and a real Prometheus:
 *
 *   build the service → registry images 1.0.0 (baseline), 1.1.0 (good),
 *   1.2.0 (bad: errors and latency in its image config) → the local cluster
 *   (started if it is not running) → scratch stage with 1.0.0 in blue, applied
 *   to the cluster → Prometheus, slot processes that follow the live
 *   Deployments (each on its Service's ClusterIP:port), load through the
 *   Gateway (Traefik splits it by the HTTPRoute) → release 1.1.0 (expected:
 *   promoted) → release 1.2.0 (expected: rolled back) → a report per release
 *   and summary.json → everything it started stopped.
 *
 * `mode: "render"` is the same without a cluster: manifests are rendered,
 * slot processes follow the rendered Deployments on 127.0.0.1 ports and the
 * load generator splits by the rendered HTTPRoute's weights.
 */

export interface RehearsalOptions {
  /** The repository (program, node_modules, scripts). */
  repo: string;
  runtimes: Runtime[];
  profile?: RehearsalProfile;
  /** A runtime's own profile instead of `profile` (the engine test gives Rust a one-step plan). */
  profileFor?: Partial<Record<Runtime, RehearsalProfile>>;
  /** Defaults to `<repo>/.slipway/rehearsal`. */
  outDir?: string;
  /** Pipeline events and the rehearsal's own lines (as `info` events). */
  report?: Reporter;
  /** Aborts the rehearsal (Ctrl-C): everything started is stopped, the promise rejects with RehearsalAborted. */
  signal?: AbortSignal;
  /** `cluster` (default): the live local cluster; `render`: rendered manifests, no cluster. */
  mode?: RehearsalMode;
  /** The local cluster's implementation (tests may pass one that is already up). */
  cluster?: ClusterDriver;
}

export class RehearsalAborted extends Error {}

/** The three releases of a rehearsal. The versions are labels; the images differ by their manifests. */
export const VERSIONS = { baseline: "1.0.0", good: "1.1.0", bad: "1.2.0" } as const;

export async function rehearse(options: RehearsalOptions): Promise<RehearsalResult> {
  const started = Date.now();
  const profile = options.profile ?? DEMO;
  const outDir = options.outDir ?? join(options.repo, ".slipway", "rehearsal");
  const report: Reporter = options.report ?? (() => {});
  const say = (message: string) => report({ type: "info", message });
  mkdirSync(outDir, { recursive: true });

  // One rehearsal per directory: a second one would replace the first one's stage under it.
  let lock: StageLease;
  try {
    lock = StageLease.acquire(outDir, "rehearsal", "slipway rehearse");
  } catch (err) {
    if (err instanceof PipelineBusyError)
      throw new Error(
        `another rehearsal is running in ${outDir}; wait for it or stop it (${err.heldBy})`,
        { cause: err },
      );
    throw err;
  }
  try {
    return await rehearseLocked(options, { started, profile, outDir, report, say });
  } finally {
    lock.release();
  }
}

async function rehearseLocked(
  options: RehearsalOptions,
  {
    started,
    profile,
    outDir,
    report,
    say,
  }: {
    started: number;
    profile: RehearsalProfile;
    outDir: string;
    report: Reporter;
    say: (m: string) => void;
  },
): Promise<RehearsalResult> {
  // Processes that were below this one before the rehearsal are not the rehearsal's to stop.
  const preexisting = new Set(descendants(process.pid));
  const stopDescendants = () => stopNewDescendants(preexisting);
  // Safe only under the lock: the pids recorded here belong to no live rehearsal.
  const pidFile = join(outDir, "pids.json");
  const leftovers = await PidFile.reapLeftovers(pidFile);
  if (leftovers.length)
    say(`stopped what an earlier rehearsal left running: ${leftovers.join(", ")}`);
  const pids = new PidFile(pidFile);

  const releases: RehearsedRelease[] = [];
  const stops: (() => Promise<void>)[] = [];
  let abortListener: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (!options.signal) return;
    abortListener = () => reject(new RehearsalAborted("rehearsal interrupted"));
    if (options.signal.aborted) abortListener();
    else options.signal.addEventListener("abort", abortListener, { once: true });
  });
  aborted.catch(() => {});
  const orAbort = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted]);

  // Builds run one after the other (the script holds a lock); the next runtime's build overlaps
  // this runtime's rehearsal, so a cold Rust build costs no extra wall time after the Go one.
  const inflight: { release?: Promise<unknown> } = {};
  const builds = new Map<Runtime, Promise<Built>>();
  const build = (runtime: Runtime) => {
    if (!builds.has(runtime)) {
      const p = buildService(options.repo, runtime, (line) => say(`[${runtime}] ${line}`));
      p.catch(() => {});
      builds.set(runtime, p);
    }
    return builds.get(runtime)!;
  };
  const mode: RehearsalMode = options.mode ?? "cluster";
  // The local cluster: reused when it runs already (and left running), else started here and
  // stopped at the end, also after an abort.
  let cluster: { info: ClusterInfo; stop?: () => Promise<void> } | undefined;
  let clusterStarting: Promise<unknown> | undefined;
  let stopStarted: (() => Promise<void>) | undefined;
  const stopCluster = async () => {
    // A start interrupted by Ctrl-C goes on in the background: let it end, then stop it all.
    await clusterStarting?.catch(() => {});
    const stop = stopStarted;
    stopStarted = undefined;
    if (stop) {
      say("local cluster: stopping what this rehearsal started");
      await stop().catch((err) => say(`local cluster: stopping failed: ${err.message}`));
    }
  };
  const finish = (result: Omit<RehearsalResult, "mode" | "gatewayUrl">): RehearsalResult => {
    const full: RehearsalResult = {
      ...result,
      mode,
      ...(cluster ? { gatewayUrl: cluster.info.gatewayUrl } : {}),
    };
    try {
      const file = join(outDir, "summary.json");
      writeFileSync(file, JSON.stringify(summaryJson(full), null, 2) + "\n");
      full.summaryFile = file;
    } catch (err) {
      say(`summary.json: not written: ${(err as Error).message}`);
    }
    return full;
  };
  try {
    await orAbort(ensurePrometheus(say));
    if (mode === "cluster") {
      const driver = options.cluster ?? (await localClusterDriver());
      const o = { projectDir: options.repo, onProgress: (line: string) => say(line) };
      // The build runs meanwhile (the cluster's start is mostly waiting for readiness).
      void build(options.runtimes[0]!);
      const before = await orAbort(driver.clusterStatus(o).catch(() => undefined));
      // A cluster someone runs (even with a part down, which `up` restarts) is theirs: left running.
      if (before && anyRunning(before)) say("local cluster: running already; it is left running");
      else stopStarted = () => driver.clusterDown(o);
      const up = driver.clusterUp(o);
      clusterStarting = up;
      cluster = { info: await orAbort(up) };
    }
    for (const [i, runtime] of options.runtimes.entries()) {
      const stopAll = async () => {
        while (stops.length) await stops.pop()!().catch(() => {});
      };
      try {
        const binary = await orAbort(build(runtime));
        const next = options.runtimes[i + 1];
        if (next) void build(next);
        releases.push(
          ...(await orAbort(
            rehearseRuntime({
              runtime,
              binary,
              profile: options.profileFor?.[runtime] ?? profile,
              outDir,
              repo: options.repo,
              report,
              say,
              pids,
              stops,
              orAbort,
              inflight,
              signal: options.signal,
              cluster: cluster?.info,
            }),
          )),
        );
      } finally {
        await stopAll();
      }
    }
  } catch (err) {
    if (err instanceof RehearsalAborted) {
      // The engine may be mid-update, and the pipeline answers a failed update with rollback
      // attempts (new engine processes): stop them until the release call has returned. The
      // scratch stage they worked on is replaced by the next run.
      const deadline = Date.now() + 20_000;
      let settled = !inflight.release;
      void inflight.release?.finally(() => (settled = true));
      for (;;) {
        await stopDescendants();
        if (settled || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw err;
    }
    await stopDescendants(); // a build still running for the next runtime
    const failed = finish({
      ok: false,
      releases,
      error: (err as Error).message,
      durationMs: Date.now() - started,
    });
    await stopCluster();
    return failed;
  } finally {
    if (abortListener) options.signal?.removeEventListener("abort", abortListener);
    await stopCluster();
  }
  const ok =
    releases.length === 2 * options.runtimes.length &&
    releases.every((r) => r.result.outcome === r.expected);
  return finish({ ok, releases, durationMs: Date.now() - started });
}

/**
 * Stops what the rehearsal still runs below this process (the engine mid-update, a build):
 * every descendant not in `preexisting`, SIGTERM, then SIGKILL after 3 s.
 */
async function stopNewDescendants(preexisting: Set<number>): Promise<void> {
  const ours = () => descendants(process.pid).filter((pid) => !preexisting.has(pid));
  for (const pid of ours()) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
  for (let i = 0; i < 30 && ours().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of ours()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export interface Built {
  path: string;
  digest: string;
}

interface RuntimeArgs {
  runtime: Runtime;
  binary: Built;
  profile: RehearsalProfile;
  outDir: string;
  repo: string;
  report: Reporter;
  say: (message: string) => void;
  pids: PidFile;
  stops: (() => Promise<void>)[];
  orAbort: <T>(p: Promise<T>) => Promise<T>;
  /** The release call in progress, so that an abort can wait for it to end. */
  inflight: { release?: Promise<unknown> };
  signal?: AbortSignal;
  /** The live local cluster; undefined in render mode. */
  cluster?: ClusterInfo;
}

async function rehearseRuntime(a: RuntimeArgs): Promise<RehearsedRelease[]> {
  const { runtime, profile, say } = a;
  const tag = `[${runtime}]`;

  // 1. Three images of the one binary, built deterministically (and cached) by scripts/build-services.sh.
  const binary = a.binary;
  const registry = new LocalRegistry(join(a.outDir, "registry"));
  const revision = gitRevision(a.repo);
  const service = "checkout";
  const push = (version: string, env?: Record<string, string>): Artifact =>
    registry.pushImage({ service, runtime, binaryPath: binary.path, version, revision, env });
  const faults = {
    FAULT_ERROR_RATIO: String(profile.bad.errorRatio),
    FAULT_LATENCY_MS: String(profile.bad.latencyMs),
  };
  const images = {
    baseline: push(VERSIONS.baseline),
    good: push(VERSIONS.good),
    bad: push(VERSIONS.bad, faults),
  };
  say(
    `${tag} images: ${VERSIONS.baseline} ${short(images.baseline.digest)}, ${VERSIONS.good} ${short(images.good.digest)}, ${VERSIONS.bad} ${short(images.bad.digest)} (binary ${short(binary.digest)}; ${VERSIONS.bad} carries ${Object.entries(
      faults,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")})`,
  );

  // 2. A fresh scratch stage with the baseline in blue: on the live cluster in its own
  //    namespace (emptied first: the cluster keeps what an earlier run left), or rendered.
  const stage = scratchStage(a.repo, join(a.outDir, runtime));
  const live = a.cluster;
  const namespace = `checkout-rehearsal-${runtime}`;
  const kube = live ? KubeClient.fromKubeconfig(live.kubeconfig) : undefined;
  if (kube) {
    // An interrupted earlier run may have left the other runtime's HTTPRoute, on the same host
    // and older: Traefik would send this runtime's traffic to it.
    for (const other of ["go", "rust"].filter((r) => r !== runtime))
      await a.orAbort(
        kube.delete(kubePaths.httpRoute(`checkout-rehearsal-${other}`, service)).catch(() => {}),
      );
    await a.orAbort(deleteNamespace(kube, namespace, say, tag));
    // Nothing of this run stays in the cluster; the namespace's deletion is only asked for (the
    // HTTPRoute goes before the slots stop: see below).
    a.stops.push(async () => {
      await kube.delete(`/api/v1/namespaces/${namespace}`).catch(() => {});
    });
  }
  const ports = { blue: await freePort(), green: await freePort() };
  const prometheus: LocalPrometheus = await a.orAbort(
    startPrometheus({
      dir: join(stage.root, "prometheus"),
      // On the cluster the slots' addresses are their Services' ClusterIPs, known once the
      // stage is deployed: the supervisor writes them into the targets file as slots start.
      targets: live ? [] : [`127.0.0.1:${ports.blue}`, `127.0.0.1:${ports.green}`],
      metricsPath: "/metrics",
      scrapeIntervalSeconds: profile.scrapeIntervalSeconds,
      pids: a.pids,
    }),
  );
  a.stops.push(() => prometheus.stop());
  say(
    live
      ? `${tag} prometheus ${prometheus.url} (pid ${prometheus.child.pid}) scrapes each slot at its Service's ClusterIP:port every ${profile.scrapeIntervalSeconds}s`
      : `${tag} prometheus ${prometheus.url} (pid ${prometheus.child.pid}) scrapes blue 127.0.0.1:${ports.blue} and green 127.0.0.1:${ports.green} every ${profile.scrapeIntervalSeconds}s`,
  );
  // The stand-ins for a CI system's acceptance test and a chat channel: one afterDeploy hook
  // that asks the candidate for /version through the tester header (on the cluster through the
  // Gateway, so Traefik's header route is what reaches the candidate), and a notification sink.
  const sink = await a.orAbort(
    startHookSink({
      target: (slot) => {
        if (live)
          return { url: live.gatewayUrl, ...(hostname ? { headers: { host: hostname } } : {}) };
        const url = slot === "blue" || slot === "green" ? supervisor.url(slot) : undefined;
        return url ? { url } : undefined;
      },
    }),
  );
  a.stops.push(() => sink.stop());
  configureStage(stage, {
    runtime,
    hooks: sink.hooks,
    webhooks: sink.webhooks,
    baseline: { image: images.baseline.image, version: VERSIONS.baseline, revision },
    steps: profile.steps,
    analysis: analysisConfig(profile),
    scaleDownDelaySeconds: profile.scaleDownDelaySeconds,
    progressDeadlineSeconds: profile.progressDeadlineSeconds,
    prometheusUrl: prometheus.url,
    ...(live ? { cluster: { kubeconfig: live.kubeconfig, namespace } } : {}),
  });
  const config = readStageConfig(stage.projectDir, stage.stage);
  const hostname = config.platform === "kubernetes" ? config.kubernetes.hostnames[0] : undefined;
  say(
    `${tag} scratch stage ${stage.projectDir} (state ${stage.backendUrl}), ${live ? `applied to the local cluster ${live.apiServerUrl}, namespace ${namespace}` : "render mode"}, plan: ${planSteps({ steps: profile.steps }).length} steps`,
  );

  // 3. Slot processes follow the Deployments; the load goes through the Gateway (render mode:
  //    the generator splits it by the rendered HTTPRoute).
  const source: SlotSource = kube
    ? liveSource({
        client: kube,
        namespace,
        service,
        routeName: service,
        onProblem: (m) => say(`${tag} ${m}`),
      })
    : renderedSource({ renderDir: stage.renderDir, service, ports });
  const supervisor = new SlotSupervisor({
    source,
    service,
    readyPath: "/readyz",
    metricsPath: "/metrics",
    registry,
    pids: a.pids,
    onEvent: (e) => {
      supervisorLine(e, tag, say, !!live);
      if (live && (e.type === "started" || e.type === "stopped"))
        prometheus.setTargets(supervisor.targets());
    },
  });
  supervisor.start();
  a.stops.push(() => supervisor.stop());
  if (kube && live) {
    // The next runtime's route matches the same host on the same Gateway, and Traefik keeps the
    // older route while it exists: this run's HTTPRoute goes once the load has stopped and
    // before the slots do, and is gone from the Gateway before the next runtime starts. Before
    // this run's load starts, likewise, no route may serve the host (one an interrupted run
    // left, or the other runtime's, deleted above, which Traefik drops half a second later):
    // the first release's traffic would go to slots that do not run (5xx).
    const gateway = { url: live.gatewayUrl, ...(hostname ? { host: hostname } : {}) };
    a.stops.push(async () => {
      const deleted = Date.now();
      await kube.delete(kubePaths.httpRoute(namespace, service)).catch(() => {});
      await untilNoRouteServes({ ...gateway, timeoutMs: 15_000 }).then(
        () =>
          say(`${tag} HTTPRoute deleted; the Gateway dropped it ${Date.now() - deleted} ms later`),
        (err) => say(`${tag} ${(err as Error).message}`),
      );
    });
    await a.orAbort(untilNoRouteServes({ ...gateway, timeoutMs: 15_000 }));
  }
  const load = new LoadGenerator({
    rate: profile.loadRate,
    target: live
      ? { kind: "gateway", url: live.gatewayUrl, ...(hostname ? { host: hostname } : {}) }
      : {
          kind: "split",
          target: (slot) => supervisor.url(slot),
          weights: () => supervisor.currentWeights(),
        },
    // Bounds: generous for the whole rehearsal, never unbounded.
    maxDurationMs: 30 * 60_000,
    maxRequests: profile.loadRate * 30 * 60,
  });
  load.start();
  a.stops.push(async () => {
    const s = await load.stop();
    say(
      `${tag} load: ${s.sent} requests sent, ${s.total.ok} answered 2xx, ${s.total.serverErrors} 5xx, ${s.total.failed} without answer${s.stopReason ? `; stopped early: ${s.stopReason}` : ""}`,
    );
  });
  say(
    live
      ? `${tag} load: ${profile.loadRate} requests/s to /work through the Gateway ${live.gatewayUrl}${hostname ? ` (Host: ${hostname})` : ""}; Traefik splits it by the HTTPRoute`
      : `${tag} load: ${profile.loadRate} requests/s to /work on loopback, split by the rendered HTTPRoute's weights`,
  );

  const metrics: MetricsSource = ({ config, stable, candidate, spec }) =>
    createPrometheusProvider({
      url: prometheus.url,
      service: config.service.name,
      stableSlot: stable,
      candidateSlot: candidate,
      metrics: spec.metrics,
      stepSeconds: profile.stepSeconds,
    });
  let flushLog = () => {};
  let split: SplitRecorder | undefined;
  const pipelineReport: Reporter = (event: PipelineEvent) => {
    // After an abort the pipeline only winds down (its rollback attempts are stopped); not news.
    if (a.signal?.aborted) return;
    if (event.type === "analysis") flushLog();
    a.report(event);
    // The split the services serve, per stretch of weights the stack holds.
    if (event.type === "update" && event.phase === "started")
      split?.changing(supervisor.servedSoFar());
    if (event.type === "weights")
      split?.held(
        { blue: event.blue, green: event.green },
        event.verified,
        supervisor.servedSoFar(),
      );
    // Right after an update the Deployments are new: follow them now rather than at the next poll.
    if (event.type === "update" && event.phase === "succeeded")
      void supervisor.sync().catch(() => {});
  };

  const out: RehearsedRelease[] = [];
  const log = ReleaseLog.forStage(stage.logDir, stage.stage);
  // The pipeline reports an analysis when it ends; its looks are in the release log meanwhile.
  let seen = 0;
  const followLog = () => {
    for (const r of log.readAll().filter((r) => r.seq > seen)) {
      seen = r.seq;
      if (r.event === "analysis.measured") say(`${tag} ${describeLook(r)}`);
    }
  };
  flushLog = followLog;
  const follow = setInterval(followLog, 500);
  a.stops.push(async () => clearInterval(follow));
  const runRelease = async (
    version: string,
    image: Artifact,
    expected: RehearsedRelease["expected"],
    imageFaults?: Record<string, string>,
  ) => {
    say(`${tag} ── release ${version} (expected: ${OUTCOMES[expected].word}) ──`);
    const tally = load.startTally();
    const checksBefore = sink.checks.length;
    const messagesBefore = sink.messages.length;
    // The candidate is the slot that is not stable when the release starts.
    split = new SplitRecorder(
      otherSlot(readStageConfig(stage.projectDir, stage.stage).traffic.stable),
    );
    const call = release({
      stage: stage.stage,
      projectDir: stage.projectDir,
      backendUrl: stage.backendUrl,
      logDir: stage.logDir,
      image: image.image,
      version,
      revision,
      prometheusUrl: prometheus.url,
      ...(live ? { smokeUrl: live.gatewayUrl } : {}),
      metrics,
      report: pipelineReport,
      sleep: abortableSleep(a.signal),
      // ts-node's type check takes most of each update's time here (8-10 s of ~15 s measured on
      // 2 cores); the program is type-checked by `npm run typecheck` and `npm test` instead.
      env: { PULUMI_NODEJS_TRANSPILE_ONLY: "true" },
    });
    a.inflight.release = call;
    const result = await call.finally(() => load.endTally());
    // After an abort the caller has moved on; this call only wound down.
    if (a.signal?.aborted) throw new RehearsalAborted("rehearsal interrupted");
    const steps = await split.finish(supervisor.servedSoFar());
    const entry: RehearsedRelease = {
      runtime,
      version,
      expected,
      result,
      load: tally,
      steps,
      acceptance: sink.checks.slice(checksBefore),
      notifications: sink.messages.slice(messagesBefore),
    };
    out.push(entry);
    for (const c of entry.acceptance!)
      say(
        `${tag} acceptance hook: candidate ${c.slot} /version through the tester header → ${c.status} (${c.answered?.slot ?? "-"} ${c.answered?.version ?? "-"}): ${c.ok ? "passed" : "FAILED"}`,
      );
    say(`${tag} notification sink: ${entry.notifications!.length} messages received`);
    const l = tally.total;
    say(
      `${tag} load during the release: ${l.sent} sent, ${l.ok} 2xx, ${l.serverErrors} 5xx${l.serverErrors ? ` (${describeServerErrors(l, tally.since ?? 0)} after it began)` : ""}, ${l.otherStatus} other, ${l.failed} without answer`,
    );
    if (result.releaseId) {
      // Let the last scrapes land so the chart covers the end of the release.
      await new Promise((r) => setTimeout(r, 2000));
      try {
        const written = await writeReleaseReport({
          records: log.forRelease(result.releaseId),
          prometheusUrl: prometheus.url,
          service,
          runtime,
          dir: join(a.outDir, "reports"),
          load: entry.load,
          steps,
          faults: imageFaults,
          weightChanges: supervisor.weightHistory,
          throughGateway: !!live,
        });
        entry.facts = written.facts;
        entry.reportFile = join(a.outDir, "reports", `${result.releaseId}.md`);
        entry.chartFile = join(a.outDir, "reports", `${result.releaseId}.svg`);
        say(`${tag} report: ${entry.reportFile} (+ .svg)`);
      } catch (err) {
        say(`${tag} report for ${result.releaseId} failed: ${(err as Error).message}`);
        try {
          entry.facts = releaseFacts(log.forRelease(result.releaseId));
        } catch {
          // No facts without a release.started record.
        }
      }
    }
    return entry;
  };

  // The first release finds the stage undeployed and bootstraps it (1.0.0 in blue); the blue
  // process starts from that render. The idle slot's scrape target stays down until a release
  // deploys into it.
  const good = await runRelease(VERSIONS.good, images.good, "promoted");
  if (good.result.outcome !== "promoted") {
    say(`${tag} the good release ended ${good.result.outcome}; the bad one is not attempted`);
    return out;
  }
  await runRelease(VERSIONS.bad, images.bad, "rolledBack", faults);
  return out;
}

/** One line per analysis measurement: its verdict and the data behind it. */
function describeLook(r: LogRecord): string {
  const f = (r.figures ?? {}) as {
    measurement?: number;
    metrics?: any[];
    error?: { message: string };
  };
  if (f.error) return `analysis look ${f.measurement}: provider error: ${f.error.message}`;
  const parts = (f.metrics ?? []).map((m) =>
    m.type === "ratio"
      ? `${m.name} ${m.canary?.bad ?? "–"}/${m.canary?.n ?? "–"} vs ${m.baseline?.bad ?? "–"}/${m.baseline?.n ?? "–"} ${m.verdict}`
      : `${m.name} ${m.canary?.n ?? 0} values ${m.verdict}`,
  );
  return `analysis look ${f.measurement}: ${r.verdict ?? "error"} (candidate vs stable: ${parts.join("; ")})`;
}

/** The pipeline's pauses and analysis intervals, cut short by an abort. */
function abortableSleep(signal: AbortSignal | undefined): (ms: number) => Promise<void> {
  return (ms) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new RehearsalAborted("rehearsal interrupted"));
      const onAbort = () => {
        clearTimeout(timer);
        reject(new RehearsalAborted("rehearsal interrupted"));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
}

function supervisorLine(
  e: SupervisorEvent,
  tag: string,
  say: (m: string) => void,
  live: boolean,
): void {
  switch (e.type) {
    case "started":
      say(
        `${tag} slot ${e.slot}: started ${e.version} on ${e.address} (pid ${e.pid}, image ${short(e.image.split("@")[1]!)}${
          Object.keys(e.env).length
            ? `, image env ${Object.entries(e.env)
                .map(([k, v]) => `${k}=${v}`)
                .join(" ")}`
            : ""
        })`,
      );
      break;
    case "stopped":
      say(`${tag} slot ${e.slot}: stopped ${e.version} (pid ${e.pid}, ${e.why})`);
      break;
    case "exited":
      say(
        `${tag} slot ${e.slot}: ${e.version} exited unexpectedly (pid ${e.pid}, code ${e.code}); restarting at the next poll`,
      );
      break;
    case "weights":
      say(
        `${tag} HTTPRoute now blue ${e.weights.blue}% / green ${e.weights.green}% (${live ? "read from the API server" : "rendered"})`,
      );
      break;
    case "error":
      say(`${tag} ${e.message}`);
      break;
  }
}

/** Deletes a namespace and waits until it is gone (its objects with it). */
async function deleteNamespace(
  kube: KubeClient,
  namespace: string,
  say: (m: string) => void,
  tag: string,
): Promise<void> {
  const path = `/api/v1/namespaces/${namespace}`;
  try {
    await kube.delete(path);
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 404) return;
    throw err;
  }
  say(`${tag} namespace ${namespace}: left from an earlier run; deleting it first`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await kube.get(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return;
      throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`namespace ${namespace} is still terminating after 120 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const short = (digest: string) => `${digest.replace(/^sha256:/, "sha256:").slice(0, 19)}…`;

function gitRevision(repo: string): string {
  const r = spawnSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" });
  const sha = r.stdout?.trim();
  return r.status === 0 && /^[0-9a-f]{40}$/.test(sha)
    ? sha
    : "0000000000000000000000000000000000000000";
}

/** scripts/build-services.sh for one runtime; its stderr lines are progress, its stdout `sha256  path`. */
export function buildService(
  repo: string,
  runtime: Runtime,
  progress: (line: string) => void,
): Promise<Built> {
  const script = join(repo, "scripts", "build-services.sh");
  if (!existsSync(script)) return Promise.reject(new Error(`${script} is missing`));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script, "--service", runtime], {
      cwd: repo,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      const lines = stderr.split("\n");
      stderr = lines.pop()!;
      for (const l of lines) if (l.trim()) progress(l.replace(/^build-services: /, "build: "));
    });
    child.on("error", reject);
    // "close", not "exit": the digest line may still be in the stdout pipe when the process exits.
    child.on("close", (code) => {
      if (stderr.trim()) progress(stderr.trim());
      const line = stdout.split("\n").find((l) => /^[0-9a-f]{64}\s+\S/.test(l));
      if (code !== 0 || !line)
        return reject(
          new Error(`scripts/build-services.sh --service ${runtime} failed (exit ${code})`),
        );
      const [digest, path] = line.split(/\s+/);
      resolve({ digest: `sha256:${digest}`, path: path! });
    });
  });
}
