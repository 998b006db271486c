import {
  attachObservations,
  judge,
  type JudgeResult,
  type RatioCounts,
  type Verdict,
} from "./judge";
import { ProviderError } from "./providers/errors";
import { groupSequentialBoundaries, normalSf } from "./stats";
import type { AnalysisSpec } from "./spec";

/**
 * Run-level semantics after Argo Rollouts' AnalysisRun: a measurement every
 * `interval`, `count` measurements, `failureLimit`, `inconclusiveLimit`,
 * `consecutiveErrorLimit`. The clock and sleep are injected, so tests (and the
 * benchmark) run instantly.
 */

export interface AnalysisWindow {
  start: Date;
  end: Date;
}

/** What a provider returns for one window, keyed by metric name. */
export type MetricInputs = Record<
  string,
  { baseline?: RatioCounts | number[]; canary?: RatioCounts | number[] }
>;

export type MeasurementPhase = Verdict | "error";

export interface Measurement {
  /** 1-based. */
  index: number;
  window: AnalysisWindow;
  phase: MeasurementPhase;
  /** False-failure budget spent on this measurement. */
  alpha: number;
  result?: JudgeResult;
  error?: { kind: string; message: string };
}

export interface AnalysisOutcome {
  verdict: Verdict;
  reasons: string[];
  measurements: Measurement[];
  counts: Record<MeasurementPhase, number>;
}

export interface RunAnalysisOptions {
  spec: AnalysisSpec;
  fetch: (window: AnalysisWindow) => Promise<MetricInputs>;
  /** Milliseconds since the epoch; defaults to Date.now. */
  now?: () => number;
  /** Defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Hears each measurement as it is taken; awaited (the release records it before the next). */
  onMeasurement?: (measurement: Measurement) => unknown;
  signal?: AbortSignal;
}

/**
 * Per-measurement alpha, for a judge that applies Holm's procedure across
 * `metrics` comparisons. Cumulative windows look at growing data again and
 * again, so each metric's share alpha/metrics is spent over the looks with an
 * O'Brien-Fleming-type function and exact group-sequential boundaries: almost
 * nothing on early looks (only a gross regression stops a step early), most on
 * the last. Independent interval windows split alpha evenly (Bonferroni).
 * Either way a run's false-failure rate stays at or below `alpha`.
 */
export function alphaForMeasurement(
  index: number,
  count: number,
  alpha: number,
  window: AnalysisSpec["window"],
  metrics = 1,
): number {
  if (window === "interval") return alpha / count;
  const m = Math.max(1, metrics);
  return m * normalSf(groupSequentialBoundaries(count, alpha / m)[index - 1]);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function runAnalysis(options: RunAnalysisOptions): Promise<AnalysisOutcome> {
  const { spec } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const intervalMs = spec.interval * 1000;
  const startedAt = now();
  const measurements: Measurement[] = [];
  const counts: Record<MeasurementPhase, number> = { pass: 0, fail: 0, inconclusive: 0, error: 0 };
  let consecutiveErrors = 0;
  let lastJudged: Measurement | undefined;

  const finish = (verdict: Verdict, reasons: string[]): AnalysisOutcome => ({
    verdict,
    reasons,
    measurements,
    counts,
  });

  for (let index = 1; index <= spec.count; index++) {
    if (options.signal?.aborted)
      return finish("inconclusive", [`analysis aborted after ${measurements.length} measurements`]);
    await sleep(intervalMs);
    const end = now();
    const window: AnalysisWindow =
      spec.window === "cumulative"
        ? { start: new Date(startedAt), end: new Date(end) }
        : { start: new Date(end - intervalMs), end: new Date(end) };
    const alpha = alphaForMeasurement(
      index,
      spec.count,
      spec.alpha,
      spec.window,
      spec.metrics.length,
    );
    const measurement: Measurement = { index, window, phase: "error", alpha };

    try {
      const data = await options.fetch(window);
      const result = judge(attachObservations(spec.metrics, data), {
        alpha,
        minSamples: spec.minSamples,
        maxFailedMetrics: spec.maxFailedMetrics,
      });
      measurement.phase = result.verdict;
      measurement.result = result;
      consecutiveErrors = 0;
      lastJudged = measurement;
    } catch (err) {
      measurement.phase = "error";
      measurement.error = {
        kind: err instanceof ProviderError ? err.kind : "error",
        message: err instanceof Error ? err.message : String(err),
      };
      consecutiveErrors++;
    }
    measurements.push(measurement);
    counts[measurement.phase]++;
    await options.onMeasurement?.(measurement);

    if (counts.fail > spec.failureLimit) {
      return finish("fail", [
        `${counts.fail} failed measurement${counts.fail > 1 ? "s" : ""}, more than failureLimit ${spec.failureLimit}`,
        ...measurement.result!.reasons,
      ]);
    }
    if (consecutiveErrors > spec.consecutiveErrorLimit) {
      return finish("fail", [
        `${consecutiveErrors} consecutive provider errors, more than consecutiveErrorLimit ${spec.consecutiveErrorLimit}: metrics could not be read, so the canary cannot be shown healthy`,
        `last error: ${measurement.error!.message}`,
      ]);
    }
    // With cumulative windows an early inconclusive look (not enough data yet)
    // is superseded by the next one; only independent windows count them.
    if (spec.window === "interval" && counts.inconclusive > spec.inconclusiveLimit) {
      return finish("inconclusive", [
        `${counts.inconclusive} inconclusive measurements, more than inconclusiveLimit ${spec.inconclusiveLimit}`,
        ...measurement.result!.reasons,
      ]);
    }
  }

  if (!lastJudged) {
    return finish("inconclusive", [
      `no measurement could be judged: ${counts.error} provider errors`,
    ]);
  }
  if (spec.window === "cumulative") {
    // The last judged look holds all the data, so it decides: even a failure
    // that failureLimit let through, since no later look can outweigh it.
    const verdict = lastJudged.phase as Verdict;
    const reasons = [
      `measurement ${lastJudged.index} of ${spec.count} (all data since the start) is ${verdict}`,
      ...lastJudged.result!.reasons,
    ];
    if (verdict === "inconclusive" && spec.inconclusiveLimit > 0) {
      reasons.push(
        "inconclusiveLimit does not apply to cumulative windows: the last look has all the data",
      );
    }
    return finish(verdict, reasons);
  }
  if (counts.pass === 0) {
    return finish("inconclusive", [
      `no measurement passed (${counts.inconclusive} inconclusive, ${counts.error} errors)`,
    ]);
  }
  return finish("pass", [
    `${counts.pass} of ${spec.count} measurements passed (${counts.fail} failed, limit ${spec.failureLimit}; ${counts.inconclusive} inconclusive, limit ${spec.inconclusiveLimit}; ${counts.error} errors)`,
  ]);
}
