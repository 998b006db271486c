/**
 * npm run bench:program [-- --baseline <checkout>] [-- --rounds N]
 *
 * Evaluates the stage program under Pulumi mocks with 1, 10 and 50 services in one stack, on
 * the Kubernetes stage (local) and the AWS stage (staging), and prints wall time, resources,
 * peak heap growth and the 50/1 growth per service.
 *
 * With `--baseline <checkout>` (an earlier commit, node_modules may be a symlink): the same
 * benchmark of that checkout and of this one, each in a fresh Node process, alternated for
 * `--rounds` rounds (2), the best of each printed side by side with the ratio now/baseline.
 * A benchmark: it prints, it asserts nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
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
  // The stack file is read once per stack (by the CLI, not the program), so outside the timing.
  const stackFile = stackConfig(platformStage);
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let peak = heapBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 5);
  const start = performance.now();
  const stages: ServiceStage[] = [];
  for (let i = 0; i < services; i++) {
    const raw = structuredClone(stackFile) as any;
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

type Rows = Record<string, Record<number, { ms: number; resources: number; heapMiB: number }>>;

/** Runs the benchmark of checkout `dir` in a fresh Node and reads its tables. */
function runChild(dir: string): Rows {
  const out = execFileSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", join(dir, "bench", "program.ts")],
    { cwd: dir, encoding: "utf8", maxBuffer: 16 * 2 ** 20 },
  );
  const rows: Rows = {};
  let platform: string | undefined;
  for (const line of out.split("\n")) {
    const head = /^(local|staging) \((kubernetes|aws)\)/.exec(line);
    if (head) platform = head[2]!;
    const row = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+(-?[\d.]+)\s*$/.exec(line);
    if (row && platform)
      (rows[platform] ??= {})[Number(row[1])] = {
        resources: Number(row[2]),
        ms: Number(row[3]),
        heapMiB: Number(row[4]),
      };
  }
  return rows;
}

function compare(baselineDir: string, rounds: number) {
  const best = (runs: Rows[]): Rows => {
    const out: Rows = {};
    for (const r of runs)
      for (const [p, byN] of Object.entries(r))
        for (const [n, v] of Object.entries(byN)) {
          const cur = (out[p] ??= {})[Number(n)];
          if (!cur || v.ms < cur.ms) out[p]![Number(n)] = v;
        }
    return out;
  };
  const base: Rows[] = [];
  const now: Rows[] = [];
  for (let i = 1; i <= rounds; i++) {
    base.push(runChild(baselineDir));
    now.push(runChild(resolve(__dirname, "..")));
    console.log(`round ${i} of ${rounds} done`);
  }
  const b = best(base);
  const n = best(now);
  console.log(`\nbest of ${rounds} fresh processes each, alternated; baseline ${baselineDir}`);
  for (const platform of ["kubernetes", "aws"]) {
    console.log(`\n${platform}, program evaluation under mocks`);
    console.log(
      "services  resources  now ms  baseline ms  now/baseline  now ms/service  heap MiB now/baseline",
    );
    for (const s of [1, 10, 50]) {
      const x = n[platform]?.[s];
      const y = b[platform]?.[s];
      if (!x || !y) continue;
      console.log(
        `${String(s).padStart(8)}  ${String(x.resources).padStart(9)}  ${String(x.ms).padStart(6)}  ${String(y.ms).padStart(11)}  ${(x.ms / y.ms).toFixed(2).padStart(11)}x  ${(x.ms / s).toFixed(1).padStart(14)}  ${x.heapMiB.toFixed(0).padStart(9)}/${y.heapMiB.toFixed(0)}`,
      );
    }
    const x1 = n[platform]?.[1];
    const x50 = n[platform]?.[50];
    if (x1 && x50)
      console.log(
        `50/1 growth per service now: ${(x50.ms / 50 / x1.ms).toFixed(2)}x (1.0 = linear)`,
      );
  }
}

async function main() {
  const option = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const baseline = option("--baseline");
  if (baseline) {
    compare(resolve(baseline), Number(option("--rounds") ?? 2));
    return;
  }
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
