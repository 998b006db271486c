/**
 * The CloudWatch provider against moto's AWS API emulator (PyPI `moto[server]`):
 * the test publishes ALB target-group metrics with PutMetricData through the
 * real SDK client, and the provider reads them back with GetMetricData.
 *
 * What moto (5.x) really supports, checked here rather than assumed:
 *   - GetMetricData with Stat Sum / Average / Minimum / Maximum / SampleCount,
 *     including datapoints published as Values + Counts;
 *   - NOT percentiles: Stat "p99" makes moto answer HTTP 500 (it computes None
 *     and fails to serialise it), and GetMetricStatistics accepts
 *     ExtendedStatistics but returns datapoints without them.
 * So the judge is exercised with latencyStat "Average" (the provider's default
 * is p99, which real CloudWatch serves), and the p99 path is asserted to
 * surface moto's failure as a ProviderError rather than as data.
 */
import {
  CloudWatchClient,
  PutMetricDataCommand,
  type MetricDatum,
} from "@aws-sdk/client-cloudwatch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachObservations, judge } from "../../src/analysis/judge";
import {
  createCloudWatchProvider,
  type CloudWatchProviderOptions,
} from "../../src/analysis/providers/cloudwatch";
import { ProviderError } from "../../src/analysis/providers/errors";
import type { AnalysisWindow } from "../../src/analysis/run";
import { analysisSpecSchema } from "../../src/analysis/spec";
import { freePort, requireCommand, type Started, startProcess, waitFor } from "./servers";

const LOAD_BALANCER = "app/shop-staging/50dc6c495c0c9188";
const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
const MINUTES = 12;

let moto: Started | undefined;
let endpoint = "";
let window: AnalysisWindow;

const spec = analysisSpecSchema.parse({
  count: 1,
  alpha: 0.001,
  minSamples: 500,
  metrics: [
    { name: "errors", type: "ratio", direction: "increase", tolerance: 0.1, critical: true },
    { name: "latency", type: "samples", direction: "increase", tolerance: 0.1, minSamples: 8 },
  ],
});

interface TargetGroupTraffic {
  targetGroup: string;
  requestsPerMinute: number;
  errorRate: number;
  latencyScale: number;
}

/** One minute of ALB metrics: requests, 5xx (omitted when zero, as ALB does), and a latency distribution. */
function minuteOfMetrics(t: TargetGroupTraffic, minute: number, at: Date): MetricDatum[] {
  const dims = [
    { Name: "TargetGroup", Value: t.targetGroup },
    { Name: "LoadBalancer", Value: LOAD_BALANCER },
  ];
  const jitter = 1 + 0.03 * Math.sin(minute * 2.7 + t.targetGroup.length);
  const errors = Math.round(t.requestsPerMinute * t.errorRate * (1 + 0.2 * Math.cos(minute * 1.3)));
  const n = t.requestsPerMinute;
  const data: MetricDatum[] = [
    { MetricName: "RequestCount", Dimensions: dims, Timestamp: at, Value: n, Unit: "Count" },
    {
      MetricName: "TargetResponseTime",
      Dimensions: dims,
      Timestamp: at,
      Values: [0.05, 0.08, 0.12, 0.3, 0.9].map((v) => v * t.latencyScale * jitter),
      Counts: [0.3, 0.4, 0.2, 0.09, 0.01].map((f) => Math.round(f * n)),
      Unit: "Seconds",
    },
  ];
  if (errors > 0)
    data.push({
      MetricName: "HTTPCode_Target_5XX_Count",
      Dimensions: dims,
      Timestamp: at,
      Value: errors,
      Unit: "Count",
    });
  return data;
}

const groups = {
  blue: "targetgroup/shop-blue/73e2d6bc24d8a067",
  goodGreen: "targetgroup/shop-green/aa11bb22cc33dd44",
  badGreen: "targetgroup/shop-green-bad/ee55ff66aa77bb88",
};

const provider = (green: string, extra: Partial<CloudWatchProviderOptions> = {}) =>
  createCloudWatchProvider({
    endpoint,
    region: "us-east-1",
    credentials,
    maxAttempts: 1,
    loadBalancer: LOAD_BALANCER,
    targetGroups: { blue: groups.blue, green },
    stableSlot: "blue",
    candidateSlot: "green",
    latencyStat: "Average",
    ...extra,
  });

