/**
 * The Prometheus provider against a REAL Prometheus server (Debian package
 * `prometheus`): a small exporter serves request counters and latency
 * histograms for a stable and a candidate slot of two services — one whose
 * candidate is as healthy as stable, one whose candidate errs more and is
 * slower — Prometheus scrapes it every second, and the provider's PromQL
 * feeds the judge.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judge, attachObservations } from "../../src/analysis/judge";
import { ProviderError } from "../../src/analysis/providers/errors";
import { createPrometheusProvider } from "../../src/analysis/providers/prometheus";
import { type AnalysisWindow, runAnalysis } from "../../src/analysis/run";
import { analysisSpecSchema } from "../../src/analysis/spec";
import { freePort, requireCommand, type Started, startProcess, waitFor } from "./servers";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface SlotTraffic {
  service: string;
  slot: "blue" | "green";
  version: string;
  rps: number;
  errorRate: number;
  medianSeconds: number;
}

class Series {
  ok = 0;
  errors = 0;
  sum = 0;
  count = 0;
  buckets = new Array<number>(BUCKETS.length).fill(0);
  constructor(readonly t: SlotTraffic) {}
}

/** mulberry32 + Box-Muller: the exporter's traffic is pseudo-random but seeded. */
function rng(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

function startExporter(traffic: SlotTraffic[]): { server: Server; tick: NodeJS.Timeout } {
  const series = traffic.map((t) => new Series(t));
  const random = rng(42);
  const tickMs = 50;
  const tick = setInterval(() => {
    for (const s of series) {
      const expected = (s.t.rps * tickMs) / 1000;
      const n = Math.floor(expected + random.uniform());
      for (let i = 0; i < n; i++) {
        if (random.uniform() < s.t.errorRate) s.errors++;
        else s.ok++;
        const latency = s.t.medianSeconds * Math.exp(0.4 * random.normal());
        s.sum += latency;
        s.count++;
        BUCKETS.forEach((le, b) => {
          if (latency <= le) s.buckets[b]++;
        });
      }
    }
  }, tickMs);
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    const lines = ["# TYPE http_requests_total counter"];
    const labels = (s: Series) =>
      `service="${s.t.service}",slot="${s.t.slot}",version="${s.t.version}"`;
    for (const s of series) {
      lines.push(`http_requests_total{${labels(s)},code="200"} ${s.ok}`);
      lines.push(`http_requests_total{${labels(s)},code="500"} ${s.errors}`);
    }
    lines.push("# TYPE http_request_duration_seconds histogram");
    for (const s of series) {
      BUCKETS.forEach((le, b) =>
        lines.push(`http_request_duration_seconds_bucket{${labels(s)},le="${le}"} ${s.buckets[b]}`),
      );
      lines.push(`http_request_duration_seconds_bucket{${labels(s)},le="+Inf"} ${s.count}`);
      lines.push(`http_request_duration_seconds_sum{${labels(s)}} ${s.sum}`);
      lines.push(`http_request_duration_seconds_count{${labels(s)}} ${s.count}`);
    }
    res
      .writeHead(200, { "content-type": "text/plain; version=0.0.4" })
      .end(`${lines.join("\n")}\n`);
  });
  return { server, tick };
}

const stable = (service: string): SlotTraffic => ({
  service,
  slot: "blue",
  version: "1.0.0",
  rps: 200,
  errorRate: 0.01,
  medianSeconds: 0.08,
});

let exporter: { server: Server; tick: NodeJS.Timeout } | undefined;
let prometheus: Started | undefined;
let dir: string | undefined;
let url = "";
let window: AnalysisWindow;

const spec = analysisSpecSchema.parse({
  count: 1,
  alpha: 0.001,
  minSamples: 200,
  metrics: [
    { name: "errors", type: "ratio", direction: "increase", tolerance: 0.1, critical: true },
    { name: "latency", type: "samples", direction: "increase", tolerance: 0.1, minSamples: 5 },
  ],
});

const provider = (
  service: string,
  extra: Partial<Parameters<typeof createPrometheusProvider>[0]> = {},
) =>
  createPrometheusProvider({
    url,
    service,
    stableSlot: "blue",
    candidateSlot: "green",
    metrics: spec.metrics,
    stepSeconds: 2,
    ...extra,
  });

