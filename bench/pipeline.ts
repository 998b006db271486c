/**
 * npm run bench:pipeline — per canary step, the pipeline's wall time divided by
 * a bare `pulumi up` of the same config change on the same stack (median of 5
 * each, one run), and the rollback latency from verdict to update complete.
 */
import { performance } from "node:perf_hooks";
import type { MetricInputs } from "../src/analysis/run";
import { release, type PipelineEvent } from "../src/pipeline/release";
import { StageStack } from "../src/pipeline/stack";
import { scratchProject } from "../test/engine/support/project";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const digest = (n: number) => `registry.local/checkout@sha256:${n.toString(16).padStart(64, "0")}`;

async function main() {
  const project = scratchProject("bench");
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
    console.log("\nper canary step, median of 5 (local stage, real engine):");
    console.log(`  bare pulumi up of the weight change   ${b.toFixed(0)} ms`);
    console.log(`  pipeline step (update + verification) ${p.toFixed(0)} ms`);
    console.log(`  ratio pipeline / bare                 ${(p / b).toFixed(2)}x`);
    console.log(
      `rollback latency, verdict → rollback update complete: ${(rolledBackAt - verdictAt).toFixed(0)} ms (${((rolledBackAt - verdictAt) / b).toFixed(2)}x a bare step)`,
    );
  } finally {
    project.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
