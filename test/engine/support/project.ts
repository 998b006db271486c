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
import { join } from "node:path";
import { parseDocument, stringify } from "yaml";
import { BUILD_FILES, ensureBuilt } from "../../../src/programBuild";
import { YAML_WRITE } from "../../../src/pipeline/stackFile";

/**
 * A scratch copy of the Slipway project for engine tests: the real program,
 * the real CLI and plugins, a `file://` backend and release log in a temp dir.
 * Stack files are copies, so tests can edit config freely.
 */
export const REPO = join(__dirname, "..", "..", "..");
export const PASSPHRASE = "slipway-engine-tests";

export interface ScratchProject {
  root: string;
  dir: string;
  backendUrl: string;
  logDir: string;
  /** Environment for LocalWorkspace and child processes. */
  env: Record<string, string>;
  /** Edits `Pulumi.<stage>.yaml` with a function over its `config` map (keys with the namespace). */
  editStack(stage: string, change: (config: Record<string, any>) => void): void;
  readStack(stage: string): Record<string, any>;
  /** A new stack file copied from another, with edits (e.g. staging switched to kubernetes render mode). */
  addStage(stage: string, from: string, change?: (config: Record<string, any>) => void): void;
  renderDir(stage: string): string;
  cleanup(): void;
}

const COPY = [
  "Pulumi.yaml",
  "Pulumi.local.yaml",
  "Pulumi.staging.yaml",
  "Pulumi.prod.yaml",
  "index.ts",
  "package.json",
  "components",
  "src",
  "policy",
  "examples",
  // The program's build with its config inputs (built here first when stale), so that each
  // scratch copy need not build it.
  ...BUILD_FILES,
];

/**
 * The local stage in render mode (manifests written to a directory, no cluster): what the
 * engine tests that need no cluster run on. `Pulumi.local.yaml` itself applies to the local
 * cluster.
 */
export function toRenderMode(stage: string) {
  return (config: Record<string, any>) => {
    const {
      kubeconfig: _kubeconfig,
      context: _context,
      ...kube
    } = config["slipway:kubernetes"] ?? {};
    config["slipway:kubernetes"] = { ...kube, renderYamlToDirectory: `.slipway/rendered/${stage}` };
  };
}

/** The local stage applied to a live cluster (its kubeconfig, absolute). */
export function toCluster(kubeconfig: string, namespace?: string) {
  return (config: Record<string, any>) => {
    const { renderYamlToDirectory: _render, ...kube } = config["slipway:kubernetes"] ?? {};
    config["slipway:kubernetes"] = { ...kube, kubeconfig, ...(namespace ? { namespace } : {}) };
  };
}

/**
 * `local`: "render" (default) keeps the local stage in render mode; "cluster" leaves it as
 * `Pulumi.local.yaml` has it (pass `toCluster(kubeconfig)` to point it at a running cluster).
 */
export function scratchProject(
  name = "slipway",
  options: { local?: "render" | "cluster" } = {},
): ScratchProject {
  const root = mkdtempSync(join(tmpdir(), `${name}-engine-`));
  const dir = join(root, "project");
  mkdirSync(dir);
  ensureBuilt(REPO);
  for (const entry of COPY) {
    try {
      cpSync(join(REPO, entry), join(dir, entry), {
        recursive: true,
        filter: (src) => !src.includes("node_modules"),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
  const state = join(root, "state");
  mkdirSync(state);
  const logDir = join(root, "releases");
  const backendUrl = `file://${state}`;
  const env = {
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
  const stackFile = (stage: string) => join(dir, `Pulumi.${stage}.yaml`);
  const editStack = (stage: string, change: (config: Record<string, any>) => void) => {
    const doc = parseDocument(readFileSync(stackFile(stage), "utf8"));
    const json = (doc.toJSON() ?? {}) as { config: Record<string, any> };
    change(json.config);
    writeFileSync(stackFile(stage), stringify(json, YAML_WRITE));
  };
  const project: ScratchProject = {
    root,
    dir,
    backendUrl,
    logDir,
    env,
    editStack,
    readStack: (stage) =>
      (parseDocument(readFileSync(stackFile(stage), "utf8")).toJSON() as any).config,
    addStage(stage, from, change) {
      cpSync(stackFile(from), stackFile(stage));
      editStack(stage, (config) => {
        if (config["slipway:kubernetes"]?.renderYamlToDirectory) {
          config["slipway:kubernetes"].renderYamlToDirectory = `.slipway/rendered/${stage}`;
        }
        change?.(config);
      });
    },
    renderDir: (stage) => join(dir, ".slipway", "rendered", stage),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  if ((options.local ?? "render") === "render") editStack("local", toRenderMode("local"));
  return project;
}

/** Switches a stack file to Kubernetes in render mode (what "switch slipway:platform" means offline). */
export function toKubernetesRender(stage: string) {
  return (config: Record<string, any>) => {
    config["slipway:platform"] = "kubernetes";
    config["slipway:kubernetes"] = {
      ...(config["slipway:kubernetes"] ?? {}),
      renderYamlToDirectory: `.slipway/rendered/${stage}`,
      createNamespace: true,
    };
    config["slipway:traffic"] = {
      ...config["slipway:traffic"],
      headerRoute: { secretGenerator: "builtin" },
    };
    // The example keys have no private half here; engine tests sign with keys they make.
    config["slipway:artifacts"] = { requireSignature: false };
  };
}
