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

/**
 * `slipway:testerToken`: the tester header's value on stages with
 * `headerRoute.secretGenerator: builtin`, a Pulumi secret (`secure:` in the stack file)
 * that Slipway generates once when it first opens the stage (StageStack.open). Not part of
 * the validated config (a secret has no place in its messages); the program reads it with
 * `getSecret`.
 */
export const TESTER_TOKEN_KEY = "testerToken";

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
  if (typeof value === "number" && !Number.isFinite(value)) return `got ${yamlNumber(value)}`;
  // JSON has no NaN or Infinity (it would print null): show them as YAML wrote them.
  const shown =
    JSON.stringify(value, (_k, v) =>
      typeof v === "number" && !Number.isFinite(v) ? yamlNumber(v) : v,
    ) ?? String(value);
  return `got ${shown.length > 80 ? shown.slice(0, 77) + "..." : shown}`;
}

const yamlNumber = (n: number) => (Number.isNaN(n) ? ".nan" : n > 0 ? ".inf" : "-.inf");

/** Longer config strings are refused: a stack file is not a place for payloads (and a 10 MB env var breaks pods). */
export const MAX_CONFIG_STRING_BYTES = 64 * 1024;

function oversizedStrings(value: unknown, path: PropertyKey[], out: ConfigProblem[]): void {
  if (typeof value === "string") {
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes > MAX_CONFIG_STRING_BYTES)
      out.push({
        key: keyOf(path),
        value: `${value.slice(0, 20)}…`,
        message: `is a string of ${bytes} bytes; allowed: at most ${MAX_CONFIG_STRING_BYTES} bytes`,
      });
    return;
  }
  if (value === null || typeof value !== "object") return;
  for (const [k, v] of Object.entries(value))
    oversizedStrings(v, [...path, Array.isArray(value) ? Number(k) : k], out);
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
  for (const [k, v] of Object.entries(raw)) oversizedStrings(v, [k], problems);
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
