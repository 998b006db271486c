import { z } from "zod";

/**
 * Vocabulary shared by the offline input file (`slipway analyze`) and the
 * stack config (`slipway:canary.analysis`): how one metric is judged.
 */

export const directionSchema = z
  .enum(["increase", "decrease", "either"])
  .describe(
    "Which change is bad: 'increase' (errors, latency), 'decrease' (throughput, success), or 'either'.",
  );

export const thresholdSchema = z
  .object({
    max: z.number().optional().describe("The canary fails when its value is above this."),
    min: z.number().optional().describe("The canary fails when its value is below this."),
    quantile: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe(
        "Samples metrics only: which quantile of the canary's samples is compared (default 0.5, the median).",
      ),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.max === undefined && t.min === undefined) {
      ctx.addIssue({ code: "custom", message: "needs at least one of max or min" });
    }
    if (t.max !== undefined && t.min !== undefined && t.min > t.max) {
      ctx.addIssue({
        code: "custom",
        path: ["min"],
        message: `${t.min} is greater than max ${t.max}`,
      });
    }
  })
  .describe(
    "Absolute bounds on the canary alone, checked in addition to the comparison with the baseline.",
  );

export const metricConfigShape = {
  name: z
    .string()
    .min(1, { error: "must be a non-empty string" })
    .describe("Metric name, unique within the analysis."),
  direction: directionSchema.default("increase"),
  tolerance: z
    .number()
    .min(0, {
      error: (iss) =>
        `${String(iss.input)} is negative; a tolerance is a relative change >= 0 (0.1 = 10%)`,
    })
    .optional()
    .describe(
      "Largest relative change in the bad direction that is still acceptable (0.1 = 10%). Default 0.1.",
    ),
  absoluteTolerance: z
    .number()
    .min(0, { error: (iss) => `${String(iss.input)} is negative; must be >= 0` })
    .optional()
    .describe(
      "Largest absolute change in the bad direction that is still acceptable (ratio: as a fraction, 0.001 = 0.1 percentage points). Default 0.",
    ),
  margin: z
    .number()
    .gt(0, {
      error: (iss) =>
        `${String(iss.input)} must be > 0; a margin is a relative change (1 = twice as bad)`,
    })
    .optional()
    .describe(
      "A pass needs evidence that the canary is not worse by this relative amount or more (non-inferiority margin; 1 = twice the baseline's ratio). Less data than that gives 'inconclusive'. Default 1 for ratio metrics, 0.25 for samples.",
    ),
  threshold: thresholdSchema.optional(),
  critical: z
    .boolean()
    .default(false)
    .describe("A critical metric that fails fails the whole analysis on its own."),
  minSamples: z
    .number()
    .int({ error: (iss) => `${String(iss.input)} is not a whole number` })
    .min(1, { error: (iss) => `${String(iss.input)} is too small; must be >= 1` })
    .optional()
    .describe(
      "Override of the analysis-wide minSamples for this metric (requests for ratios, values for samples).",
    ),
};

export const metricTypeSchema = z.enum(["ratio", "samples"]);
export type MetricType = z.infer<typeof metricTypeSchema>;
export type Direction = z.infer<typeof directionSchema>;
export type Threshold = z.infer<typeof thresholdSchema>;

/** Defaults that the judge applies when a metric does not say. */
export const JUDGE_DEFAULTS = {
  alpha: 0.05,
  minSamples: 100,
  tolerance: 0.1,
  absoluteTolerance: 0,
  maxFailedMetrics: 0,
  ratioMargin: 1,
  samplesMargin: 0.25,
  /** Confidence with which a pass must rule out a change as large as the margin. */
  passConfidence: 0.95,
} as const;

// ---------------------------------------------------------------------------
// Stack config: slipway:canary.analysis

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** "90s", "1m", "1m30s", "2h" or a number of seconds → seconds. */
export function parseDurationSeconds(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  const m = DURATION.exec(value.trim());
  if (!m || value.trim() === "") return undefined;
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  return seconds > 0 ? seconds : undefined;
}

const durationSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = parseDurationSeconds(value);
  if (seconds === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `${JSON.stringify(value)} is not a duration; use seconds (60) or a string like "30s", "1m", "1m30s"`,
    });
    return z.NEVER;
  }
  return seconds;
});

