import type { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { createCloudWatchProvider } from "../analysis/providers/cloudwatch";
import type { AnalysisWindow, MetricInputs } from "../analysis/run";
import type { AnalysisSpec } from "../analysis/spec";
import type { Slot } from "../domain";
import type { AwsStageOutputs } from "../contract/outputs";
import type { AwsClientSettings } from "./client";

/**
 * The analysis of an AWS stage reads the ALB's own metrics for the two target
 * groups the stack created (dimensions from `outputs.aws`), judged by the same
 * judge with the same limits as on Kubernetes:
 *   the ratio metric   ← HTTPCode_Target_5XX_Count / RequestCount (sums per window)
 *   the samples metric ← TargetResponseTime at the stage's latency statistic, one value per minute
 */

export interface CloudWatchMetricNames {
  errors: string;
  latency: string;
}

/**
 * Pure: which of the spec's metrics CloudWatch serves. The ALB publishes one
 * error ratio and one latency per target group, so a spec may name at most one
 * metric of each type, without PromQL of its own. Throws naming the metrics
 * that CloudWatch cannot serve.
 */
export function cloudWatchMetricNames(spec: AnalysisSpec): CloudWatchMetricNames {
  const problems: string[] = [];
  const byType = (type: "ratio" | "samples") => spec.metrics.filter((m) => m.type === type);
  const ratio = byType("ratio");
  const samples = byType("samples");
  if (ratio.length > 1)
    problems.push(
      `ratio metrics ${ratio.map((m) => m.name).join(", ")}: CloudWatch gives one (HTTPCode_Target_5XX_Count / RequestCount)`,
    );
  if (samples.length > 1)
    problems.push(
      `samples metrics ${samples.map((m) => m.name).join(", ")}: CloudWatch gives one (TargetResponseTime)`,
    );
  for (const m of spec.metrics)
    if (m.prometheus)
      problems.push(`metric ${m.name} has PromQL queries; an AWS stage reads the ALB's metrics`);
  if (problems.length > 0)
    throw new Error(`slipway:canary.analysis.metrics on an AWS stage: ${problems.join("; ")}`);
  return {
    errors: ratio[0]?.name ?? "errors",
    latency: samples[0]?.name ?? "latency",
  };
}

/** ALB metrics have one-minute resolution: TargetResponseTime gives one value per minute. */
export const CLOUDWATCH_PERIOD_SECONDS = 60;

/**
 * Pure: why an analysis could never pass on CloudWatch, or undefined. The
 * latency metric's last look holds one value per minute of its window, so a
 * minSamples above that is inconclusive every time: refused up front instead.
 */
export function cloudWatchSampleShortfall(spec: AnalysisSpec, label: string): string | undefined {
  const samples = spec.metrics.find((m) => m.type === "samples");
  if (!samples) return undefined;
  const needed = samples.minSamples ?? spec.minSamples;
  const windowSeconds = spec.window === "cumulative" ? spec.count * spec.interval : spec.interval;
  const available = Math.floor(windowSeconds / CLOUDWATCH_PERIOD_SECONDS);
  if (needed <= available) return undefined;
  return (
    `${label}: metric ${samples.name} needs ${needed} values per slot (minSamples), but TargetResponseTime has one value per minute ` +
    `and the ${spec.window} window spans ${windowSeconds}s (${available} values); set slipway:canary.analysis.metrics[${spec.metrics.indexOf(samples)}].minSamples to at most ${available}, or analyse longer`
  );
}

export interface CloudWatchMetricsArgs {
  stage: AwsStageOutputs;
  settings: AwsClientSettings;
  spec: AnalysisSpec;
  stable: Slot;
  candidate: Slot;
  /** TargetResponseTime statistic: "p99" on AWS (moto has no percentiles, hence configurable). */
  latencyStatistic: string;
  client?: CloudWatchClient;
}

export function cloudWatchMetrics(
  args: CloudWatchMetricsArgs,
): (window: AnalysisWindow) => Promise<MetricInputs> {
  return createCloudWatchProvider({
    loadBalancer: args.stage.loadBalancerDimension,
    targetGroups: {
      blue: args.stage.targetGroups.blue.dimension,
      green: args.stage.targetGroups.green.dimension,
    },
    stableSlot: args.stable,
    candidateSlot: args.candidate,
    periodSeconds: CLOUDWATCH_PERIOD_SECONDS,
    region: args.settings.region,
    endpoint: args.settings.endpoint,
    maxAttempts: args.settings.maxAttempts,
    client: args.client,
    latencyStat: args.latencyStatistic,
    metricNames: cloudWatchMetricNames(args.spec),
  });
}
