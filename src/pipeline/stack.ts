import { LocalWorkspace, type Stack, type OutputMap } from "@pulumi/pulumi/automation";
import { existsSync, readdirSync, readFileSync, writeFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parse, parseDocument } from "yaml";
import { parseStageConfig } from "../config/load";
import type { StageConfig } from "../config/schema";
import { parseStageOutputs, type StageOutputs } from "../contract/outputs";
import type { Weights } from "../traffic/weights";
import { StackLockedError } from "./errors";
import type { StageState } from "./machine";

/**
 * The Automation API side of the pipeline: one stage is one stack of the
 * program in `projectDir`. Config lives in `Pulumi.<stage>.yaml`; the
 * pipeline edits the keys it owns (slots, traffic, release) in that file,
 * keeping comments, and each change lands with one `up`.
 */
export interface StageStackOptions {
  stage: string;
  projectDir: string;
  /** `file://…` or a service URL; defaults to PULUMI_BACKEND_URL. */
  backendUrl?: string;
  /** Extra environment for the engine (passphrase, credentials). */
  env?: Record<string, string>;
  onOutput?: (text: string) => void;
}

export interface UpdateResult {
  changes: Record<string, number>;
  durationMs: number;
}

export const ENGINE_ENV = {
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
};

/** Project defaults (Pulumi.yaml `config:` defaults) overlaid by the stack file, as the engine does it. */
export function readRawStackConfig(projectDir: string, stage: string): Record<string, unknown> {
  const project = parse(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8")) as {
    config?: Record<string, any>;
  };
  const stackFile = join(projectDir, `Pulumi.${stage}.yaml`);
  if (!existsSync(stackFile)) {
    throw new Error(
      `--stage ${stage}: no stack file ${stackFile}; stages in ${projectDir}: ${listStages(projectDir).join(", ") || "none"}`,
    );
  }
  const stack = (parse(readFileSync(stackFile, "utf8")) ?? {}) as {
    config?: Record<string, unknown>;
  };
  const raw: Record<string, unknown> = {};
  for (const [key, decl] of Object.entries(project.config ?? {})) {
    if (key.startsWith("slipway:") && decl && typeof decl === "object" && "default" in decl)
      raw[key.slice(8)] = decl.default;
  }
  for (const [key, value] of Object.entries(stack.config ?? {})) {
    if (key.startsWith("slipway:")) raw[key.slice(8)] = value;
  }
  return raw;
}

export function listStages(projectDir: string): string[] {
  return readdirSync(projectDir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

/** Validated config of a stage, read from files only: no engine, no update. */
export function readStageConfig(projectDir: string, stage: string): StageConfig {
  return parseStageConfig(readRawStackConfig(projectDir, stage), stage);
}

/**
 * Strings are written quoted: the engine reads stack files as YAML 1.1, where a
 * plain 2026-11-26T10:00:00Z or 2027-06-30 would turn into a timestamp.
 */
export const YAML_WRITE = { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" } as const;

/** Writes the pipeline's keys into the stack file, leaving every other line as it was. */
export function writeStageState(projectDir: string, stage: string, state: StageState): void {
  const file = join(projectDir, `Pulumi.${stage}.yaml`);
  const doc = parseDocument(readFileSync(file, "utf8"));
  const traffic = (doc.getIn(["config", "slipway:traffic"]) as any)?.toJSON?.() ?? {};
  doc.setIn(
    ["config", "slipway:traffic"],
    doc.createNode({ ...traffic, stable: state.stable, canaryWeight: state.canaryWeight }),
  );
  doc.setIn(["config", "slipway:slots"], doc.createNode(state.slots));
  if (state.release) doc.setIn(["config", "slipway:release"], doc.createNode(state.release));
  writeFileSync(file, doc.toString(YAML_WRITE));
}

export function stateOf(config: StageConfig): StageState {
  return {
    stable: config.traffic.stable,
    canaryWeight: config.traffic.canaryWeight,
    slots: config.slots,
    ...(config.release ? { release: config.release } : {}),
  };
}

export class StageStack {
  private constructor(
    readonly options: StageStackOptions,
    readonly stack: Stack,
  ) {}

  static async open(options: StageStackOptions): Promise<StageStack> {
    const envVars: Record<string, string> = { ...ENGINE_ENV, ...(options.env ?? {}) };
    const backend = options.backendUrl ?? process.env.PULUMI_BACKEND_URL;
    if (backend) envVars.PULUMI_BACKEND_URL = backend;
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: options.stage, workDir: options.projectDir },
      { envVars },
    );
    return new StageStack(options, stack);
  }

  get stage(): string {
    return this.options.stage;
  }

  writeState(state: StageState): void {
    writeStageState(this.options.projectDir, this.options.stage, state);
  }

  /** The outputs of the last successful update, or undefined before the first. */
  async outputs(): Promise<StageOutputs | undefined> {
    const map = await this.stack.outputs();
    if (!map.schemaVersion) return undefined;
    return parseStageOutputs(plain(map), `stack ${this.stage}`);
  }

  async testerHeader(): Promise<{ name: string; value: string } | undefined> {
    const map = await this.stack.outputs();
    return map.testerHeader?.value as { name: string; value: string } | undefined;
  }

  async up(message: string): Promise<UpdateResult> {
    const started = Date.now();
    try {
      const result = await this.stack.up({
        message,
        onOutput: this.options.onOutput,
        color: "never",
      });
      return {
        changes: (result.summary.resourceChanges ?? {}) as Record<string, number>,
        durationMs: Date.now() - started,
      };
    } catch (err) {
      throw asLockError(err);
    }
  }

  async preview(): Promise<Record<string, number>> {
    try {
      const result = await this.stack.preview({ color: "never" });
      return result.changeSummary as Record<string, number>;
    } catch (err) {
      throw asLockError(err);
    }
  }

  /**
   * The weights actually in force. In render mode the rendered HTTPRoute manifest
   * is what a cluster would apply; otherwise a refresh of the routing resource
   * reads them back from the cloud.
   */
  async weightsInForce(config: StageConfig): Promise<Weights> {
    if (config.platform === "kubernetes" && config.kubernetes.renderYamlToDirectory) {
      const dir = isAbsolute(config.kubernetes.renderYamlToDirectory)
        ? config.kubernetes.renderYamlToDirectory
        : resolve(this.options.projectDir, config.kubernetes.renderYamlToDirectory);
      return renderedRouteWeights(dir, config.service.name);
    }
    const routeType =
      config.platform === "aws"
        ? "aws:lb/listenerRule:ListenerRule"
        : "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute";
    const state = await this.stack.exportStack();
    const route = (state.deployment.resources ?? []).find(
      (r: any) =>
        r.type === routeType && (config.platform !== "aws" || String(r.urn).endsWith("-weighted")),
    );
    if (!route) throw new Error(`no ${routeType} in the state of stack ${this.stage}`);
    await this.stack.refresh({
      target: [route.urn],
      color: "never",
      message: `verify weights of ${this.stage}`,
    });
    const refreshed = (await this.stack.exportStack()).deployment.resources.find(
      (r: any) => r.urn === route.urn,
    );
    return weightsFromRouteState(config.platform, refreshed?.outputs ?? {}, config.service.name);
  }
}

function plain(map: OutputMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.value]));
}

