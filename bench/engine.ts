/**
 * npm run bench:engine [-- --cluster] [-- --baseline [label=]<dir> …] [-- --steps N]
 *
 * A canary step against the engine's own floor, side by side in one run:
 *  - floor: a minimal Pulumi program (one Kubernetes ConfigMap whose data changes each run,
 *    precompiled like the stage's program, the same language host, CLI, `file://` backend,
 *    passphrase and Kubernetes provider mode) updated through the same Automation API adapter
 *    (StageStack.up);
 *  - step: the local stage's canary step (canaryWeight changed, StageStack.up), what each
 *    step and rollback of a release costs (a rollback is the same one update);
 *  - hand-run floor and hand-run step (render mode): what a platform engineer's own
 *    `pulumi up --stack local --yes --skip-preview` costs in a project `slipway init` wrote
 *    (the package packed once per run and installed as test/engine/init.test.ts installs it;
 *    the plain CLI, no run path, no Automation API: the Node.js host's ts-node runs index.ts),
 *    bootstrapped as its README says (the tester header's secret set, then `pulumi up`), each
 *    run changing slipway:traffic.canaryWeight as a canary step does; against the same
 *    floor program run the same way (the init'ed project's tsconfig.json, plain CLI), so that
 *    the ratio compares like with like;
 *  - baselines (each `--baseline [label=]<dir>`, a checkout of an earlier commit; its
 *    node_modules may be a symlink): the same step with that checkout's program and adapter.
 *    Give them oldest first to see what each commit changed: each row's ratio to the row
 *    before it is printed.
 * The runs are interleaved (floor, step, baselines, floor, …) so load on the shared machine
 * falls on all of them alike; medians and the ratio step / floor are printed for render mode
 * and, with `--cluster`, on the live local cluster (started for the run in its own state
 * directory). Prints figures; asserts nothing.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseDocument } from "yaml";
import { clusterDown, clusterUp } from "../src/cluster";
import { StageStack } from "../src/pipeline/stack";
import { YAML_WRITE } from "../src/pipeline/stackFile";
import * as support from "../test/engine/support/project";
import { installPackedPackage } from "../test/support/packedPackage";

const REPO = join(__dirname, "..");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Updater {
  label: string;
  /** One measured update; `i` is the run's index (each run changes one input). */
  step(i: number): Promise<number>;
  cleanup(): void;
}

function args(name: string): string[] {
  return process.argv.flatMap((a, i) =>
    a === name && process.argv[i + 1] ? [process.argv[i + 1]!] : [],
  );
}

/** The first value given for a flag. */
const arg = (name: string): string | undefined => args(name)[0];

interface Baseline {
  label: string;
  dir: string;
}

const FLOOR_PULUMI_YAML =
  "name: floor\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: index.ts\n";
const FLOOR_PROGRAM = [
  'import * as k8s from "@pulumi/kubernetes";',
  'import * as pulumi from "@pulumi/pulumi";',
  "const config = new pulumi.Config();",
  'const kubeconfig = config.get("kubeconfig");',
  'const provider = new k8s.Provider("floor", kubeconfig ? { kubeconfig } : { renderYamlToDirectory: "rendered" });',
  "new k8s.core.v1.ConfigMap(",
  '  "floor",',
  '  { metadata: { name: "floor", namespace: "default" }, data: { value: config.require("value") } },',
  "  { provider },",
  ");",
  "",
].join("\n");

/** The floor: one ConfigMap, same toolchain and provider mode as the stage. */
async function floor(mode: "render" | "cluster", kubeconfig?: string): Promise<Updater> {
  const root = mkdtempSync(join(tmpdir(), "slipway-bench-floor-"));
  const dir = join(root, "project");
  mkdirSync(dir);
  mkdirSync(join(root, "state"));
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  cpSync(join(REPO, "tsconfig.json"), join(dir, "tsconfig.json"));
  // Precompiled as the stage's program is (bin/program-build.js; StageStack.open builds it).
  cpSync(join(REPO, "tsconfig.build.json"), join(dir, "tsconfig.build.json"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "floor", main: "index.ts" }));
  writeFileSync(join(dir, "Pulumi.yaml"), FLOOR_PULUMI_YAML);
  writeFileSync(join(dir, "index.ts"), FLOOR_PROGRAM);
  const writeValue = (value: string) =>
    writeFileSync(
      join(dir, "Pulumi.floor.yaml"),
      `config:\n  floor:value: "${value}"\n` +
        (mode === "cluster" ? `  floor:kubeconfig: ${JSON.stringify(kubeconfig)}\n` : ""),
    );
  writeValue("0");
  const stack = await StageStack.open({
    stage: "floor",
    projectDir: dir,
    backendUrl: `file://${join(root, "state")}`,
    env: { PULUMI_CONFIG_PASSPHRASE: support.PASSPHRASE },
  });
  await stack.up("floor baseline");
  return {
    label: "floor",
    async step(i) {
      writeValue(String(i));
      const t0 = performance.now();
      await stack.up(`floor run ${i}`);
      return performance.now() - t0;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The local stage's canary step, with the program and adapter of checkout `root`. */
async function canaryStep(
  label: string,
  root: string,
  mode: "render" | "cluster",
  kubeconfig?: string,
): Promise<Updater> {
  const project: typeof support = await import(join(root, "test/engine/support/project.ts"));
  const { StageStack: Adapter }: { StageStack: typeof StageStack } = await import(
    join(root, "src/pipeline/stack.ts")
  );
  const scratch = project.scratchProject(`bench-${label}`, { local: mode });
  if (kubeconfig) scratch.editStack("local", project.toCluster(kubeconfig, `bench-${label}`));
  const stack = await Adapter.open({
    stage: "local",
    projectDir: scratch.dir,
    backendUrl: scratch.backendUrl,
    env: scratch.env,
  });
  await stack.up("bootstrap");
  return {
    label,
    async step(i) {
      scratch.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = (i % 10) * 10 + 5));
      const t0 = performance.now();
      await stack.up(`bench step ${i}`);
      return performance.now() - t0;
    },
    cleanup: () => scratch.cleanup(),
  };
}

