import { z } from "zod";
import { formatIssues, JUDGE_DEFAULTS, metricConfigShape } from "./spec";
import type { JudgeMetric, JudgeOptions } from "./judge";

/**
 * The offline input file of `slipway analyze`: metric configs with their
 * observed data for the baseline (stable slot) and the canary (candidate slot).
 * `schemas/analysis-input.schema.json` is generated from this schema
 * (`analysisInputJsonSchema()`); a unit test keeps the two in step.
 */

const count = z
  .number({
    error: (iss) =>
      iss.input === undefined ? "is required" : `${JSON.stringify(iss.input)} is not a number`,
  })
  .int({
    error: (iss) => `${String(iss.input)} is not a whole number; counts are whole numbers >= 0`,
  })
  .min(0, { error: (iss) => `${String(iss.input)} is negative; counts are whole numbers >= 0` });

export const ratioCountsSchema = z
  .object({
    bad: count.describe(
      "Requests that count against the ratio (e.g. 5xx responses) in the window.",
    ),
    total: count.describe("All requests in the window."),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.bad > c.total) {
      ctx.addIssue({
        code: "custom",
        path: ["bad"],
        message: `${c.bad} is greater than total ${c.total}`,
      });
    }
  })
  .describe("Counts over the window; bad must not exceed total.");

const sampleValues = z
  .array(
    z.number({
      error: (iss) => `${JSON.stringify(iss.input) ?? String(iss.input)} is not a finite number`,
    }),
  )
  .describe("Observed values (e.g. latencies, one per request or per query step).");

const ratioMetricSchema = z
  .object({
    ...metricConfigShape,
    type: z.literal("ratio").describe("bad/total counts compared with a test on two proportions."),
    baseline: ratioCountsSchema
      .optional()
      .describe("The stable slot. May be omitted for a metric judged by threshold only."),
    canary: ratioCountsSchema.describe("The candidate slot."),
  })
  .strict();

const samplesMetricSchema = z
  .object({
    ...metricConfigShape,
    type: z
      .literal("samples")
      .describe("Values compared with a Mann-Whitney U test and a Hodges-Lehmann shift."),
    baseline: sampleValues
      .optional()
      .describe("The stable slot. May be omitted for a metric judged by threshold only."),
    canary: sampleValues.describe("The candidate slot."),
  })
  .strict();

export const metricInputSchema = z.discriminatedUnion(
  "type",
  [ratioMetricSchema, samplesMetricSchema],
  {
    error: (iss) => {
      if (iss.code !== "invalid_union") return undefined;
      const input = iss.input as { type?: unknown } | undefined;
      const got = input && typeof input === "object" ? input.type : undefined;
      return got === undefined
        ? `is required; expected "ratio" or "samples"`
        : `${JSON.stringify(got)} is not a metric type; expected "ratio" or "samples"`;
    },
  },
);

export const analysisInputSchema = z
  .object({
    $schema: z.string().optional(),
    minSamples: z
      .number()
      .int({ error: (iss) => `${String(iss.input)} is not a whole number` })
      .min(1, { error: (iss) => `${String(iss.input)} is too small; must be >= 1` })
      .default(JUDGE_DEFAULTS.minSamples)
      .describe("Minimum requests (ratio) or values (samples) per slot before a metric can pass."),
    alpha: z
      .number()
      .gt(0, { error: "must be between 0 and 1 (exclusive)" })
      .lt(1, { error: "must be between 0 and 1 (exclusive)" })
      .default(JUDGE_DEFAULTS.alpha)
      .describe("Family-wise false-failure rate across the metrics (Holm-Bonferroni)."),
    maxFailedMetrics: z
      .number()
      .int()
      .min(0)
      .default(JUDGE_DEFAULTS.maxFailedMetrics)
      .describe("Non-critical metrics that may fail while the analysis still passes."),
    metrics: z.array(metricInputSchema).min(1, { error: "needs at least one metric" }),
  })
  .strict()
  .superRefine((input, ctx) => {
    const seen = new Set<string>();
    input.metrics.forEach((m, i) => {
      if (seen.has(m.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["metrics", i, "name"],
          message: `"${m.name}" is used twice; metric names must be unique`,
        });
      }
      seen.add(m.name);
    });
  })
  .describe(
    "Input of `slipway analyze`: per-metric data for the baseline (stable slot) and the canary (candidate slot).",
  );

export type AnalysisInput = z.output<typeof analysisInputSchema>;

export class InputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "InputError";
  }
}

/** Parses the text of an input file; throws InputError naming each bad field. */
export function parseAnalysisInput(text: string): AnalysisInput {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError([`not valid JSON: ${(err as Error).message}`]);
  }
  const result = analysisInputSchema.safeParse(raw);
  if (!result.success) throw new InputError(formatIssues(result.error));
  return result.data;
}

/** The judge's view of a parsed input file. */
export function toJudgeArguments(input: AnalysisInput): {
  metrics: JudgeMetric[];
  options: JudgeOptions;
} {
  return {
    metrics: input.metrics,
    options: {
      alpha: input.alpha,
      minSamples: input.minSamples,
      maxFailedMetrics: input.maxFailedMetrics,
    },
  };
}

/** JSON Schema (draft 2020-12) of the input file, as committed in schemas/analysis-input.schema.json. */
export function analysisInputJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(analysisInputSchema, { io: "input", unrepresentable: "any" }),
    title: "Slipway canary analysis input",
  };
}