function asLockError(err: unknown): unknown {
  const text = String((err as Error)?.message ?? err);
  if (/currently locked|conflict: Another update is currently in progress/i.test(text)) {
    return new StackLockedError(
      `the stack is locked by another update in progress: ${text.split("\n").find((l) => /lock/i.test(l)) ?? ""}`.trim(),
    );
  }
  return new EngineError(text);
}

/** An engine failure, led by the engine's diagnostics instead of the whole transcript. */
export class EngineError extends Error {
  constructor(readonly transcript: string) {
    super(summarizeEngineOutput(transcript));
    this.name = "EngineError";
  }
}

/** The `Diagnostics:` block of an engine transcript (each resource's errors), else its `error:` lines. */
export function summarizeEngineOutput(transcript: string): string {
  const lines = transcript.split("\n");
  const start = lines.findIndex((l) => l.trim() === "Diagnostics:");
  if (start >= 0) {
    const block: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (/^\S/.test(line) && line.trim() !== "") break; // "Resources:", "Outputs:", "Duration:" …
      if (line.trim()) block.push(line.trim());
    }
    if (block.length > 0) return [...new Set(block)].join("\n");
  }
  const errors = [...new Set(lines.map((l) => l.trim()).filter((l) => /(^|\s)error:/.test(l)))];
  return errors.length > 0 ? errors.slice(0, 10).join("\n") : lines.slice(-5).join("\n");
}

/** Every manifest the Kubernetes provider rendered under `dir` (render mode), parsed. */
export function renderedManifests(dir: string): any[] {
  if (!existsSync(dir)) throw new Error(`no rendered manifests in ${dir}`);
  const out: any[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(f)) {
        for (const text of readFileSync(p, "utf8").split(/^---$/m))
          if (text.trim()) out.push(parse(text));
      }
    }
  };
  walk(dir);
  return out;
}

/** Reads the weighted (last) rule of the rendered HTTPRoute of `service`. */
export function renderedRouteWeights(dir: string, service: string): Weights {
  const route = renderedManifests(dir).find(
    (m) => m?.kind === "HTTPRoute" && m?.metadata?.name === service,
  );
  if (!route) throw new Error(`no rendered HTTPRoute named ${service} in ${dir}`);
  return weightsFromHttpRoute(route.spec, service);
}

function weightsFromHttpRoute(spec: any, service: string): Weights {
  const rule = spec.rules[spec.rules.length - 1];
  const w = (slot: string) =>
    rule.backendRefs.find((b: any) => b.name === `${service}-${slot}`)?.weight;
  const blue = w("blue");
  const green = w("green");
  if (typeof blue !== "number" || typeof green !== "number")
    throw new Error(`HTTPRoute ${service} has no weighted blue/green backends`);
  return { blue, green };
}

function weightsFromRouteState(platform: string, outputs: any, service: string): Weights {
  if (platform === "kubernetes") return weightsFromHttpRoute(outputs.spec, service);
  const groups = outputs.actions?.[0]?.forward?.targetGroups ?? [];
  const w = (slot: string) =>
    groups.find((g: any) => String(g.arn).includes(`:targetgroup/${slot}-`))?.weight;
  return { blue: w("blue"), green: w("green") };
}
