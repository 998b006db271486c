import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parseDocument, stringify } from "yaml";
import { BUILD_FILES, ensureBuilt } from "../programBuild";
import type { Runtime } from "../config/schema";
import { YAML_WRITE } from "../pipeline/stackFile";

/**
 * The rehearsal's own copy of the program: the repository's program, stack
 * file and node_modules (a symlink), with a file backend and a release log
 * beside it, all under `.slipway/rehearsal/<runtime>/` (git ignores
 * `.slipway/`). Each run starts from a fresh copy, so a second run never
 * meets the first one's state.
 */

/** What the program needs to run; nothing else is copied. */
const PROGRAM_FILES = [
  "Pulumi.yaml",
  "Pulumi.local.yaml",
  "index.ts",
  "package.json",
  "components",
  "src",
  // The program's build with its config inputs (src/programBuild.js), made fresh in the
  // repository first, so that the copy need not build it.
  ...BUILD_FILES,
];

export interface ScratchStage {
  /** `.slipway/rehearsal/<runtime>` */
  root: string;
  projectDir: string;
  backendUrl: string;
  logDir: string;
  stage: "local";
  renderDir: string;
  stackFile: string;
  /** Changes the stack file's `config` (keys with the namespace), writing strings quoted as the pipeline does. */
  editConfig(change: (config: Record<string, any>) => void): void;
  readConfig(): Record<string, any>;
}

export function scratchStage(repo: string, root: string): ScratchStage {
  rmSync(root, { recursive: true, force: true });
  const projectDir = join(root, "project");
  mkdirSync(projectDir, { recursive: true });
  ensureBuilt(repo);
  for (const entry of PROGRAM_FILES) {
    const from = join(repo, entry);
    if (existsSync(from)) cpSync(from, join(projectDir, entry), { recursive: true });
  }
  symlinkSync(join(repo, "node_modules"), join(projectDir, "node_modules"), "dir");
  const state = join(root, "state");
  mkdirSync(state, { recursive: true });
  const stackFile = join(projectDir, "Pulumi.local.yaml");
  const readConfig = () =>
    (
      (parseDocument(readFileSync(stackFile, "utf8")).toJSON() ?? {}) as {
        config?: Record<string, any>;
      }
    ).config ?? {};
  return {
    root,
    projectDir,
    backendUrl: `file://${state}`,
    logDir: join(root, "releases"),
    stage: "local",
    renderDir: join(projectDir, ".slipway", "rendered", "local"),
    stackFile,
    readConfig,
    editConfig(change) {
      const config = readConfig();
      change(config);
      writeFileSync(
        stackFile,
        `# The rehearsal's local stage (written by slipway rehearse; a scratch copy of Pulumi.local.yaml).\n${stringify({ config }, YAML_WRITE)}`,
      );
    },
  };
}

export interface StageSetup {
  runtime: Runtime;
  baseline: { image: string; version: string; revision: string };
  steps: Record<string, unknown>[];
  analysis: Record<string, unknown>;
  scaleDownDelaySeconds: number;
  progressDeadlineSeconds: number;
  prometheusUrl: string;
  /** The live cluster to apply to; without it the stage renders manifests (render mode). */
  cluster?: { kubeconfig: string; namespace: string };
  /** slipway:canary.hooks and slipway:notifications.webhooks (the rehearsal's sink). */
  hooks?: unknown[];
  webhooks?: unknown[];
}

/**
 * The stack file of the rehearsal: the repository's local stage with the
 * runtime, the baseline release in both slots (the idle one scaled to 0), the
 * rehearsal's step plan and analysis, and its Prometheus.
 */
export function configureStage(stage: ScratchStage, setup: StageSetup): void {
  stage.editConfig((config) => {
    config["slipway:service"] = { ...config["slipway:service"], runtime: setup.runtime };
    const slot = {
      image: setup.baseline.image,
      version: setup.baseline.version,
      revision: setup.baseline.revision,
    };
    config["slipway:slots"] = { blue: slot, green: { ...slot, replicas: 0 } };
    config["slipway:traffic"] = { ...config["slipway:traffic"], stable: "blue", canaryWeight: 0 };
    const { preset: _preset, ...canary } = config["slipway:canary"] ?? {};
    config["slipway:canary"] = {
      ...canary,
      steps: setup.steps,
      analysis: setup.analysis,
      scaleDownDelaySeconds: setup.scaleDownDelaySeconds,
      progressDeadlineSeconds: setup.progressDeadlineSeconds,
      ...(setup.hooks ? { hooks: setup.hooks } : {}),
    };
    const {
      renderYamlToDirectory: _render,
      kubeconfig: _kubeconfig,
      ...kube
    } = config["slipway:kubernetes"] ?? {};
    if (setup.webhooks) config["slipway:notifications"] = { webhooks: setup.webhooks };
    config["slipway:kubernetes"] = {
      ...kube,
      prometheusUrl: setup.prometheusUrl,
      ...(setup.cluster
        ? { kubeconfig: setup.cluster.kubeconfig, namespace: setup.cluster.namespace }
        : { renderYamlToDirectory: ".slipway/rendered/local" }),
    };
    // Through the Gateway the tester header route reaches the candidate: check it answers.
    if (setup.cluster) config["slipway:canary"].smokeCheck = { path: "/version", requests: 5 };
    delete config["slipway:release"];
  });
}
