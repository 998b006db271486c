import type { Step } from "../config/schema";

/**
 * The rehearsal's timings and statistics in one place: the step plan written
 * into the scratch stack file, the analysis, the load, and the faults of the
 * bad release. The judge itself is the pipeline's, untouched.
 *
 * Sizing (see docs/rehearsal.md for the arithmetic):
 * - errors: the reference services answer no 5xx when healthy, so a pass can
 *   never rule out a *relative* doubling of a zero ratio; it rules out an
 *   absolute worsening of `absoluteTolerance` instead. With zero errors on both
 *   sides the upper 95% bound of the difference is about 2.6 / n, so 1
 *   percentage point needs ~300 candidate requests in an analysis: at 20%
 *   weight and 50 requests/s, 30 s.
 * - latency: a samples metric, one value (mean latency) per Prometheus step;
 *   `minSamples` 10 per slot needs an analysis window longer than 10 steps.
 *   Sub-millisecond means move by tens of percent when the Pulumi engine takes
 *   the CPUs, so a shift under `absoluteTolerance` (5 ms) counts as immaterial.
 */
export interface RehearsalProfile {
  name: string;
  /** Requests per second over both slots. */
  loadRate: number;
  steps: Step[];
  analysis: {
    count: number;
    interval: string;
    minSamples: number;
    errorsAbsoluteTolerance: number;
    latencyAbsoluteTolerance: number;
  };
  /** Resolution (and rate window) of the latency samples: at least 2 scrape intervals. */
  stepSeconds: number;
  scrapeIntervalSeconds: number;
  scaleDownDelaySeconds: number;
  progressDeadlineSeconds: number;
  bad: { errorRatio: number; latencyMs: number };
}

const FAULTS = { errorRatio: 0.15, latencyMs: 80 };

/** `npm start`: each analysis 3 looks 10 s apart (30 s of data), at 20% and at 50%. */
export const DEMO: RehearsalProfile = {
  name: "demo",
  loadRate: 60,
  steps: [
    { setWeight: 20 },
    { analysis: { count: 3, interval: "10s" } },
    { setWeight: 50 },
    { analysis: { count: 3, interval: "10s" } },
  ],
  analysis: {
    count: 3,
    interval: "10s",
    minSamples: 100,
    errorsAbsoluteTolerance: 0.01,
    latencyAbsoluteTolerance: 0.005,
  },
  stepSeconds: 2,
  scrapeIntervalSeconds: 1,
  scaleDownDelaySeconds: 5,
  progressDeadlineSeconds: 900,
  bad: FAULTS,
};

/**
 * The engine test: the same plan with one look less per analysis and more load,
 * so that each analysis still has its ~300 candidate requests at 20% and 11
 * latency values per slot (22 s windows of 2 s steps).
 */
export const QUICK: RehearsalProfile = {
  ...DEMO,
  name: "quick",
  loadRate: 100,
  steps: [
    { setWeight: 20 },
    { analysis: { count: 2, interval: "11s" } },
    { setWeight: 50 },
    { analysis: { count: 2, interval: "11s" } },
  ],
  analysis: { ...DEMO.analysis, count: 2, interval: "11s" },
  scaleDownDelaySeconds: 1,
};

/**
 * The engine test's second runtime: QUICK with its first step only (20%, one analysis), so that
 * a release promoted and one rolled back on the cluster cost one update and one analysis less.
 */
export const QUICK_ONE_STEP: RehearsalProfile = {
  ...QUICK,
  name: "quick-one-step",
  steps: QUICK.steps.slice(0, 2),
};

export const PROFILES: Record<string, RehearsalProfile> = { demo: DEMO, quick: QUICK };

/** The analysis block of the stack file: the default metrics with the tolerances above. */
export function analysisConfig(profile: RehearsalProfile): Record<string, unknown> {
  const a = profile.analysis;
  return {
    count: a.count,
    interval: a.interval,
    minSamples: a.minSamples,
    failureLimit: 0,
    window: "cumulative",
    metrics: [
      {
        name: "errors",
        type: "ratio",
        direction: "increase",
        tolerance: 0.1,
        absoluteTolerance: a.errorsAbsoluteTolerance,
        critical: true,
      },
      {
        name: "latency",
        type: "samples",
        direction: "increase",
        tolerance: 0.1,
        absoluteTolerance: a.latencyAbsoluteTolerance,
        minSamples: 10,
      },
    ],
  };
}
