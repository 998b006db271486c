import type { z } from "zod";
import { stageConfigSchema, type StageConfig } from "./schema";

export const CONFIG_NAMESPACE = "slipway";

/** The top-level keys, in the order the README documents them. */
export const CONFIG_KEYS = [
  "platform",
  "service",
  "slots",
  "traffic",
  "canary",
  "aws",
  "kubernetes",
  "flags",
  "promotion",
  "artifacts",
  "notifications",
  "release",
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

export interface ConfigProblem {
  /** Full config key path, e.g. `slipway:traffic.canaryWeight`. */
  key: string;
  /** The offending value, or undefined when the key is missing. */
  value: unknown;
  /** What is wrong and what is allowed. */
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly stage: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `Invalid Slipway config for stage "${stage}":\n` +
        problems.map((p) => `  - ${p.key}: ${describeValue(p.value)}; ${p.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return "missing";
  const shown = JSON.stringify(value) ?? String(value);
  return `got ${shown.length > 80 ? shown.slice(0, 77) + "..." : shown}`;
}

function keyOf(path: readonly PropertyKey[]): string {
  const [top, ...rest] = path;
  let key = `${CONFIG_NAMESPACE}:${String(top ?? "")}`;
  for (const part of rest) key += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
  return key;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}

function problemsOf(error: z.ZodError, raw: unknown): ConfigProblem[] {
  return error.issues.map((issue) => {
    // An unknown key is reported on its parent; name the key itself.
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys;
      return {
        key: keyOf([...issue.path, keys[0]!]),
        value: valueAt(raw, [...issue.path, keys[0]!]),
        message: `is not a known setting (unknown key${keys.length > 1 ? "s" : ""}: ${keys.join(", ")})`,
      };
    }
    const value =
      "input" in issue && issue.input !== undefined ? issue.input : valueAt(raw, issue.path);
    return { key: keyOf(issue.path), value, message: issue.message };
  });
}

/**
 * Validates raw `slipway:*` config. Throws a ConfigError that lists every problem,
 * each naming the key, the value and what is allowed.
 */
export function parseStageConfig(raw: Record<string, unknown>, stage: string): StageConfig {
  const unknownKeys = Object.keys(raw).filter(
    (k) => !(CONFIG_KEYS as readonly string[]).includes(k),
  );
  const result = stageConfigSchema.safeParse(raw);
  const problems: ConfigProblem[] = unknownKeys.map((k) => ({
    key: `${CONFIG_NAMESPACE}:${k}`,
    value: raw[k],
    message: `is not a known setting; allowed keys: ${CONFIG_KEYS.join(", ")}`,
  }));
  if (!result.success) problems.push(...problemsOf(result.error, raw));
  if (problems.length > 0) throw new ConfigError(stage, problems);
  return { ...result.data!, stage };
}

/** Reads every Slipway key through a getter (pulumi.Config#getObject, or stack config in the pipeline). */
export function readRawConfig(get: (key: ConfigKey) => unknown): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const value = get(key);
    if (value !== undefined) raw[key] = value;
  }
  return raw;
}
