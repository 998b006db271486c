/**
 * npm run bench:engine — median of 5 canary-step `up`s of the local stage on the
 * real engine, split into engine start (call → first engine event), program
 * evaluation (first event → last resource registered) and provider time (the
 * routing rule's pre → outputs events), in render mode and on the live local
 * cluster (started for the run in its own state directory), with the ratios
 * cluster / render. Prints figures; asserts nothing.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { clusterDown, clusterUp } from "../src/cluster";
import { StageStack } from "../src/pipeline/stack";
import { scratchProject, toCluster } from "../test/engine/support/project";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Figures {
  total: number;
  start: number;
  program: number;
  provider: number;
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
  const row = (label: string, k: keyof Figures, note = "") =>
    console.log(
      `  ${label.padEnd(17)} ${render[k].toFixed(0).padStart(6)} ms ${cluster[k].toFixed(0).padStart(8)} ms ${(cluster[k] / render[k]).toFixed(2).padStart(7)}x   ${note}`,
    );
  console.log("\ncanary-step `up` on the real engine (local stage), median of 5, one run:");
  console.log(
    `  ${"".padEnd(17)} ${"render".padStart(9)} ${"cluster".padStart(11)} ${"ratio".padStart(8)}`,
  );
  row("total", "total");
  row("engine start", "start", "(call → first engine event)");
  row("program eval", "program", "(first event → last resource registered)");
  row(
    "provider (route)",
    "provider",
    "(HTTPRoute pre → outputs: render writes a file, cluster PATCHes the API)",
  );
}

async function measure(mode: "render" | "cluster", kubeconfig?: string): Promise<Figures> {
  const project = scratchProject("bench", { local: mode });
  if (kubeconfig) project.editStack("local", toCluster(kubeconfig));
  try {
    const stack = await StageStack.open({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      env: project.env,
    });
    await stack.up("baseline");
    const rows: { total: number; start: number; program: number; provider: number }[] = [];
    for (let i = 1; i <= 5; i++) {
      project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = i * 10));
      const events: { at: number; e: EngineEvent }[] = [];
      const t0 = performance.now();
      await stack.stack.up({
        color: "never",
        message: `bench step ${i}`,
        onEvent: (e) => events.push({ at: performance.now(), e }),
      });
      const total = performance.now() - t0;
      const first = events[0]?.at ?? t0;
      const pre = events.filter((x) => x.e.resourcePreEvent);
      const lastRegistered = pre.at(-1)?.at ?? first;
      const routePre = pre.find((x) => x.e.resourcePreEvent!.metadata.type.includes("HTTPRoute"));
      const routeDone = events.find((x) =>
        x.e.resOutputsEvent?.metadata.type.includes("HTTPRoute"),
      );
      rows.push({
        total,
        start: first - t0,
        program: lastRegistered - first,
        provider: routePre && routeDone ? routeDone.at - routePre.at : NaN,
      });
      console.log(`${mode} step ${i}: total ${total.toFixed(0)} ms`);
    }
    return {
      total: median(rows.map((r) => r.total)),
      start: median(rows.map((r) => r.start)),
      program: median(rows.map((r) => r.program)),
      provider: median(rows.map((r) => r.provider)),
    };
  } finally {
    project.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
