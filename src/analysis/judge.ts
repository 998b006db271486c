import {
  type Alternative,
  fisherExactTest,
  hodgesLehmann,
  holmAdjust,
  mannWhitneyU,
  median,
  normalQuantile,
  oneProportionZTest,
  quantile,
  twoProportionZTest,
} from "./stats";
import { type Direction, JUDGE_DEFAULTS, type MetricType, type Threshold } from "./spec";

/**
 * The canary judge: compares the candidate slot (canary) with the stable slot
 * (baseline) metric by metric, then combines the metric verdicts into one.
 * Pure: no clock, no I/O. See docs/analysis.md for the methods.
 */

export type Verdict = "pass" | "fail" | "inconclusive";

export interface RatioCounts {
  bad: number;
  total: number;
}

/** Data for one metric; `canary` undefined means the provider found none. */
export type MetricObservation =
  | { type: "ratio"; baseline?: RatioCounts; canary?: RatioCounts }
  | { type: "samples"; baseline?: number[]; canary?: number[] };

export interface MetricConfig {
  name: string;
  type: MetricType;
  direction?: Direction;
  tolerance?: number;
  absoluteTolerance?: number;
  margin?: number;
  threshold?: Threshold;
  critical?: boolean;
  minSamples?: number;
}

export type JudgeMetric = MetricConfig & MetricObservation;

export interface JudgeOptions {
  /** Family-wise false-failure rate across metrics for this judgement. */
  alpha?: number;
  minSamples?: number;
  maxFailedMetrics?: number;
}

export interface SlotSummary {
  /** Ratio: requests; samples: number of values. */
  n: number;
  /** Ratio metrics. */
  bad?: number;
  rate?: number;
  /** Samples metrics. */
  median?: number;
}

export interface MetricVerdict {
  name: string;
  type: MetricType;
  direction: Direction;
  critical: boolean;
  verdict: Verdict;
  reason: string;
  baseline?: SlotSummary;
  canary?: SlotSummary;
  /** Raw p-value of the comparison with the baseline, and Holm-adjusted across metrics. */
  p?: number;
  pAdjusted?: number;
  alpha: number;
  /** Canary minus baseline: ratio difference, or Hodges-Lehmann shift for samples. */
  effect?: number;
  /** effect relative to the baseline (ratio of rates - 1, or shift / baseline median). */
  relativeEffect?: number;
  /** Confidence interval of the shift (samples). */
  effectInterval?: [number, number];
  tolerance: number;
  /** Non-inferiority margin a pass has to rule out. */
  margin: number;
  /**
   * Worst relative change in the bad direction still compatible with the data
   * (one-sided, passConfidence); a pass needs it within the margin.
   */
  worstCase?: number;
  test?: string;
  threshold?: { bound: "max" | "min"; limit: number; value: number; p?: number; breached: boolean };
}

export interface JudgeResult {
  verdict: Verdict;
  reasons: string[];
  metrics: MetricVerdict[];
}

