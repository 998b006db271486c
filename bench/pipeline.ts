/**
 * npm run bench:pipeline — per canary step, the pipeline's wall time next to a bare
 * `pulumi up` of the same config change on the same stack (median of 5 each), and the
 * rollback latency from verdict to update complete; in render mode and on the live local
 * cluster (started for the run in its own state directory; the read-back is then a GET from
 * the API server), side by side in one run, with the ratios cluster / render.
 *
 * The two stages' runs are interleaved (bare up render, bare up cluster, …; then the good
 * release on each, then the bad release on each), so load on the shared machine falls on
 * both alike. A third rig, render mode with the release store on a real S3 server (moto,
 * loopback) instead of files, gives the store's overhead per step: the cycle from one step's
 * update to the next (fence, records, update, read-back), S3 store next to file store.
 * Prints figures; asserts nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { MetricInputs } from "../src/analysis/run";
import { clusterDown, clusterUp } from "../src/cluster";
import { release } from "../src/pipeline/release";
import type { PipelineEvent } from "../src/domain";
import { StageStack } from "../src/pipeline/stack";
import { scratchProject, toCluster, type ScratchProject } from "../test/engine/support/project";
import { startS3, type S3Server } from "../test/support/s3Server";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const digest = (n: number) => `registry.local/checkout@sha256:${n.toString(16).padStart(64, "0")}`;
const BARE_RUNS = 5;

type Mode = "render" | "cluster" | "render+s3";

interface Rig {
  mode: Mode;
  project: ScratchProject;
  base: {
    stage: string;
    projectDir: string;
    backendUrl: string;
    logDir: string;
    env: Record<string, string>;
    store?: string;
  };
  stack: StageStack;
  bare: number[];
  steps: number[];
  /** From one setWeight update's start to the next's: everything a step costs. */
  cycles: number[];
  rollback: number;
}

async function main() {
  const projectDir = join(__dirname, "..");
  const stateDir = mkdtempSync(join(tmpdir(), "slipway-bench-cluster-"));
  const rigs: Rig[] = [];
  let s3: S3Server | undefined;
  try {
    const info = await clusterUp({ projectDir, stateDir });
    s3 = await startS3("slipway-bench");
    Object.assign(process.env, s3.env);
    rigs.push(
      await rig("render"),
      await rig("cluster", info.kubeconfig),
      await rig("render+s3", undefined, s3.url("bench")),
    );

    // Bare `pulumi up` of a weight change, alternating between the stages.
    for (let i = 1; i <= BARE_RUNS; i++)
      for (const r of rigs) {
        r.project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = i * 5));
        const t0 = performance.now();
        await r.stack.up(`bare step ${i}`);
        r.bare.push(performance.now() - t0);
      }
    for (const r of rigs) {
      r.project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 0));
      await r.stack.up("reset");
    }
    // The pipeline: five setWeight steps, from "update started" of a step to its verified weights.
    for (const r of rigs) await goodRelease(r);
    // Rollback latency: verdict (analysis fail) → rollback update complete.
    for (const r of rigs) await badRelease(r);
  } finally {
    for (const r of rigs) r.project.cleanup();
    await s3?.stop();
    await clusterDown({ projectDir, stateDir }).catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  }

  const [render, cluster] = rigs.map((r) => ({
    bare: median(r.bare),
    step: median(r.steps),
    rollback: r.rollback,
  }));
  for (const r of rigs)
    console.log(
      `${r.mode}: bare ups ${r.bare.map((t) => t.toFixed(0)).join(", ")} ms; pipeline steps ${r.steps.map((t) => t.toFixed(0)).join(", ")} ms; rollback ${r.rollback.toFixed(0)} ms`,
    );
  const row = (label: string, rv: number, cv: number, unit: " ms" | "x" = " ms") => {
    const d = unit === " ms" ? 0 : 2;
    console.log(
      `  ${label.padEnd(40)} ${(rv.toFixed(d) + unit).padStart(10)} ${(cv.toFixed(d) + unit).padStart(12)} ${((cv / rv).toFixed(2) + "x").padStart(8)}`,
    );
  };
  console.log(
    `\nper canary step, median of ${BARE_RUNS} (local stage, real engine), interleaved in one run:`,
  );
  console.log(
    `  ${"".padEnd(40)} ${"render".padStart(10)} ${"cluster".padStart(12)} ${"cluster/render".padStart(8)}`,
  );
  row("bare pulumi up of the weight change", render!.bare, cluster!.bare);
  row("pipeline step (update + verification)", render!.step, cluster!.step);
  row("ratio pipeline / bare", render!.step / render!.bare, cluster!.step / cluster!.bare, "x");
  row("rollback, verdict → update complete", render!.rollback, cluster!.rollback);

  const [files, s3rig] = [rigs[0]!, rigs[2]!];
  const cycle = (r: Rig) => median(r.cycles);
  console.log(
    `\nrelease store, per canary step (render mode; median of ${files.cycles.length} step cycles: fence, records, update, read-back):`,
  );
  console.log(
    `  ${"".padEnd(40)} ${"file".padStart(10)} ${"s3 (moto)".padStart(12)} ${"s3/file".padStart(8)}`,
  );
  row("step cycle", cycle(files), cycle(s3rig));
  console.log(
    `  the S3 store's overhead per step: ${(cycle(s3rig) - cycle(files)).toFixed(0)} ms, ${(((cycle(s3rig) - cycle(files)) / cycle(files)) * 100).toFixed(1)}% of a step`,
  );
}