/**
 * What a person's shell holds when they run `pulumi up` by hand: this run's toolchain (PATH,
 * PULUMI_HOME), without the repository's run path, compile cache or loader flags.
 */
function handEnv(backendDir: string): NodeJS.ProcessEnv {
  const {
    NODE_PATH: _path,
    NODE_OPTIONS: _options,
    NODE_COMPILE_CACHE: _cache,
    PULUMI_LANGUAGE_NODEJS_RUN_PATH: _run,
    PULUMI_NODEJS_TRANSPILE_ONLY: _transpile,
    ...env
  } = process.env;
  return {
    ...env,
    PATH: `${dirname(process.execPath)}:${env.PATH ?? ""}`,
    PULUMI_BACKEND_URL: `file://${backendDir}`,
    PULUMI_CONFIG_PASSPHRASE: support.PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

/** Runs the plain CLI in `cwd`; a failure throws with the end of its output. Returns its ms. */
function pulumiCli(cwd: string, env: NodeJS.ProcessEnv, cliArgs: string[]): number {
  const t0 = performance.now();
  const run = spawnSync("pulumi", cliArgs, {
    cwd,
    env,
    encoding: "utf8",
    timeout: 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - t0;
  if (run.status !== 0)
    throw new Error(
      `pulumi ${cliArgs.join(" ")} in ${cwd} exited ${run.status ?? run.signal}: ${(run.stderr + run.stdout).slice(-3000)}`,
    );
  return ms;
}

/** `pulumi up` exactly as a person runs it, after the stack file was edited. */
const HAND_UP = ["up", "--yes", "--skip-preview"];

/**
 * The hand-run step and its floor, render mode: an `init`ed Go service project (its local
 * stage) and the floor program with that project's tsconfig.json, each bootstrapped once by
 * `pulumi up`, then updated by the plain CLI.
 */
function handRun(): Updater[] {
  const root = mkdtempSync(join(tmpdir(), "slipway-bench-hand-"));
  try {
    const state = join(root, "state");
    mkdirSync(state);
    const env = handEnv(state);
    // The package installed as test/engine/init.test.ts installs it, with ts-node for the host.
    const bin = installPackedPackage(root, env, {
      extraDependencies: ["ts-node"],
      timeoutMs: 600_000,
    }).bin.slipway!;
    const project = join(root, "services", "payments");
    const init = spawnSync(bin, ["init", project, "--service", "payments", "--runtime", "go"], {
      cwd: root,
      encoding: "utf8",
      env,
      timeout: 60_000,
    });
    if (init.status !== 0) throw new Error(`slipway init exited ${init.status}: ${init.stderr}`);
    const stackFile = join(project, "Pulumi.local.yaml");
    pulumiCli(project, env, ["stack", "select", "--create", "local"]);
    // As the project's README says, before the first `up`: the tester header's secret.
    pulumiCli(project, env, [
      "config",
      "set",
      "--secret",
      "--stack",
      "local",
      "slipway:testerToken",
      randomBytes(24).toString("base64url"),
    ]);
    pulumiCli(project, env, ["up", "--stack", "local", "--yes"]);

    const floorDir = join(root, "floor");
    mkdirSync(floorDir);
    symlinkSync(join(REPO, "node_modules"), join(floorDir, "node_modules"), "dir");
    cpSync(join(project, "tsconfig.json"), join(floorDir, "tsconfig.json"));
    writeFileSync(
      join(floorDir, "package.json"),
      JSON.stringify({ name: "floor", main: "index.ts" }),
    );
    writeFileSync(join(floorDir, "Pulumi.yaml"), FLOOR_PULUMI_YAML);
    writeFileSync(join(floorDir, "index.ts"), FLOOR_PROGRAM);
    const floorValue = (value: string) =>
      writeFileSync(join(floorDir, "Pulumi.floor.yaml"), `config:\n  floor:value: "${value}"\n`);
    floorValue("0");
    pulumiCli(floorDir, env, ["stack", "select", "--create", "floor"]);
    pulumiCli(floorDir, env, ["up", "--stack", "floor", "--yes"]);

    let cleaned = false;
    const cleanup = () => {
      if (!cleaned) rmSync(root, { recursive: true, force: true });
      cleaned = true;
    };
    return [
      {
        label: "hand floor",
        step(i) {
          floorValue(String(i));
          return Promise.resolve(pulumiCli(floorDir, env, [...HAND_UP, "--stack", "floor"]));
        },
        cleanup,
      },
      {
        label: "hand step",
        step(i) {
          // As a canary step edits it: one key of the stack file, its comments kept.
          const doc = parseDocument(readFileSync(stackFile, "utf8"));
          doc.setIn(["config", "slipway:traffic", "canaryWeight"], (i % 10) * 10 + 5);
          writeFileSync(stackFile, doc.toString(YAML_WRITE));
          return Promise.resolve(pulumiCli(project, env, [...HAND_UP, "--stack", "local"]));
        },
        cleanup,
      },
    ];
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

async function measure(
  mode: "render" | "cluster",
  steps: number,
  baselines: Baseline[],
  kubeconfig?: string,
): Promise<Record<string, number>> {
  const updaters: Updater[] = [];
  try {
    updaters.push(await floor(mode, kubeconfig));
    for (const b of baselines) updaters.push(await canaryStep(b.label, b.dir, mode, kubeconfig));
    updaters.push(await canaryStep("step", REPO, mode, kubeconfig));
    // The init'ed project's local stage renders: the hand-run rows are render mode's.
    if (mode === "render") updaters.push(...handRun());
    const times: Record<string, number[]> = Object.fromEntries(updaters.map((u) => [u.label, []]));
    for (let i = 1; i <= steps; i++) {
      const line: string[] = [];
      for (const u of updaters) {
        const ms = await u.step(i);
        times[u.label]!.push(ms);
        line.push(`${u.label} ${ms.toFixed(0)} ms`);
      }
      console.log(`${mode} run ${i}: ${line.join(", ")}`);
    }
    return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  } finally {
    for (const u of updaters) u.cleanup();
  }
}

async function main() {
  const steps = Number(arg("--steps") ?? 5);
  const baselines: Baseline[] = args("--baseline").map((a, i) => {
    const eq = a.indexOf("=");
    return eq > 0
      ? { label: a.slice(0, eq), dir: resolve(a.slice(eq + 1)) }
      : { label: `baseline${i + 1}`, dir: resolve(a) };
  });
  // Each stack sets its own run path (StageStack.open); an older checkout's adapter sets none
  // and must get the host's default, as it had, not the one scripts/with-env.sh exported.
  delete process.env.PULUMI_LANGUAGE_NODEJS_RUN_PATH;
  delete process.env.NODE_COMPILE_CACHE; // likewise: the adapters that use it set it themselves
  const results: [string, Record<string, number>][] = [
    ["render", await measure("render", steps, baselines)],
  ];
  if (process.argv.includes("--cluster")) {
    const stateDir = mkdtempSync(join(tmpdir(), "slipway-bench-cluster-"));
    try {
      const info = await clusterUp({ projectDir: REPO, stateDir });
      results.push(["cluster", await measure("cluster", steps, baselines, info.kubeconfig)]);
    } finally {
      await clusterDown({ projectDir: REPO, stateDir }).catch(() => {});
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  console.log(`\none \`up\` through StageStack.up, median of ${steps} interleaved runs:`);
  for (const [mode, m] of results) {
    console.log(
      `  ${mode}: floor ${m.floor!.toFixed(0)} ms, canary step ${m.step!.toFixed(0)} ms, step/floor ${(m.step! / m.floor!).toFixed(2)}x`,
    );
    if (m["hand step"] !== undefined)
      console.log(
        `  ${mode}, hand-run (plain \`pulumi up --skip-preview\` in an init'ed project, ts-node): floor ${m["hand floor"]!.toFixed(0)} ms, step ${m["hand step"]!.toFixed(0)} ms, hand step/hand floor ${(m["hand step"]! / m["hand floor"]!).toFixed(2)}x (pipeline step/floor ${(m.step! / m.floor!).toFixed(2)}x; hand step/pipeline step ${(m["hand step"]! / m.step!).toFixed(2)}x)`,
      );
    const rows = [...baselines.map((b) => b.label), "step"];
    if (rows.length > 1) {
      console.log("    program            median ms   /floor   /row before");
      rows.forEach((label, i) => {
        const before = i > 0 ? m[rows[i - 1]!]! : undefined;
        console.log(
          `    ${label.padEnd(18)} ${m[label]!.toFixed(0).padStart(9)}   ${(m[label]! / m.floor!).toFixed(2).padStart(5)}x   ${before ? `${(m[label]! / before).toFixed(2)}x` : ""}`,
        );
      });
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