beforeAll(async () => {
  const binary = requireCommand("/usr/bin/prometheus", "Debian package prometheus");
  exporter = startExporter([
    stable("good"),
    {
      service: "good",
      slot: "green",
      version: "1.1.0",
      rps: 50,
      errorRate: 0.01,
      medianSeconds: 0.08,
    },
    stable("bad"),
    {
      service: "bad",
      slot: "green",
      version: "1.1.0",
      rps: 50,
      errorRate: 0.06,
      medianSeconds: 0.13,
    },
  ]);
  const exporterPort = await freePort();
  await new Promise<void>((resolve) => exporter!.server.listen(exporterPort, "127.0.0.1", resolve));

  dir = mkdtempSync(join(tmpdir(), "slipway-prometheus-"));
  writeFileSync(
    join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: slipway-test",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${exporterPort}"]`,
      "",
    ].join("\n"),
  );
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  prometheus = startProcess(binary, [
    `--config.file=${join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--log.level=warn",
  ]);
  await waitFor("prometheus", async () => (await fetch(`${url}/-/ready`)).ok, 30_000, prometheus);
  await waitFor(
    "first scrape",
    async () => {
      const r = (await (await fetch(`${url}/api/v1/query?query=up`)).json()) as {
        data: { result: { value: [number, string] }[] };
      };
      return r.data.result[0]?.value[1] === "1";
    },
    30_000,
    prometheus,
  );
  // Collect ~24 s of traffic: ~4800 stable and ~1200 candidate requests, 12 two-second steps.
  const start = Date.now();
  await new Promise((r) => setTimeout(r, 25_000));
  window = { start: new Date(start), end: new Date(Date.now() - 1000) };
});

afterAll(async () => {
  await prometheus?.stop();
  if (exporter) {
    clearInterval(exporter.tick);
    await new Promise<void>((resolve) => exporter!.server.close(() => resolve()));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Prometheus provider (real server)", () => {
  it("reads ratio counts and per-step latency samples for stable (baseline) and candidate (canary)", async () => {
    const data = await provider("good")(window);
    const errors = data.errors as {
      baseline: { bad: number; total: number };
      canary: { bad: number; total: number };
    };
    expect(errors.baseline.total).toBeGreaterThan(3000);
    expect(errors.canary.total).toBeGreaterThan(700);
    expect(errors.canary.total).toBeLessThan(errors.baseline.total / 2);
    expect(errors.canary.bad).toBeLessThanOrEqual(errors.canary.total);
    const latency = data.latency as { baseline: number[]; canary: number[] };
    expect(latency.baseline.length).toBeGreaterThanOrEqual(8);
    expect(latency.canary.length).toBeGreaterThanOrEqual(8);
    for (const v of [...latency.baseline, ...latency.canary]) {
      expect(v).toBeGreaterThan(0.04);
      expect(v).toBeLessThan(0.2);
    }
  });

  it("passes a healthy candidate", async () => {
    const result = judge(attachObservations(spec.metrics, await provider("good")(window)), {
      alpha: spec.alpha,
      minSamples: spec.minSamples,
    });
    expect(result.verdict, result.reasons.join("\n")).toBe("pass");
  });

  it("fails a candidate that errs more and is slower", async () => {
    const result = judge(attachObservations(spec.metrics, await provider("bad")(window)), {
      alpha: spec.alpha,
      minSamples: spec.minSamples,
    });
    expect(result.verdict).toBe("fail");
    const byName = Object.fromEntries(result.metrics.map((m) => [m.name, m]));
    expect(byName.errors.verdict).toBe("fail");
    expect(byName.errors.relativeEffect).toBeGreaterThan(2);
    expect(byName.latency.verdict).toBe("fail");
    expect(byName.latency.relativeEffect).toBeGreaterThan(0.3);
  });

  it("runs a whole analysis through runAnalysis", async () => {
    const times = [window.start.getTime(), window.end.getTime()];
    const now = () => times.shift() ?? window.end.getTime();
    const good = await runAnalysis({ spec, fetch: provider("good"), now, sleep: async () => {} });
    expect(good.verdict).toBe("pass");
    times.push(window.start.getTime(), window.end.getTime());
    const bad = await runAnalysis({ spec, fetch: provider("bad"), now, sleep: async () => {} });
    expect(bad.verdict).toBe("fail");
    expect(bad.reasons.join("\n")).toMatch(/critical metric errors failed/);
  });

  it("an empty result is a ProviderError, never a pass", async () => {
    const err = await provider("no-such-service")(window).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: "empty", provider: "prometheus" });
    expect((err as Error).message).toMatch(
      /no data for sum\(increase\(http_requests_total\{service="no-such-service"/,
    );
  });

  it("a bad query is an HTTP ProviderError naming the query", async () => {
    const broken = provider("good", {
      metrics: [
        {
          name: "errors",
          type: "ratio",
          direction: "increase",
          critical: false,
          prometheus: { bad: "sum(rate(", total: "up" },
        },
      ],
    });
    const err = await broken(window).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "http" });
    expect((err as Error).message).toMatch(/HTTP 400 for sum\(rate\(: bad_data/);
  });

  it("an unreachable server is a ProviderError; the run fails after consecutiveErrorLimit", async () => {
    const closedPort = await freePort();
    const down = createPrometheusProvider({
      url: `http://127.0.0.1:${closedPort}`,
      service: "good",
      stableSlot: "blue",
      candidateSlot: "green",
    });
    const err = await down(window).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "unreachable" });
    expect((err as Error).message).toMatch(/is unreachable \(ECONNREFUSED\)/);
    const out = await runAnalysis({
      spec: analysisSpecSchema.parse({ count: 5, consecutiveErrorLimit: 2 }),
      fetch: down,
      sleep: async () => {},
    });
    expect(out.verdict).toBe("fail");
    expect(out.counts).toMatchObject({ error: 3, pass: 0 });
  });
});
