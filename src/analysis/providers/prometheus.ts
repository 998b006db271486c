import type { AnalysisWindow, MetricInputs } from "../run";
import { type AnalysisMetricSpec, DEFAULT_ANALYSIS_METRICS } from "../spec";
import { ProviderError } from "./errors";

/**
 * Prometheus HTTP API adapter: renders a PromQL template per metric and slot,
 * queries `/api/v1/query` (ratio counts over the window, via increase()) or
 * `/api/v1/query_range` (one sample per step), and returns the judge's inputs
 * with baseline = stable slot and canary = candidate slot.
 */

export type Slot = "blue" | "green";

/**
 * Default templates for the reference services: `http_requests_total{service,slot,version,code}`
 * and the histogram `http_request_duration_seconds{service,slot,version}`.
 */
export const PROMETHEUS_TEMPLATES = {
  errorsBad:
    'sum(increase(http_requests_total{service="$service",slot="$slot",code=~"5.."}[$window]))',
  errorsTotal: 'sum(increase(http_requests_total{service="$service",slot="$slot"}[$window]))',
  /**
   * Mean latency of each step. Steps do not overlap (the rate window is the
   * step), so the samples are close to independent, as the rank test assumes.
   */
  latencyMean:
    'sum(rate(http_request_duration_seconds_sum{service="$service",slot="$slot"}[$step])) / sum(rate(http_request_duration_seconds_count{service="$service",slot="$slot"}[$step]))',
  /**
   * p99 of each step. Beware: with very unequal traffic (a 1% canary) a
   * per-step quantile of few requests is not distributed like one of many, so
   * compare slots with it only at similar volumes; the mean has no such bias.
   */
  latencyP99:
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="$service",slot="$slot"}[$step])))',
} as const;

const DEFAULT_QUERIES: Record<string, AnalysisMetricSpec["prometheus"]> = {
  errors: { bad: PROMETHEUS_TEMPLATES.errorsBad, total: PROMETHEUS_TEMPLATES.errorsTotal },
  latency: { samples: PROMETHEUS_TEMPLATES.latencyMean },
};

export interface PrometheusProviderOptions {
  /** Base URL of the Prometheus server, e.g. http://prometheus:9090 */
  url: string;
  service: string;
  stableSlot: Slot;
  candidateSlot: Slot;
  /** Metrics with their templates; `errors` and `latency` get default templates when they have none. */
  metrics?: readonly AnalysisMetricSpec[];
  /** Resolution of samples queries in seconds (also their rate window). Keep it >= 2 scrape intervals. Default 30. */
  stepSeconds?: number;
  /** Extra `$name` placeholders, e.g. `{ namespace: "shop" }`; per-slot values win. */
  vars?: Record<string, string>;
  slotVars?: Partial<Record<Slot, Record<string, string>>>;
  timeoutMs?: number;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
}

interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}
interface PromMatrixSample {
  metric: Record<string, string>;
  values: [number, string][];
}

export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => {
    if (!(name in vars))
      throw new ProviderError(
        "prometheus",
        "invalid",
        `template placeholder $${name} has no value in: ${template}`,
      );
    return vars[name];
  });
}

const promDuration = (seconds: number) => `${Math.max(1, Math.round(seconds))}s`;