interface Pending {
  verdict: MetricVerdict;
  /** Set when a comparison with the baseline was computed: decided after the Holm step. */
  decide?: (pAdjusted: number) => void;
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const signedPct = (v: number) =>
  Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)}%` : v > 0 ? "+∞" : "-∞";
const fmtP = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
const fmtAlpha = (a: number) => (a < 1e-4 ? a.toExponential(1) : String(Number(a.toPrecision(2))));
const fmtNum = (v: number) =>
  Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : Number(v.toPrecision(4)).toString();

function alternativeOf(direction: Direction): Alternative {
  return direction === "increase" ? "greater" : direction === "decrease" ? "less" : "two-sided";
}

/** Whether a change is worse than the tolerances allow, in the metric's bad direction. */
function beyondTolerance(
  direction: Direction,
  effect: number,
  relative: number,
  tolerance: number,
  absolute: number,
): boolean {
  const up = effect > absolute && relative > tolerance;
  const down = effect < -absolute && relative < -tolerance;
  return direction === "increase" ? up : direction === "decrease" ? down : up || down;
}

/**
 * Whether the worst plausible change (confidence bounds lower..upper on the
 * relative change) stays within the margin in the bad direction. A decrease
 * margin mirrors the increase one in ratio terms: margin 1 allows ×2 up or ÷2 down.
 */
function withinMargin(
  direction: Direction,
  bounds: { lower: number; upper: number; absLower: number; absUpper: number },
  margin: number,
  absoluteTolerance: number,
): { ok: boolean; worst: number } {
  const down = 1 / (1 + margin) - 1;
  // A worst case within the absolute tolerance is immaterial whatever its relative size (baseline near 0).
  const upOk =
    bounds.upper <= margin || (absoluteTolerance > 0 && bounds.absUpper <= absoluteTolerance);
  const downOk =
    bounds.lower >= down || (absoluteTolerance > 0 && bounds.absLower >= -absoluteTolerance);
  if (direction === "increase") return { ok: upOk, worst: bounds.upper };
  if (direction === "decrease") return { ok: downOk, worst: bounds.lower };
  return { ok: upOk && downOk, worst: upOk ? bounds.lower : bounds.upper };
}

const Z_PASS = normalQuantile(JUDGE_DEFAULTS.passConfidence);
/** 0.1 percentage point: an error-ratio increase below it is immaterial for a pass. */
export const RATIO_MARGIN_FLOOR = 0.001;

function badWord(direction: Direction): string {
  return direction === "increase" ? "increase" : direction === "decrease" ? "decrease" : "change";
}

export function judge(metrics: readonly JudgeMetric[], options: JudgeOptions = {}): JudgeResult {
  const alpha = options.alpha ?? JUDGE_DEFAULTS.alpha;
  const pending = metrics.map((m) =>
    judgeOne(m, alpha, options.minSamples ?? JUDGE_DEFAULTS.minSamples),
  );

  // Holm-Bonferroni over the metrics that were compared with their baseline.
  const compared = pending.filter((p) => p.decide);
  const adjusted = holmAdjust(compared.map((p) => p.verdict.p as number));
  compared.forEach((p, i) => {
    p.verdict.pAdjusted = adjusted[i];
    p.decide!(adjusted[i]);
  });

  return combine(
    pending.map((p) => p.verdict),
    options.maxFailedMetrics ?? JUDGE_DEFAULTS.maxFailedMetrics,
  );
}

/** Run-level verdict from metric verdicts. */
export function combine(verdicts: MetricVerdict[], maxFailedMetrics: number): JudgeResult {
  const failedCritical = verdicts.filter((v) => v.verdict === "fail" && v.critical);
  const failedOther = verdicts.filter((v) => v.verdict === "fail" && !v.critical);
  const inconclusive = verdicts.filter((v) => v.verdict === "inconclusive");
  const reasons: string[] = [];
  let verdict: Verdict;
  if (failedCritical.length > 0) {
    verdict = "fail";
    for (const v of failedCritical) reasons.push(`critical metric ${v.name} failed: ${v.reason}`);
    for (const v of failedOther) reasons.push(`metric ${v.name} failed: ${v.reason}`);
  } else if (failedOther.length > maxFailedMetrics) {
    verdict = "fail";
    for (const v of failedOther) reasons.push(`metric ${v.name} failed: ${v.reason}`);
    if (maxFailedMetrics > 0)
      reasons.push(
        `${failedOther.length} metrics failed, more than maxFailedMetrics ${maxFailedMetrics}`,
      );
  } else if (inconclusive.length > 0 || verdicts.length === 0) {
    verdict = "inconclusive";
    if (verdicts.length === 0) reasons.push("no metrics to judge");
    for (const v of inconclusive) reasons.push(`metric ${v.name} is inconclusive: ${v.reason}`);
    for (const v of failedOther)
      reasons.push(
        `metric ${v.name} failed (tolerated by maxFailedMetrics ${maxFailedMetrics}): ${v.reason}`,
      );
  } else {
    verdict = "pass";
    for (const v of failedOther)
      reasons.push(
        `metric ${v.name} failed (tolerated by maxFailedMetrics ${maxFailedMetrics}): ${v.reason}`,
      );
    reasons.push(`all ${verdicts.length - failedOther.length} metrics passed`);
  }
  return { verdict, reasons, metrics: verdicts };
}

function judgeOne(metric: JudgeMetric, alpha: number, defaultMinSamples: number): Pending {
  const direction = metric.direction ?? "increase";
  const tolerance = metric.tolerance ?? JUDGE_DEFAULTS.tolerance;
  const verdict: MetricVerdict = {
    name: metric.name,
    type: metric.type,
    direction,
    critical: metric.critical ?? false,
    verdict: "inconclusive",
    reason: "",
    alpha,
    tolerance,
    margin:
      metric.margin ??
      (metric.type === "ratio" ? JUDGE_DEFAULTS.ratioMargin : JUDGE_DEFAULTS.samplesMargin),
  };
  const minSamples = metric.minSamples ?? defaultMinSamples;
  return metric.type === "ratio"
    ? judgeRatio(metric, verdict, alpha, minSamples)
    : judgeSamples(metric as Extract<JudgeMetric, { type: "samples" }>, verdict, alpha, minSamples);
}

function judgeRatio(
  metric: JudgeMetric & { type: "ratio" },
  v: MetricVerdict,
  alpha: number,
  minSamples: number,
): Pending {
  const { canary, baseline, threshold } = metric;
  const absoluteTolerance = metric.absoluteTolerance ?? JUDGE_DEFAULTS.absoluteTolerance;
  if (canary)
    v.canary = {
      n: canary.total,
      bad: canary.bad,
      rate: canary.total > 0 ? canary.bad / canary.total : undefined,
    };
  if (baseline)
    v.baseline = {
      n: baseline.total,
      bad: baseline.bad,
      rate: baseline.total > 0 ? baseline.bad / baseline.total : undefined,
    };

  if (!canary) return inconclusive(v, "no canary data");
  if (canary.total === 0) return inconclusive(v, "no canary data (0 requests)");
  if (canary.total < minSamples) {
    return inconclusive(
      v,
      `too little data: canary has ${canary.total} requests, needs at least ${minSamples}`,
    );
  }
  const rate = canary.bad / canary.total;

  // Absolute threshold on the canary alone: breached only when significantly beyond the bound.
  let thresholdFail: string | undefined;
  let thresholdDoubt: string | undefined;
  if (threshold) {
    for (const bound of ["max", "min"] as const) {
      const limit = threshold[bound];
      if (limit === undefined) continue;
      const beyond = bound === "max" ? rate > limit : rate < limit;
      if (!beyond) {
        v.threshold ??= { bound, limit, value: rate, breached: false };
        continue;
      }
      const t = oneProportionZTest(
        canary.bad,
        canary.total,
        limit,
        bound === "max" ? "greater" : "less",
      );
      const breached = t.p < alpha;
      v.threshold = { bound, limit, value: rate, p: t.p, breached };
      const words = `canary ratio ${pct(rate)} is ${bound === "max" ? "above max" : "below min"} ${pct(limit)}`;
      if (breached) thresholdFail = `${words} (p=${fmtP(t.p)} < α=${fmtAlpha(alpha)})`;
      else
        thresholdDoubt = `${words} but not significantly (p=${fmtP(t.p)}, ${canary.total} requests)`;
    }
  }

  if (!baseline || baseline.total === 0) {
    if (thresholdFail) return fail(v, thresholdFail);
    if (threshold) {
      if (thresholdDoubt) return inconclusive(v, thresholdDoubt);
      return pass(
        v,
        `canary ratio ${pct(rate)} is within the threshold (no baseline data to compare with)`,
      );
    }
    return inconclusive(v, "no baseline data to compare with");
  }
  if (baseline.total < minSamples) {
    if (thresholdFail) return fail(v, thresholdFail);
    return inconclusive(
      v,
      `too little data: baseline has ${baseline.total} requests, needs at least ${minSamples}`,
    );
  }

  const alternative = alternativeOf(v.direction);
  const test = twoProportionZTest(
    baseline.bad,
    baseline.total,
    canary.bad,
    canary.total,
    alternative,
  );
  // Fisher's exact test whenever it is affordable: the z-test's normal tail is far too
  // optimistic with few events and at the tiny alphas of early looks.
  const exact = baseline.bad + canary.bad <= 1_000_000;
  if (exact)
    test.p = fisherExactTest(baseline.bad, baseline.total, canary.bad, canary.total, alternative).p;
  const baseRate = test.p1;
  const relative = baseRate > 0 ? test.p2 / baseRate - 1 : test.p2 > 0 ? Infinity : 0;
  v.test = exact ? "Fisher exact (two proportions)" : "two-proportion z-test";
  v.p = test.p;
  v.effect = test.difference;
  v.relativeEffect = relative;
  const worse = beyondTolerance(
    v.direction,
    test.difference,
    relative,
    v.tolerance,
    absoluteTolerance,
  );
  const comparison = `canary ${pct(test.p2)} (${canary.bad}/${canary.total}) vs baseline ${pct(baseRate)} (${baseline.bad}/${baseline.total}), ${signedPct(relative)}`;
  // Confidence bounds of the relative change, with Agresti-Caffo's added pseudo-counts so that
  // zero events still leave an honest width.
  const pc = (canary.bad + 1) / (canary.total + 2);
  const pb = (baseline.bad + 1) / (baseline.total + 2);
  const se = Math.sqrt(
    (pc * (1 - pc)) / (canary.total + 2) + (pb * (1 - pb)) / (baseline.total + 2),
  );
  const absLower = pc - pb - Z_PASS * se;
  const absUpper = pc - pb + Z_PASS * se;
  // A relative margin means nothing when the baseline has no errors (its bound stays near +230%
  // at any traffic), so ruling out an increase of RATIO_MARGIN_FLOOR in absolute terms also passes.
  // Failing is unaffected: it still needs a significant increase beyond the tolerances.
  const margin = withinMargin(
    v.direction,
    { lower: absLower / pb, upper: absUpper / pb, absLower, absUpper },
    v.margin,
    Math.max(absoluteTolerance, RATIO_MARGIN_FLOOR),
  );
  v.worstCase = margin.worst;

  return {
    verdict: v,
    decide: decider({
      v,
      alpha,
      thresholdFail,
      thresholdDoubt,
      worse,
      comparison,
      marginOk: margin.ok,
      data: `${canary.total} canary requests`,
    }),
  };
}

function judgeSamples(
  metric: JudgeMetric & { type: "samples" },
  v: MetricVerdict,
  alpha: number,
  minSamples: number,
): Pending {
  const canary = metric.canary ?? [];
  const baseline = metric.baseline ?? [];
  const absoluteTolerance = metric.absoluteTolerance ?? JUDGE_DEFAULTS.absoluteTolerance;
  if (canary.length > 0) v.canary = { n: canary.length, median: median(canary) };
  if (baseline.length > 0) v.baseline = { n: baseline.length, median: median(baseline) };

  if (!metric.canary) return inconclusive(v, "no canary data");
  if (canary.length === 0) return inconclusive(v, "no canary data (0 values)");
  if (canary.length < minSamples) {
    return inconclusive(
      v,
      `too little data: canary has ${canary.length} values, needs at least ${minSamples}`,
    );
  }

  let thresholdFail: string | undefined;
  const threshold = metric.threshold;
  if (threshold) {
    const q = threshold.quantile ?? 0.5;
    const value = quantile(canary, q);
    const label = q === 0.5 ? "median" : `p${fmtNum(q * 100)}`;
    for (const bound of ["max", "min"] as const) {
      const limit = threshold[bound];
      if (limit === undefined) continue;
      const breached = bound === "max" ? value > limit : value < limit;
      if (!v.threshold || breached) v.threshold = { bound, limit, value, breached };
      if (breached)
        thresholdFail = `canary ${label} ${fmtNum(value)} is ${bound === "max" ? "above max" : "below min"} ${fmtNum(limit)}`;
    }
  }

  if (baseline.length === 0) {
    if (thresholdFail) return fail(v, thresholdFail);
    if (threshold)
      return pass(
        v,
        `canary is within the threshold (no baseline comparison: baseline has no data)`,
      );
    return inconclusive(v, "no baseline data to compare with");
  }
  if (baseline.length < minSamples) {
    if (thresholdFail) return fail(v, thresholdFail);
    return inconclusive(
      v,
      `too little data: baseline has ${baseline.length} values, needs at least ${minSamples}`,
    );
  }

  const test = mannWhitneyU(baseline, canary, alternativeOf(v.direction));
  const hl = hodgesLehmann(baseline, canary, 1 - 2 * (1 - JUDGE_DEFAULTS.passConfidence));
  const baseMedian = v.baseline!.median!;
  const relative =
    baseMedian !== 0
      ? hl.estimate / Math.abs(baseMedian)
      : hl.estimate === 0
        ? 0
        : Math.sign(hl.estimate) * Infinity;
  v.test = `Mann-Whitney U (${test.method})`;
  v.p = test.p;
  v.effect = hl.estimate;
  v.relativeEffect = relative;
  v.effectInterval = [hl.lower, hl.upper];
  const worse = beyondTolerance(v.direction, hl.estimate, relative, v.tolerance, absoluteTolerance);
  const scale = Math.abs(baseMedian) || 1;
  const margin = withinMargin(
    v.direction,
    { lower: hl.lower / scale, upper: hl.upper / scale, absLower: hl.lower, absUpper: hl.upper },
    v.margin,
    absoluteTolerance,
  );
  v.worstCase = margin.worst;
  const comparison = `canary median ${fmtNum(v.canary!.median!)} vs baseline ${fmtNum(baseMedian)}, shift ${fmtNum(hl.estimate)} (${signedPct(relative)})`;

  return {
    verdict: v,
    decide: decider({
      v,
      alpha,
      thresholdFail,
      worse,
      comparison,
      marginOk: margin.ok,
      data: `${canary.length} canary values`,
    }),
  };
}

/**
 * The decision once the multiple-comparison adjustment is known, the same for every metric type:
 * thresholds first, then a significant change beyond tolerance fails, an unruled-out margin is
 * inconclusive, anything else passes.
 */
function decider(d: {
  v: MetricVerdict;
  alpha: number;
  thresholdFail?: string;
  thresholdDoubt?: string;
  worse: boolean;
  comparison: string;
  marginOk: boolean;
  data: string;
}): (pAdjusted: number) => void {
  const { v, alpha, comparison } = d;
  return (pAdjusted) => {
    const significant = pAdjusted < alpha;
    if (d.thresholdFail) {
      fail(
        v,
        significant && d.worse
          ? `${d.thresholdFail}; and ${comparison}, p=${fmtP(pAdjusted)}`
          : d.thresholdFail,
      );
    } else if (significant && d.worse) {
      fail(
        v,
        `${comparison}: significant ${badWord(v.direction)} beyond tolerance ${pct(v.tolerance)} (p=${fmtP(pAdjusted)} < α=${fmtAlpha(alpha)})`,
      );
    } else if (d.thresholdDoubt) {
      inconclusive(v, d.thresholdDoubt);
    } else if (!d.marginOk) {
      inconclusive(v, notRuledOut(comparison, v, pAdjusted, d.data));
    } else if (significant) {
      pass(
        v,
        `${comparison}: significant but within tolerance ${pct(v.tolerance)} (p=${fmtP(pAdjusted)})`,
      );
    } else {
      pass(
        v,
        `${comparison}: no significant ${badWord(v.direction)} (p=${fmtP(pAdjusted)} ≥ α=${fmtAlpha(alpha)})`,
      );
    }
  };
}

function notRuledOut(
  comparison: string,
  v: MetricVerdict,
  pAdjusted: number,
  data: string,
): string {
  return (
    `${comparison}: no significant ${badWord(v.direction)} (p=${fmtP(pAdjusted)}), but ${data} cannot yet rule out ` +
    `a change of ${signedPct(v.worstCase!)} (margin ${signedPct(v.direction === "decrease" ? 1 / (1 + v.margin) - 1 : v.margin)}); more data needed`
  );
}

function settle(v: MetricVerdict, verdict: Verdict, reason: string): Pending {
  v.verdict = verdict;
  v.reason = reason;
  return { verdict: v };
}
const pass = (v: MetricVerdict, reason: string) => settle(v, "pass", reason);
const fail = (v: MetricVerdict, reason: string) => settle(v, "fail", reason);
const inconclusive = (v: MetricVerdict, reason: string) => settle(v, "inconclusive", reason);

/**
 * Joins metric configs with the data a provider fetched (keyed by metric
 * name). A metric the provider returned nothing for gets no data, which the
 * judge reports as inconclusive, never as a pass.
 */
export function attachObservations(
  configs: readonly MetricConfig[],
  data: Readonly<
    Record<
      string,
      { baseline?: RatioCounts | number[]; canary?: RatioCounts | number[] } | undefined
    >
  >,
): JudgeMetric[] {
  return configs.map((config) => {
    const observed = data[config.name];
    return { ...config, baseline: observed?.baseline, canary: observed?.canary } as JudgeMetric;
  });
}
