import {
  CloudWatchClient,
  type CloudWatchClientConfig,
  GetMetricDataCommand,
  type MetricDataQuery,
  type MetricDataResult,
} from "@aws-sdk/client-cloudwatch";
import type { AnalysisWindow, MetricInputs } from "../run";
import { ProviderError } from "./errors";
import type { Slot } from "./prometheus";

/**
 * CloudWatch adapter for ALB target-group metrics (namespace AWS/ApplicationELB,
 * dimensions TargetGroup + LoadBalancer), one GetMetricData call per window:
 *   errors  (ratio):   Sum of HTTPCode_Target_5XX_Count / Sum of RequestCount
 *   latency (samples): TargetResponseTime at `latencyStat` (default p99), one value per period
 * baseline = the stable slot's target group, canary = the candidate's.
 */

export interface CloudWatchProviderOptions {
  /** LoadBalancer dimension value, e.g. "app/shop-prod/50dc6c495c0c9188". */
  loadBalancer: string;
  /** TargetGroup dimension value per slot, e.g. "targetgroup/shop-blue/73e2d6bc24d8a067". */
  targetGroups: Record<Slot, string>;
  stableSlot: Slot;
  candidateSlot: Slot;
  region?: string;
  /** Custom endpoint (an emulator, a VPC endpoint). */
  endpoint?: string;
  credentials?: CloudWatchClientConfig["credentials"];
  maxAttempts?: number;
  /** Use this client instead of building one. */
  client?: CloudWatchClient;
  namespace?: string;
  /** Seconds; ALB metrics have 60-second resolution. Default 60. */
  periodSeconds?: number;
  /** Statistic for latency samples: "p99" (default), "p90", "Average", ... */
  latencyStat?: string;
  /** Names under which the judge knows the two metrics. */
  metricNames?: { errors?: string; latency?: string };
}

const METRICS = {
  requests: "RequestCount",
  errors: "HTTPCode_Target_5XX_Count",
  latency: "TargetResponseTime",
} as const;

export function createCloudWatchProvider(
  options: CloudWatchProviderOptions,
): (window: AnalysisWindow) => Promise<MetricInputs> {
  if (options.stableSlot === options.candidateSlot) {
    throw new Error(
      `createCloudWatchProvider: stableSlot and candidateSlot are both "${options.stableSlot}"; they must differ`,
    );
  }
  const client =
    options.client ??
    new CloudWatchClient({
      region: options.region ?? "us-east-1",
      endpoint: options.endpoint,
      credentials: options.credentials,
      maxAttempts: options.maxAttempts ?? 3,
    });
  const namespace = options.namespace ?? "AWS/ApplicationELB";
  const period = options.periodSeconds ?? 60;
  const latencyStat = options.latencyStat ?? "p99";
  const names = {
    errors: options.metricNames?.errors ?? "errors",
    latency: options.metricNames?.latency ?? "latency",
  };

  const query = (id: string, metricName: string, slot: Slot, stat: string): MetricDataQuery => ({
    Id: id,
    ReturnData: true,
    MetricStat: {
      Metric: {
        Namespace: namespace,
        MetricName: metricName,
        Dimensions: [
          { Name: "TargetGroup", Value: options.targetGroups[slot] },
          { Name: "LoadBalancer", Value: options.loadBalancer },
        ],
      },
      Period: period,
      Stat: stat,
    },
  });

  async function getMetricData(
    queries: MetricDataQuery[],
    window: AnalysisWindow,
  ): Promise<Map<string, MetricDataResult>> {
    const results = new Map<string, MetricDataResult>();
    let nextToken: string | undefined;
    do {
      let page;
      try {
        page = await client.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries,
            StartTime: window.start,
            EndTime: window.end,
            ScanBy: "TimestampAscending",
            NextToken: nextToken,
          }),
        );
      } catch (err) {
        throw toProviderError(err, options.endpoint);
      }
      for (const r of page.MetricDataResults ?? []) {
        if (r.StatusCode && r.StatusCode !== "Complete" && r.StatusCode !== "PartialData") {
          throw new ProviderError(
            "cloudwatch",
            "http",
            `GetMetricData ${r.Id}: status ${r.StatusCode} ${(page.Messages ?? []).map((m) => m.Value).join("; ")}`,
          );
        }
        const seen = results.get(r.Id!);
        if (seen) {
          seen.Values = [...(seen.Values ?? []), ...(r.Values ?? [])];
          seen.Timestamps = [...(seen.Timestamps ?? []), ...(r.Timestamps ?? [])];
        } else {
          results.set(r.Id!, { ...r });
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return results;
  }

  return async (window: AnalysisWindow): Promise<MetricInputs> => {
    const slots: Slot[] = [options.stableSlot, options.candidateSlot];
    const queries = slots.flatMap((slot) => [
      query(`requests_${slot}`, METRICS.requests, slot, "Sum"),
      query(`errors_${slot}`, METRICS.errors, slot, "Sum"),
      query(`latency_${slot}`, METRICS.latency, slot, latencyStat),
    ]);
    const results = await getMetricData(queries, window);
    const values = (id: string) =>
      (results.get(id)?.Values ?? []).filter(
        (v): v is number => typeof v === "number" && Number.isFinite(v),
      );

    const counts = (slot: Slot) => {
      const requests = values(`requests_${slot}`);
      if (requests.length === 0) {
        throw new ProviderError(
          "cloudwatch",
          "empty",
          `no ${METRICS.requests} datapoints for target group ${options.targetGroups[slot]} (${slot}) on ${options.loadBalancer} between ${window.start.toISOString()} and ${window.end.toISOString()}`,
        );
      }
      const total = Math.round(requests.reduce((a, b) => a + b, 0));
      // ALB publishes HTTPCode_Target_5XX_Count only for periods with 5xx responses, so none means zero.
      const bad = Math.round(values(`errors_${slot}`).reduce((a, b) => a + b, 0));
      return { bad: Math.min(bad, total), total };
    };
    const latency = (slot: Slot) => {
      const v = values(`latency_${slot}`);
      if (v.length === 0) {
        throw new ProviderError(
          "cloudwatch",
          "empty",
          `no ${METRICS.latency} ${latencyStat} datapoints for target group ${options.targetGroups[slot]} (${slot}) on ${options.loadBalancer}`,
        );
      }
      return v;
    };

    return {
      [names.errors]: {
        baseline: counts(options.stableSlot),
        canary: counts(options.candidateSlot),
      },
      [names.latency]: {
        baseline: latency(options.stableSlot),
        canary: latency(options.candidateSlot),
      },
    };
  };
}

function toProviderError(err: unknown, endpoint: string | undefined): ProviderError {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: { code?: string };
  };
  const status = e.$metadata?.httpStatusCode;
  const where = endpoint ?? "CloudWatch";
  if (status !== undefined) {
    return new ProviderError(
      "cloudwatch",
      "http",
      `${where} answered HTTP ${status}: ${e.name ?? "error"}: ${e.message ?? ""}`.trim(),
      { cause: err },
    );
  }
  const code = e.code ?? e.cause?.code ?? e.name;
  return new ProviderError(
    "cloudwatch",
    "unreachable",
    `${where} is unreachable (${code}: ${e.message ?? String(err)})`,
    { cause: err },
  );
}