beforeAll(async () => {
  const command = requireCommand("moto_server", "PyPI moto[server]");
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  moto = startProcess(command, ["-H", "127.0.0.1", "-p", String(port)]);
  await waitFor("moto_server", async () => (await fetch(`${endpoint}/moto-api/`)).ok, 60_000, moto);

  const client = new CloudWatchClient({
    region: "us-east-1",
    endpoint,
    credentials,
    maxAttempts: 1,
  });
  const start = new Date(Math.floor(Date.now() / 60_000) * 60_000 - MINUTES * 60_000);
  const traffic: TargetGroupTraffic[] = [
    { targetGroup: groups.blue, requestsPerMinute: 3000, errorRate: 0.01, latencyScale: 1 },
    { targetGroup: groups.goodGreen, requestsPerMinute: 300, errorRate: 0.01, latencyScale: 1 },
    { targetGroup: groups.badGreen, requestsPerMinute: 300, errorRate: 0.05, latencyScale: 1.5 },
  ];
  for (let minute = 0; minute < MINUTES; minute++) {
    const at = new Date(start.getTime() + minute * 60_000 + 5_000);
    await client.send(
      new PutMetricDataCommand({
        Namespace: "AWS/ApplicationELB",
        MetricData: traffic.flatMap((t) => minuteOfMetrics(t, minute, at)),
      }),
    );
  }
  client.destroy();
  window = { start, end: new Date(start.getTime() + MINUTES * 60_000) };
});

afterAll(async () => {
  await moto?.stop();
});

describe("CloudWatch provider (moto emulator)", () => {
  it("reads RequestCount / 5XX sums and per-period TargetResponseTime for each slot's target group", async () => {
    const data = await provider(groups.goodGreen)(window);
    expect(data.errors).toEqual({
      baseline: { total: 3000 * MINUTES, bad: expect.any(Number) },
      canary: { total: 300 * MINUTES, bad: expect.any(Number) },
    });
    const errors = data.errors as { baseline: { bad: number }; canary: { bad: number } };
    expect(errors.baseline.bad / (3000 * MINUTES)).toBeCloseTo(0.01, 2);
    const latency = data.latency as { baseline: number[]; canary: number[] };
    expect(latency.baseline).toHaveLength(MINUTES);
    expect(latency.canary).toHaveLength(MINUTES);
    for (const v of latency.baseline) expect(v).toBeGreaterThan(0.09);
  });

  it("passes a healthy candidate and fails a bad one", async () => {
    const good = judge(attachObservations(spec.metrics, await provider(groups.goodGreen)(window)), {
      alpha: spec.alpha,
      minSamples: spec.minSamples,
    });
    expect(good.verdict, good.reasons.join("\n")).toBe("pass");
    const bad = judge(attachObservations(spec.metrics, await provider(groups.badGreen)(window)), {
      alpha: spec.alpha,
      minSamples: spec.minSamples,
    });
    expect(bad.verdict).toBe("fail");
    expect(bad.metrics.map((m) => [m.name, m.verdict])).toEqual([
      ["errors", "fail"],
      ["latency", "fail"],
    ]);
  });

  it("a target group without datapoints is an empty-result ProviderError", async () => {
    const err = await provider("targetgroup/nothing-here/0000000000000000")(window).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: "cloudwatch", kind: "empty" });
    expect((err as Error).message).toMatch(
      /no RequestCount datapoints for target group targetgroup\/nothing-here/,
    );
  });

  it("p99 (the default latencyStat) is not implemented by moto: its HTTP 500 becomes a ProviderError, never data", async () => {
    const err = await provider(groups.goodGreen, { latencyStat: undefined })(window).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: "http" });
    expect((err as Error).message).toMatch(/HTTP 500/);
  });

  it("an unreachable endpoint is a ProviderError", async () => {
    const closed = await freePort();
    const err = await provider(groups.goodGreen, { endpoint: `http://127.0.0.1:${closed}` })(
      window,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: "unreachable" });
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});
