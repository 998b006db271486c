import { describe, expect, it } from "vitest";
import { ProviderError } from "../../../src/analysis/providers/errors";
import {
  alphaForMeasurement,
  type AnalysisWindow,
  type MetricInputs,
  runAnalysis,
} from "../../../src/analysis/run";
import { type AnalysisSpecInput, analysisSpecSchema } from "../../../src/analysis/spec";

/** A clock that only moves when the run sleeps. */
function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

const spec = (overrides: AnalysisSpecInput = {}) =>
  analysisSpecSchema.parse({
    interval: "1m",
    count: 5,
    minSamples: 100,
    metrics: [{ name: "errors", type: "ratio", direction: "increase", tolerance: 0.1 }],
    ...overrides,
  });

/** Traffic that accumulates over time: `perMinute` requests per slot per minute. */
function traffic(
  canaryErrorRate: number,
  baselineErrorRate = 0.01,
  perMinute = { baseline: 20000, canary: 1000 },
) {
  return async (w: AnalysisWindow): Promise<MetricInputs> => {
    const minutes = (w.end.getTime() - w.start.getTime()) / 60000;
    const b = Math.round(perMinute.baseline * minutes);
    const c = Math.round(perMinute.canary * minutes);
    return {
      errors: {
        baseline: { bad: Math.round(b * baselineErrorRate), total: b },
        canary: { bad: Math.round(c * canaryErrorRate), total: c },
      },
    };
  };
}

type Step = MetricInputs | Error;
function scripted(steps: Step[]) {
  let i = 0;
  const windows: AnalysisWindow[] = [];
  return {
    windows,
    fetch: async (w: AnalysisWindow) => {
      windows.push(w);
      const step = steps[Math.min(i++, steps.length - 1)];
      if (step instanceof Error) throw step;
      return step;
    },
  };
}

const good: MetricInputs = {
  errors: { baseline: { bad: 100, total: 10000 }, canary: { bad: 10, total: 1000 } },
};
const bad: MetricInputs = {
  errors: { baseline: { bad: 100, total: 10000 }, canary: { bad: 80, total: 1000 } },
};
const thin: MetricInputs = {
  errors: { baseline: { bad: 1, total: 10000 }, canary: { bad: 0, total: 20 } },
};
const down = new ProviderError("prometheus", "unreachable", "connect ECONNREFUSED 127.0.0.1:9");

