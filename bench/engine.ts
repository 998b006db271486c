/**
 * npm run bench:engine — median of 5 canary-step `up`s of the local stage on the
 * real engine, split into engine start (call → first engine event), program
 * evaluation (first event → last resource registered) and provider time (the
 * routing rule's pre → outputs events). Prints figures; asserts nothing.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { performance } from "node:perf_hooks";
import { StageStack } from "../src/pipeline/stack";
import { scratchProject } from "../test/engine/support/project";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const project = scratchProject("bench");
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
      console.log(`step ${i}: total ${total.toFixed(0)} ms`);
    }
    console.log("\ncanary-step `up` on the real engine (local stage, render mode), median of 5:");
    console.log(`  total             ${median(rows.map((r) => r.total)).toFixed(0)} ms`);
    console.log(
      `  engine start      ${median(rows.map((r) => r.start)).toFixed(0)} ms   (call → first engine event)`,
    );
    console.log(
      `  program eval      ${median(rows.map((r) => r.program)).toFixed(0)} ms   (first event → last resource registered)`,
    );
    console.log(
      `  provider (route)  ${median(rows.map((r) => r.provider)).toFixed(0)} ms   (HTTPRoute pre → outputs)`,
    );
  } finally {
    project.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