const wholeAtLeast = (min: number) =>
  z
    .number()
    .int({ error: (iss) => `${String(iss.input)} is not a whole number` })
    .min(min, { error: (iss) => `${String(iss.input)} is too small; must be >= ${min}` });

export const prometheusQueriesSchema = z
  .object({
    bad: z
      .string()
      .min(1)
      .optional()
      .describe("Ratio metrics: PromQL for the bad count over $window (e.g. 5xx responses)."),
    total: z
      .string()
      .min(1)
      .optional()
      .describe("Ratio metrics: PromQL for the total count over $window."),
    samples: z
      .string()
      .min(1)
      .optional()
      .describe("Samples metrics: PromQL range query evaluated every $step over the window."),
  })
  .strict()
  .describe(
    "PromQL templates. Placeholders: $service, $slot, $version, $window, $step, and any extra label given to the provider.",
  );

export const analysisMetricSpecSchema = z
  .object({
    ...metricConfigShape,
    type: metricTypeSchema,
    prometheus: prometheusQueriesSchema.optional(),
  })
  .strict();

export type AnalysisMetricSpec = z.infer<typeof analysisMetricSpecSchema>;

/** The default metrics: the reference services' `http_requests_total` and `http_request_duration_seconds`. */
export const DEFAULT_ANALYSIS_METRICS: AnalysisMetricSpec[] = [
  { name: "errors", type: "ratio", direction: "increase", tolerance: 0.1, critical: true },
  {
    name: "latency",
    type: "samples",
    direction: "increase",
    tolerance: 0.1,
    critical: false,
    minSamples: 10,
  },
];

export const analysisSpecSchema = z
  .object({
    interval: durationSchema.default(60).describe('Time between measurements (seconds or "1m").'),
    count: wholeAtLeast(1)
      .default(5)
      .describe("Number of measurements; the analysis ends after the last one."),
    failureLimit: wholeAtLeast(0)
      .default(0)
      .describe("Failed measurements tolerated; one more fails the analysis."),
    inconclusiveLimit: wholeAtLeast(0)
      .default(0)
      .describe("Inconclusive measurements tolerated (interval windows only)."),
    consecutiveErrorLimit: wholeAtLeast(0)
      .default(4)
      .describe(
        "Consecutive provider errors tolerated; one more fails the analysis (as in Argo Rollouts).",
      ),
    minSamples: wholeAtLeast(1)
      .default(JUDGE_DEFAULTS.minSamples)
      .describe("Minimum requests (or values) per slot before a metric can pass."),
    alpha: z
      .number()
      .gt(0, { error: "must be between 0 and 1 (exclusive)" })
      .lt(1, { error: "must be between 0 and 1 (exclusive)" })
      .default(0.01)
      .describe(
        "False-failure budget of the whole analysis, spent over its measurements and metrics.",
      ),
    window: z
      .enum(["cumulative", "interval"])
      .default("cumulative")
      .describe(
        "'cumulative': each measurement judges everything since the analysis started (sequential test); 'interval': each judges only its own interval (Argo-style independent measurements).",
      ),
    maxFailedMetrics: wholeAtLeast(0)
      .default(0)
      .describe("Non-critical metrics that may fail while a measurement still passes."),
    metrics: z.array(analysisMetricSpecSchema).min(1).default(DEFAULT_ANALYSIS_METRICS),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.metrics.forEach((m, i) => {
      if (seen.has(m.name))
        ctx.addIssue({
          code: "custom",
          path: ["metrics", i, "name"],
          message: `"${m.name}" is used twice; metric names must be unique`,
        });
      seen.add(m.name);
    });
  });

export type AnalysisSpec = z.output<typeof analysisSpecSchema>;
export type AnalysisSpecInput = z.input<typeof analysisSpecSchema>;

/** Dotted path of a zod issue, e.g. `metrics[0].canary.bad`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(root)" : out;
}

/** One line per issue: `path: message`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`);
}

/** Parses `slipway:canary.analysis`, throwing an Error whose message names every bad key. */
export function parseAnalysisSpec(
  value: unknown,
  prefix = "slipway:canary.analysis",
): AnalysisSpec {
  const result = analysisSpecSchema.safeParse(value ?? {});
  if (!result.success) {
    throw new Error(
      formatIssues(result.error)
        .map((line) => `${prefix}.${line}`)
        .join("\n"),
    );
  }
  return result.data;
}