describe("runAnalysis", () => {
  it("passes a healthy canary after count measurements, one interval apart, instantly", async () => {
    const clock = fakeClock();
    const seen: number[] = [];
    const out = await runAnalysis({
      spec: spec(),
      fetch: traffic(0.01),
      ...clock,
      onMeasurement: (m) => seen.push(m.index),
    });
    expect(out.verdict).toBe("pass");
    expect(out.measurements.map((m) => m.phase)).toEqual(["pass", "pass", "pass", "pass", "pass"]);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(clock.sleeps).toEqual([60000, 60000, 60000, 60000, 60000]);
    expect(out.reasons[0]).toMatch(/measurement 5 of 5/);
  });

  it("cumulative windows grow from the start; interval windows slide", async () => {
    const a = scripted([good]);
    await runAnalysis({ spec: spec({ count: 3 }), fetch: a.fetch, ...fakeClock(0) });
    expect(a.windows.map((w) => [w.start.getTime(), w.end.getTime()])).toEqual([
      [0, 60000],
      [0, 120000],
      [0, 180000],
    ]);
    const b = scripted([good]);
    await runAnalysis({
      spec: spec({ count: 3, window: "interval" }),
      fetch: b.fetch,
      ...fakeClock(0),
    });
    expect(b.windows.map((w) => [w.start.getTime(), w.end.getTime()])).toEqual([
      [0, 60000],
      [60000, 120000],
      [120000, 180000],
    ]);
  });

  it("stops at the first failure beyond failureLimit", async () => {
    const out = await runAnalysis({ spec: spec(), fetch: traffic(0.05), ...fakeClock() });
    expect(out.verdict).toBe("fail");
    expect(out.measurements.length).toBeLessThan(5);
    expect(out.reasons[0]).toMatch(/more than failureLimit 0/);
  });

  it("failureLimit tolerates failed measurements (interval windows)", async () => {
    const s = scripted([bad, good, good, good, good]);
    const out = await runAnalysis({
      spec: spec({ window: "interval", failureLimit: 1 }),
      fetch: s.fetch,
      ...fakeClock(),
    });
    expect(out.verdict).toBe("pass");
    expect(out.counts).toEqual({ pass: 4, fail: 1, inconclusive: 0, error: 0 });
    const twice = scripted([bad, good, bad, good, good]);
    const failed = await runAnalysis({
      spec: spec({ window: "interval", failureLimit: 1 }),
      fetch: twice.fetch,
      ...fakeClock(),
    });
    expect(failed.verdict).toBe("fail");
    expect(failed.measurements).toHaveLength(3);
  });

  it("inconclusiveLimit stops interval runs; early thin looks do not count in cumulative runs", async () => {
    const s = scripted([thin, good, thin, good, good]);
    const out = await runAnalysis({
      spec: spec({ window: "interval", inconclusiveLimit: 1 }),
      fetch: s.fetch,
      ...fakeClock(),
    });
    expect(out.verdict).toBe("inconclusive");
    expect(out.measurements).toHaveLength(3);
    expect(out.reasons[0]).toMatch(/more than inconclusiveLimit 1/);

    const c = scripted([thin, thin, good, good, good]);
    expect((await runAnalysis({ spec: spec(), fetch: c.fetch, ...fakeClock() })).verdict).toBe(
      "pass",
    );
  });

  it("a run that never gathers enough data is inconclusive, never a pass", async () => {
    const s = scripted([thin]);
    const out = await runAnalysis({ spec: spec(), fetch: s.fetch, ...fakeClock() });
    expect(out.verdict).toBe("inconclusive");
    expect(out.reasons.join("\n")).toMatch(/too little data/);
  });

  it("provider errors count against consecutiveErrorLimit and fail the run past it", async () => {
    const s = scripted([down]);
    const out = await runAnalysis({
      spec: spec({ consecutiveErrorLimit: 2 }),
      fetch: s.fetch,
      ...fakeClock(),
    });
    expect(out.verdict).toBe("fail");
    expect(out.measurements.map((m) => m.phase)).toEqual(["error", "error", "error"]);
    expect(out.measurements[0].error).toEqual({
      kind: "unreachable",
      message: "prometheus: connect ECONNREFUSED 127.0.0.1:9",
    });
    expect(out.reasons[0]).toMatch(
      /3 consecutive provider errors, more than consecutiveErrorLimit 2/,
    );
  });

  it("errors that recover reset the consecutive count; errors alone are never a pass", async () => {
    const s = scripted([down, down, good, down, down]);
    const out = await runAnalysis({
      spec: spec({ consecutiveErrorLimit: 2 }),
      fetch: s.fetch,
      ...fakeClock(),
    });
    expect(out.verdict).toBe("pass");
    expect(out.counts.error).toBe(4);
    const all = scripted([down]);
    const none = await runAnalysis({
      spec: spec({ consecutiveErrorLimit: 10 }),
      fetch: all.fetch,
      ...fakeClock(),
    });
    expect(none.verdict).toBe("inconclusive");
    expect(none.reasons[0]).toMatch(/no measurement could be judged: 5 provider errors/);
  });

  it("a metric the provider did not return is inconclusive", async () => {
    const s = scripted([{}]);
    const out = await runAnalysis({ spec: spec({ count: 1 }), fetch: s.fetch, ...fakeClock() });
    expect(out.verdict).toBe("inconclusive");
    expect(out.reasons.join("\n")).toMatch(/no canary data/);
  });

  it("stops when aborted", async () => {
    const controller = new AbortController();
    const clock = fakeClock();
    const out = await runAnalysis({
      spec: spec(),
      fetch: traffic(0.01),
      ...clock,
      signal: controller.signal,
      onMeasurement: (m) => m.index === 2 && controller.abort(),
    });
    expect(out.verdict).toBe("inconclusive");
    expect(out.measurements).toHaveLength(2);
  });
});

describe("alpha spending", () => {
  it("interval windows split alpha evenly", () => {
    for (const count of [1, 3, 5, 10]) {
      const parts = Array.from({ length: count }, (_, i) =>
        alphaForMeasurement(i + 1, count, 0.01, "interval"),
      );
      expect(parts.reduce((a, b) => a + b, 0)).toBeCloseTo(0.01, 12);
    }
  });

  it("cumulative windows use group-sequential boundaries: tiny early, most of alpha on the last look", () => {
    expect(alphaForMeasurement(1, 1, 0.01, "cumulative")).toBeCloseTo(0.01, 12);
    const parts = Array.from({ length: 5 }, (_, i) =>
      alphaForMeasurement(i + 1, 5, 0.01, "cumulative"),
    );
    expect(parts[0]).toBeLessThan(1e-7);
    for (let i = 1; i < 5; i++) expect(parts[i]).toBeGreaterThan(parts[i - 1]);
    // Exact boundaries recover what a union bound over looks would waste (0.0060 here).
    expect(parts[4]).toBeCloseTo(0.008735, 5);
    // With two metrics, Holm's first step compares with each metric's own boundary for alpha/2.
    const two = alphaForMeasurement(5, 5, 0.01, "cumulative", 2);
    expect(two / 2).toBeGreaterThan(0.004);
    expect(two / 2).toBeLessThan(0.005);
  });
});
