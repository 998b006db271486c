import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseDocument } from "yaml";
import { parseStageConfig, TESTER_TOKEN_KEY } from "../config/load";
import type { StageConfig } from "../config/schema";
import { RefusedError } from "./errors";
import type { StageState } from "./machine";

/**
 * The stack files: a stage's config is `Pulumi.<stage>.yaml` over the project
 * defaults in `Pulumi.yaml`. Read without the engine; the pipeline edits only
 * the keys it owns (slots, traffic, release), keeping every other line.
 */

/** Project defaults (Pulumi.yaml `config:` defaults) overlaid by the stack file, as the engine does it. */
export function readRawStackConfig(projectDir: string, stage: string): Record<string, unknown> {
  const project = parseYamlFile(join(projectDir, "Pulumi.yaml")) as {
    config?: Record<string, any>;
  };
  const stackFile = join(projectDir, `Pulumi.${stage}.yaml`);
  if (!existsSync(stackFile)) {
    throw new Error(
      `--stage ${stage}: no stack file ${stackFile}; stages in ${projectDir}: ${listStages(projectDir).join(", ") || "none"}`,
    );
  }
  const stack = (parseYamlFile(stackFile) ?? {}) as {
    config?: Record<string, unknown>;
  };
  const raw: Record<string, unknown> = {};
  for (const [key, decl] of Object.entries(project.config ?? {})) {
    if (key.startsWith("slipway:") && decl && typeof decl === "object" && "default" in decl)
      raw[key.slice(8)] = decl.default;
  }
  for (const [key, value] of Object.entries(stack.config ?? {})) {
    if (key.startsWith("slipway:") && key !== `slipway:${TESTER_TOKEN_KEY}`)
      raw[key.slice(8)] = value;
  }
  return raw;
}

/** A project or stack file that is not YAML: the message names the file and where it breaks. */
export class StackFileError extends RefusedError {
  override name = "StackFileError";
}

function parseYamlFile(file: string): unknown {
  const text = readFileSync(file, "utf8");
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new StackFileError(
      `${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}. Nothing was changed.`,
    );
  }
  if (value !== null && value !== undefined && (typeof value !== "object" || Array.isArray(value)))
    throw new StackFileError(
      `${file}: not a YAML mapping (got ${JSON.stringify(value)?.slice(0, 40)})`,
    );
  return value;
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