export function createPrometheusProvider(
  options: PrometheusProviderOptions,
): (window: AnalysisWindow) => Promise<MetricInputs> {
  if (options.stableSlot === options.candidateSlot) {
    throw new Error(
      `createPrometheusProvider: stableSlot and candidateSlot are both "${options.stableSlot}"; they must differ`,
    );
  }
  const base = options.url.replace(/\/+$/, "");
  const step = options.stepSeconds ?? 30;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const metrics = options.metrics ?? DEFAULT_ANALYSIS_METRICS;

  async function api(path: string, params: Record<string, string>): Promise<unknown> {
    const url = `${base}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...options.headers },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new ProviderError("prometheus", "unreachable", `${url} is unreachable (${detail})`, {
        cause: err,
      });
    }
    const text = await response.text();
    let body: { status?: string; error?: string; errorType?: string; data?: unknown } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!response.ok || body?.status !== "success") {
      const why = body?.error ? `${body.errorType ?? "error"}: ${body.error}` : text.slice(0, 200);
      throw new ProviderError(
        "prometheus",
        "http",
        `${url} answered HTTP ${response.status} for ${params.query}: ${why}`,
      );
    }
    return body.data;
  }

  async function instant(query: string, at: Date): Promise<number> {
    const data = (await api("/api/v1/query", { query, time: String(at.getTime() / 1000) })) as {
      resultType: string;
      result: PromVectorSample[];
    };
    if (data.resultType !== "vector") {
      throw new ProviderError(
        "prometheus",
        "invalid",
        `expected an instant vector from ${query}, got ${data.resultType}`,
      );
    }
    const values = data.result.map((s) => Number(s.value[1])).filter((v) => Number.isFinite(v));
    if (values.length === 0) throw new ProviderError("prometheus", "empty", `no data for ${query}`);
    return values.reduce((a, b) => a + b, 0);
  }

  async function range(query: string, window: AnalysisWindow): Promise<number[]> {
    // Align the first step one step after the start so that every rate window lies inside the analysis window.
    const start = window.start.getTime() / 1000 + step;
    const end = window.end.getTime() / 1000;
    if (end < start) return [];
    const data = (await api("/api/v1/query_range", {
      query,
      start: String(start),
      end: String(end),
      step: String(step),
    })) as {
      resultType: string;
      result: PromMatrixSample[];
    };
    if (data.resultType !== "matrix") {
      throw new ProviderError(
        "prometheus",
        "invalid",
        `expected a range vector from ${query}, got ${data.resultType}`,
      );
    }
    const values: number[] = [];
    for (const series of data.result)
      for (const [, v] of series.values) if (Number.isFinite(Number(v))) values.push(Number(v));
    if (values.length === 0) throw new ProviderError("prometheus", "empty", `no data for ${query}`);
    return values;
  }

  return async (window: AnalysisWindow): Promise<MetricInputs> => {
    const seconds = (window.end.getTime() - window.start.getTime()) / 1000;
    const varsFor = (slot: Slot): Record<string, string> => ({
      ...options.vars,
      service: options.service,
      slot,
      window: promDuration(seconds),
      step: promDuration(step),
      ...options.slotVars?.[slot],
    });
    const out: MetricInputs = {};
    await allInOrder(
      metrics.map(async (metric) => {
        const queries = metric.prometheus ?? DEFAULT_QUERIES[metric.name];
        if (metric.type === "ratio") {
          if (!queries?.bad || !queries.total) {
            throw new ProviderError(
              "prometheus",
              "invalid",
              `metric ${metric.name} (ratio) needs prometheus.bad and prometheus.total queries`,
            );
          }
          const counts = async (slot: Slot) => {
            const vars = varsFor(slot);
            const [bad, total] = await allInOrder([
              instant(renderTemplate(queries.bad!, vars), window.end),
              instant(renderTemplate(queries.total!, vars), window.end),
            ]);
            // increase() extrapolates to the window's edges; whole requests are what the judge counts.
            const t = Math.max(0, Math.round(total));
            return { bad: Math.min(t, Math.max(0, Math.round(bad))), total: t };
          };
          const [baseline, canary] = await allInOrder([
            counts(options.stableSlot),
            counts(options.candidateSlot),
          ]);
          out[metric.name] = { baseline, canary };
        } else {
          if (!queries?.samples) {
            throw new ProviderError(
              "prometheus",
              "invalid",
              `metric ${metric.name} (samples) needs a prometheus.samples query`,
            );
          }
          const [baseline, canary] = await allInOrder([
            range(renderTemplate(queries.samples, varsFor(options.stableSlot)), window),
            range(renderTemplate(queries.samples, varsFor(options.candidateSlot)), window),
          ]);
          out[metric.name] = { baseline, canary };
        }
      }),
    );
    return out;
  };
}

/**
 * Promise.all that, when several queries fail, rejects with the first failure in the order
 * given (metric order; stable slot before candidate; bad before total), not the first to
 * settle, so that the error names the same query however the server's answers race.
 */
async function allInOrder<T extends readonly unknown[]>(
  promises: [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
