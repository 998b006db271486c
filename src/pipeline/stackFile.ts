import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMap, parse, parseDocument, type Document } from "yaml";
import { parseStageConfig, TESTER_TOKEN_KEY } from "../config/load";
import type { StageConfig } from "../config/schema";
import { RefusedError } from "./errors";
import type { StageState } from "./machine";

/**
 * The stack files: a stage's config is `Pulumi.<stage>.yaml` over the project
 * defaults in `Pulumi.yaml`. Read without the engine; the pipeline edits only
 * the keys it owns (slots, traffic, release), keeping every other line.
 */

/**
 * Every key the engine reads for `stage`: the project's `slipway:` defaults or values (Pulumi.yaml) overlaid
 * by every key of the stack file, names as written.
 */
function mergedStackConfig(projectDir: string, stage: string): Record<string, unknown> {
  const project = parseYamlFile(join(projectDir, "Pulumi.yaml")) as {
    config?: Record<string, any>;
  };
  const stackFile = stackFilePath(projectDir, stage);
  if (!existsSync(stackFile)) {
    throw new Error(
      `--stage ${stage}: no stack file ${stackFile}; stages in ${projectDir}: ${listStages(projectDir).join(", ") || "none"}`,
    );
  }
  const stack = (parseYamlFile(stackFile) ?? {}) as {
    config?: Record<string, unknown>;
  };
  const merged: Record<string, unknown> = {};
  // A project named after its service declares the slipway: keys with `value`, not `default`
  // (Pulumi types only a project's own namespace); the engine applies either the same way.
  for (const [key, decl] of Object.entries(project?.config ?? {}))
    if (key.startsWith("slipway:") && isMapping(decl))
      if ("default" in decl) merged[key] = decl.default;
      else if ("value" in decl) merged[key] = decl.value;
  return Object.assign(merged, stack.config ?? {});
}

/** Project defaults (Pulumi.yaml `config:` defaults) overlaid by the stack file, as the engine does it. */
export function readRawStackConfig(projectDir: string, stage: string): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mergedStackConfig(projectDir, stage)))
    if (key.startsWith("slipway:") && key !== `slipway:${TESTER_TOKEN_KEY}`)
      raw[key.slice(8)] = value;
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

/** The stack file of `stage`: `Pulumi.<stage>.yaml` in the project. */
export const stackFilePath = (projectDir: string, stage: string): string =>
  join(projectDir, `Pulumi.${stage}.yaml`);

/** Writes the pipeline's keys into the stack file `file`, leaving every other line as it was. */
export function writeStageState(file: string, state: StageState): void {
  const doc = parseDocument(readFileSync(file, "utf8"));
  // Key by key, not whole mappings: a comment a person wrote inside slipway:traffic or
  // slipway:slots stays on its line.
  setMapping(doc, ["config", "slipway:traffic"], {
    stable: state.stable,
    canaryWeight: state.canaryWeight,
  });
  for (const slot of ["blue", "green"] as const) {
    const path = ["config", "slipway:slots", slot];
    setMapping(doc, path, state.slots[slot]);
    const node = doc.getIn(path) as { items?: { key: unknown }[] } | undefined;
    for (const key of keysOf(node)) if (!(key in state.slots[slot])) doc.deleteIn([...path, key]);
  }
  if (state.release) doc.setIn(["config", "slipway:release"], doc.createNode(state.release));
  writeFileSync(file, doc.toString(YAML_WRITE));
}

/** Sets each of `values` at `path` (creating the mapping when missing), leaving other keys and comments. */
function setMapping(doc: Document, path: string[], values: Record<string, unknown>): void {
  if (!isMap(doc.getIn(path))) doc.setIn(path, doc.createNode({}));
  for (const [key, value] of Object.entries(values))
    if (value !== undefined) doc.setIn([...path, key], doc.createNode(value));
}

function keysOf(node: unknown): string[] {
  if (!isMap(node)) return [];
  return node.items.map((item) => String((item.key as { value?: unknown })?.value ?? item.key));
}

/**
 * Keys outside the fingerprint. What the pipeline writes into a stack file: whole keys
 * (writeStageState, the tester token StageStack.open generates) and two fields of
 * `slipway:traffic`. And the release's own instructions, which only the pipeline reads and the
 * program turns into no resource, so an edit of them cannot ride along with an update: a person
 * may shorten a pause or add an approval and resume (the plan is read again on resume).
 */
const PIPELINE_KEYS: readonly string[] = [
  "slipway:slots",
  "slipway:release",
  `slipway:${TESTER_TOKEN_KEY}`,
  "slipway:canary",
  "slipway:promotion",
  "slipway:notifications",
  "slipway:artifacts",
];
const PIPELINE_TRAFFIC_FIELDS: readonly string[] = ["stable", "canaryWeight"];

/**
 * The people-owned config of a stage, one entry per leaf (`slipway:service.env.LOG_FORMAT`)
 * with a digest of its value: what a release compares before each update to tell that someone
 * edited the stack file meanwhile, and can record in the (world-readable) log without the values.
 */
export type ConfigFingerprint = Record<string, string>;

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The fingerprint of a config map (keys as in a stack file, `slipway:service`). Pure. */
export function fingerprintConfig(config: Record<string, unknown>): ConfigFingerprint {
  const out: ConfigFingerprint = {};
  const walk = (path: string, value: unknown) => {
    if (isMapping(value) && Object.keys(value).length > 0)
      for (const [k, v] of Object.entries(value)) walk(`${path}.${k}`, v);
    else
      out[path] = createHash("sha256")
        .update(JSON.stringify(value) ?? "undefined")
        .digest("hex")
        .slice(0, 16);
  };
  for (const [key, value] of Object.entries(config)) {
    if (PIPELINE_KEYS.includes(key)) continue;
    if (key === "slipway:traffic" && isMapping(value)) {
      const owned = Object.fromEntries(
        Object.entries(value).filter(([k]) => !PIPELINE_TRAFFIC_FIELDS.includes(k)),
      );
      // An empty mapping is a leaf: the key itself still counts as present.
      walk(key, owned);
    } else walk(key, value);
  }
  return out;
}

/** The leaves added, removed or changed between two fingerprints, sorted. Pure. */
export function changedConfigKeys(before: ConfigFingerprint, after: ConfigFingerprint): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}

/**
 * The fingerprint of the config the engine would read for `stage` now: the project's
 * `slipway:` defaults (Pulumi.yaml) overlaid by every key of the stack file.
 */
export function stageConfigFingerprint(projectDir: string, stage: string): ConfigFingerprint {
  return fingerprintConfig(mergedStackConfig(projectDir, stage));
}