async function rig(mode: Mode, kubeconfig?: string, store?: string): Promise<Rig> {
  const project = scratchProject(`bench-${mode.replace("+", "-")}`, {
    local: mode === "cluster" ? "cluster" : "render",
  });
  if (kubeconfig) project.editStack("local", toCluster(kubeconfig));
  process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
  const base = {
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: project.env,
    ...(store ? { store } : {}),
  };
  const stack = await StageStack.open(base);
  await stack.up("baseline");
  return { mode, project, base, stack, bare: [], steps: [], cycles: [], rollback: NaN };
}

async function goodRelease(r: Rig): Promise<void> {
  r.project.editStack("local", (c) => {
    c["slipway:canary"] = {
      steps: [10, 20, 30, 40, 50].map((w) => ({ setWeight: w })),
      scaleDownDelaySeconds: 0,
      analysis: { count: 1, interval: 1 },
    };
  });
  let stepStart = 0;
  let lastStart = 0;
  const onStep = (e: PipelineEvent) => {
    if (e.type === "update" && e.phase === "started" && e.message.includes("setWeight")) {
      stepStart = performance.now();
      if (lastStart) r.cycles.push(stepStart - lastStart);
      lastStart = stepStart;
    }
    if (e.type === "weights" && stepStart) {
      r.steps.push(performance.now() - stepStart);
      stepStart = 0;
    }
  };
  const good = await release({ ...r.base, image: digest(1), version: "b1", report: onStep });
  if (good.outcome !== "promoted")
    throw new Error(`${r.mode}: bench release ended ${good.outcome}: ${good.reason}`);
}

async function badRelease(r: Rig): Promise<void> {
  r.project.editStack("local", (c) => {
    c["slipway:canary"] = {
      steps: [{ setWeight: 20 }, { analysis: {} }],
      scaleDownDelaySeconds: 0,
      analysis: { count: 1, interval: 1, minSamples: 50 },
    };
  });
  let verdictAt = 0;
  let rolledBackAt = 0;
  const bad = await release({
    ...r.base,
    image: digest(2),
    version: "b2",
    metrics: () => async (): Promise<MetricInputs> => ({
      errors: { baseline: { bad: 5, total: 5000 }, canary: { bad: 300, total: 1000 } },
      latency: {
        baseline: Array.from({ length: 50 }, (_, i) => 20 + (i % 5)),
        canary: Array.from({ length: 50 }, (_, i) => 20 + (i % 5)),
      },
    }),
    report: (e) => {
      if (e.type === "analysis" && e.verdict === "fail") verdictAt = performance.now();
      if (e.type === "update" && e.phase === "succeeded" && e.message.includes("roll back"))
        rolledBackAt = performance.now();
    },
  });
  if (bad.outcome !== "rolledBack")
    throw new Error(`${r.mode}: bench bad release ended ${bad.outcome}`);
  r.rollback = rolledBackAt - verdictAt;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
