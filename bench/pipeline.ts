/**
 * npm run bench:pipeline — per canary step, the pipeline's wall time divided by
 * a bare `pulumi up` of the same config change on the same stack (median of 5
 * each), and the rollback latency from verdict to update complete; in render
 * mode and on the live local cluster (started for the run in its own state
 * directory; the read-back is then a GET from the API server), one run, with
 * the ratios cluster / render.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { MetricInputs } from "../src/analysis/run";
import { clusterDown, clusterUp } from "../src/cluster";
import { release, type PipelineEvent } from "../src/pipeline/release";
import { StageStack } from "../src/pipeline/stack";
import { scratchProject, toCluster } from "../test/engine/support/project";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const digest = (n: number) => `registry.local/checkout@sha256:${n.toString(16).padStart(64, "0")}`;

interface Figures {
  bare: number;
  step: number;
  rollback: number;
}

async function main() {
  const render = await measure("render");
  const stateDir = mkdtempSync(join(tmpdir(), "slipway-bench-cluster-"));
  let cluster: Figures;
  try {
    const info = await clusterUp({ projectDir: join(__dirname, ".."), stateDir });
    cluster = await measure("cluster", info.kubeconfig);
  } finally {
    await clusterDown({ projectDir: join(__dirname, ".."), stateDir }).catch(() => {});
    rmSync(stateDir, { recursive: true, force: true });
  }
  const row = (label: string, r: number, c: number, unit = " ms") =>
    console.log(
      `  ${label.padEnd(40)} ${r.toFixed(unit ? 0 : 2).padStart(7)}${unit} ${c.toFixed(unit ? 0 : 2).padStart(9)}${unit} ${(c / r).toFixed(2).padStart(7)}x`,
    );
  console.log("\nper canary step, median of 5 (local stage, real engine), one run:");
  console.log(
    `  ${"".padEnd(40)} ${"render".padStart(10)} ${"cluster".padStart(12)} ${"ratio".padStart(8)}`,
  );
  row("bare pulumi up of the weight change", render.bare, cluster.bare);
  row("pipeline step (update + verification)", render.step, cluster.step);
  row("ratio pipeline / bare", render.step / render.bare, cluster.step / cluster.bare, "x");
  row("rollback, verdict → update complete", render.rollback, cluster.rollback);
}

async function measure(mode: "render" | "cluster", kubeconfig?: string): Promise<Figures> {
  const project = scratchProject("bench", { local: mode });
  if (kubeconfig) project.editStack("local", toCluster(kubeconfig));
  process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
  const base = {
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: project.env,
  };
  try {
    const stack = await StageStack.open(base);
    await stack.up("baseline");

    // Bare `pulumi up` of a weight change.
    const bare: number[] = [];
    for (let i = 1; i <= 5; i++) {
      project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = i * 5));
      const t0 = performance.now();
      await stack.up(`bare step ${i}`);
      bare.push(performance.now() - t0);
    }
    project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 0));
    await stack.up("reset");

    // The pipeline: five setWeight steps; time from "update started" of a step to its verified weights.
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [10, 20, 30, 40, 50].map((w) => ({ setWeight: w })),
        scaleDownDelaySeconds: 0,
        analysis: { count: 1, interval: 1 },
      };
    });
    const stepTimes: number[] = [];
    let stepStart = 0;
    const onStep = (e: PipelineEvent) => {
      if (e.type === "update" && e.phase === "started" && e.message.includes("setWeight"))
        stepStart = performance.now();
      if (e.type === "weights" && stepStart) {
        stepTimes.push(performance.now() - stepStart);
        stepStart = 0;
      }
    };
    const good = await release({ ...base, image: digest(1), version: "b1", report: onStep });
    if (good.outcome !== "promoted")
      throw new Error(`bench release ended ${good.outcome}: ${good.reason}`);

    // Rollback latency: verdict (analysis fail) → rollback update complete.
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [{ setWeight: 20 }, { analysis: {} }],
        scaleDownDelaySeconds: 0,
        analysis: { count: 1, interval: 1, minSamples: 50 },
      };
    });
    let verdictAt = 0;
    let rolledBackAt = 0;
    const bad = await release({
      ...base,
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
    if (bad.outcome !== "rolledBack") throw new Error(`bench bad release ended ${bad.outcome}`);

    const b = median(bare);
    const p = median(stepTimes);
    console.log(
      `${mode}: bare ${b.toFixed(0)} ms, pipeline step ${p.toFixed(0)} ms (${(p / b).toFixed(2)}x), rollback ${(rolledBackAt - verdictAt).toFixed(0)} ms`,
    );
    return { bare: b, step: p, rollback: rolledBackAt - verdictAt };
  } finally {
    project.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
