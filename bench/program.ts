/**
 * npm run bench:program — evaluates the stage program under Pulumi mocks with
 * 1, 10 and 50 services in one stack, and prints wall time, peak memory and the
 * 50/1 growth per service. A benchmark: it prints, it asserts nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { performance } from "node:perf_hooks";
import { backEnds, ServiceStage } from "../components";
import { parseStageConfig } from "../src/config/load";
import { stackConfig } from "../test/unit/support/harness";

async function evaluate(
  platformStage: string,
  services: number,
): Promise<{ ms: number; resources: number; heapMiB: number }> {
  let resources = 0;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        resources++;
        return {
          id: `${args.name}-id`,
          state: { ...args.inputs, arn: `arn:aws:mock::123456789012:${args.name}` },
        };
      },
      call: (args) => ({ ...args.inputs, dnsName: "alb.example.com" }),
    },
    "slipway",
    platformStage,
    false,
  );
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let peak = heapBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
  const start = performance.now();
  const stages: ServiceStage[] = [];
  for (let i = 0; i < services; i++) {
    const raw = structuredClone(stackConfig(platformStage)) as any;
    raw.service.name = `svc${i}`;
    if (raw.aws) raw.aws.rulePriority = 100 + 2 * i;
    const config = parseStageConfig(raw, platformStage);
    stages.push(new ServiceStage(raw.service.name, { config, backEnd: backEnds[config.platform] }));
  }
  await Promise.all(
    stages.map((s) =>
      (pulumi.all(s.outputs as Record<string, pulumi.Output<unknown>>) as any).promise(),
    ),
  );
  const ms = performance.now() - start;
  // Drain the mock monitor's queue before the next run replaces it.
  await pulumi.runtime.disconnect();
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  return { ms, resources, heapMiB: (peak - heapBefore) / 2 ** 20 };
}

async function main() {
  for (const stage of ["local", "staging"]) {
    const rows: Record<number, { ms: number; resources: number; heapMiB: number }> = {};
    for (const n of [1, 10, 50]) rows[n] = await evaluate(stage, n);
    console.log(
      `\n${stage} (${stage === "local" ? "kubernetes" : "aws"}), program evaluation under mocks`,
    );
    console.log("services  resources  wall ms  ms/service  peak heap growth MiB");
    for (const n of [1, 10, 50]) {
      const r = rows[n]!;
      console.log(
        `${String(n).padStart(8)}  ${String(r.resources).padStart(9)}  ${r.ms.toFixed(0).padStart(7)}  ${(r.ms / n).toFixed(1).padStart(10)}  ${r.heapMiB.toFixed(1).padStart(20)}`,
      );
    }
    const perService1 = rows[1]!.ms;
    const perService50 = rows[50]!.ms / 50;
    console.log(
      `50/1 growth per service: ${(perService50 / perService1).toFixed(2)}x (1.0 = linear; below 1 = warm-up amortised)`,
    );
  }
  console.log(`peak RSS of the whole run: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
