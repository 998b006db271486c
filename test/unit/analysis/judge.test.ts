import { describe, expect, it } from "vitest";
import { attachObservations, judge, type JudgeMetric } from "../../../src/analysis/judge";

const ratio = (
  name: string,
  baseline: [number, number] | undefined,
  canary: [number, number] | undefined,
  extra: Partial<JudgeMetric> = {},
): JudgeMetric =>
  ({
    name,
    type: "ratio",
    baseline: baseline && { bad: baseline[0], total: baseline[1] },
    canary: canary && { bad: canary[0], total: canary[1] },
    ...extra,
  }) as JudgeMetric;

const samples = (
  name: string,
  baseline: number[] | undefined,
  canary: number[] | undefined,
  extra: Partial<JudgeMetric> = {},
): JudgeMetric => ({ name, type: "samples", baseline, canary, ...extra }) as JudgeMetric;

/** Deterministic pseudo-latencies: a smooth spread around `centre`. */
const latencies = (n: number, centre: number, seed = 1) =>
  Array.from(
    { length: n },
    (_, i) => centre * (1 + 0.2 * Math.sin((i + 1) * 12.9898 * seed) * Math.cos(i * 78.233)),
  );

describe("ratio metrics", () => {
  it("fails a significant increase beyond tolerance", () => {
    const r = judge([ratio("errors", [50, 10000], [30, 1000])], { minSamples: 200 });
    expect(r.verdict).toBe("fail");
    const m = r.metrics[0];
    expect(m.verdict).toBe("fail");
    expect(m.p).toBeLessThan(1e-6);
    expect(m.effect).toBeCloseTo(0.025, 10);
    expect(m.relativeEffect).toBeCloseTo(5, 10);
    expect(m.canary).toEqual({ n: 1000, bad: 30, rate: 0.03 });
    expect(m.reason).toMatch(/significant increase beyond tolerance/);
  });

  it("passes an equal ratio and says why", () => {
    const r = judge([ratio("errors", [100, 10000], [10, 1000])], { minSamples: 200 });
    expect(r.verdict).toBe("pass");
    expect(r.metrics[0].reason).toMatch(/no significant increase/);
  });

  it("passes a significant change that stays within tolerance", () => {
    // 1.00% → 1.05% on a huge sample: significant, but only +5% relative.
    const r = judge([
      ratio("errors", [100_000, 10_000_000], [52_500, 5_000_000], { tolerance: 0.1 }),
    ]);
    expect(r.metrics[0].p).toBeLessThan(0.05);
    expect(r.verdict).toBe("pass");
    expect(r.metrics[0].reason).toMatch(/within tolerance/);
  });

  it("respects absoluteTolerance", () => {
    const r = judge([ratio("errors", [0, 100_000], [3, 1000], { absoluteTolerance: 0.01 })]);
    expect(r.metrics[0].relativeEffect).toBe(Infinity);
    expect(r.verdict).toBe("pass");
    expect(judge([ratio("errors", [0, 100_000], [3, 1000])]).verdict).toBe("fail");
  });

  it("direction decrease fails drops and ignores rises", () => {
    const drop = ratio("success", [9900, 10000], [800, 1000], { direction: "decrease" });
    const rise = ratio("success", [8000, 10000], [990, 1000], { direction: "decrease" });
    expect(judge([drop]).verdict).toBe("fail");
    expect(judge([rise]).verdict).toBe("pass");
    expect(judge([{ ...rise, direction: "either" } as JudgeMetric]).verdict).toBe("fail");
    expect(judge([{ ...drop, direction: "increase" } as JudgeMetric]).verdict).toBe("pass");
  });

  it("is inconclusive below minSamples, on either side", () => {
    const few = judge([ratio("errors", [50, 10000], [9, 150])], { minSamples: 200 });
    expect(few.verdict).toBe("inconclusive");
    expect(few.metrics[0].reason).toBe(
      "too little data: canary has 150 requests, needs at least 200",
    );
    const fewBase = judge([ratio("errors", [0, 50], [0, 500])], { minSamples: 200 });
    expect(fewBase.verdict).toBe("inconclusive");
    expect(fewBase.metrics[0].reason).toMatch(/baseline has 50 requests/);
    // per-metric override
    expect(
      judge([ratio("errors", [50, 10000], [10, 2000], { minSamples: 1000 })], { minSamples: 2500 })
        .verdict,
    ).toBe("pass");
  });

  it("a pass must rule out the margin: too little evidence is inconclusive", () => {
    // 0.5% baseline, 1 error in 300 canary requests: nothing significant, but a doubling is still plausible.
    const thin = judge([ratio("errors", [50, 10000], [1, 300])], { minSamples: 200 });
    expect(thin.verdict).toBe("inconclusive");
    expect(thin.metrics[0].worstCase).toBeGreaterThan(1);
    expect(thin.metrics[0].reason).toMatch(
      /cannot yet rule out a change of \+\d+\.\d% \(margin \+100\.0%\); more data needed/,
    );
    // A wider margin accepts the same data.
    expect(
      judge([ratio("errors", [50, 10000], [1, 300], { margin: 5 })], { minSamples: 200 }).verdict,
    ).toBe("pass");
    // So does an absolute tolerance the worst case stays within.
    expect(
      judge([ratio("errors", [50, 10000], [1, 300], { absoluteTolerance: 0.02 })], {
        minSamples: 200,
      }).verdict,
    ).toBe("pass");
  });

  it("no data is inconclusive, never a pass", () => {
    expect(judge([ratio("errors", [50, 10000], undefined)]).verdict).toBe("inconclusive");
    expect(judge([ratio("errors", [50, 10000], [0, 0])]).metrics[0].reason).toBe(
      "no canary data (0 requests)",
    );
    expect(judge([ratio("errors", undefined, [0, 1000])]).verdict).toBe("inconclusive");
    expect(judge([]).verdict).toBe("inconclusive");
  });

  it("threshold max fails when the canary is significantly above it", () => {
    const r = judge([ratio("errors", [10, 10000], [80, 1000], { threshold: { max: 0.05 } })]);
    expect(r.verdict).toBe("fail");
    expect(r.metrics[0].threshold).toMatchObject({ bound: "max", limit: 0.05, breached: true });
    expect(r.metrics[0].reason).toMatch(/above max 5.00%/);
  });

  it("threshold without significance is inconclusive, not a pass", () => {
    // 5.4% > 5% max on 500 requests: not significant. Baseline equal, so no comparison failure.
    const r = judge([ratio("errors", [540, 10000], [27, 500], { threshold: { max: 0.05 } })]);
    expect(r.verdict).toBe("inconclusive");
    expect(r.metrics[0].reason).toMatch(/but not significantly/);
  });

  it("threshold-only metric (no baseline) passes within bounds and fails beyond", () => {
    expect(
      judge([ratio("errors", undefined, [1, 1000], { threshold: { max: 0.01 } })]).verdict,
    ).toBe("pass");
    expect(
      judge([ratio("errors", undefined, [50, 1000], { threshold: { max: 0.01 } })]).verdict,
    ).toBe("fail");
    expect(
      judge([
        ratio("success", undefined, [900, 1000], {
          threshold: { min: 0.99 },
          direction: "decrease",
        }),
      ]).verdict,
    ).toBe("fail");
  });
});

describe("samples metrics", () => {
  const base = latencies(200, 100, 1);

  it("passes an A/A comparison", () => {
    const r = judge([samples("latency", base, latencies(200, 100, 2))]);
    expect(r.verdict).toBe("pass");
    expect(r.metrics[0].test).toMatch(/Mann-Whitney/);
    expect(Math.abs(r.metrics[0].relativeEffect!)).toBeLessThan(0.05);
  });

  it("fails a +30% shift and reports the Hodges-Lehmann effect", () => {
    const r = judge([samples("latency", base, latencies(200, 130, 2))]);
    expect(r.verdict).toBe("fail");
    const m = r.metrics[0];
    expect(m.relativeEffect).toBeGreaterThan(0.2);
    expect(m.effectInterval![0]).toBeLessThan(m.effect!);
    expect(m.effectInterval![1]).toBeGreaterThan(m.effect!);
  });

  it("passes a significant shift inside the tolerance band", () => {
    const r = judge([samples("latency", base, latencies(200, 105, 2), { tolerance: 0.1 })]);
    expect(r.verdict).toBe("pass");
    expect(r.metrics[0].reason).toMatch(/within tolerance|no significant/);
  });

  it("direction decides which shift is bad", () => {
    const faster = latencies(200, 70, 2);
    expect(judge([samples("latency", base, faster)]).verdict).toBe("pass");
    expect(judge([samples("throughput", base, faster, { direction: "decrease" })]).verdict).toBe(
      "fail",
    );
    expect(judge([samples("latency", base, faster, { direction: "either" })]).verdict).toBe("fail");
  });

  it("threshold on a quantile of the canary", () => {
    const r = judge([
      samples("latency", base, latencies(200, 100, 2), { threshold: { max: 110, quantile: 0.99 } }),
    ]);
    expect(r.verdict).toBe("fail");
    expect(r.metrics[0].reason).toMatch(/canary p99 .* above max 110/);
    expect(
      judge([samples("latency", base, latencies(200, 100, 2), { threshold: { max: 200 } })])
        .verdict,
    ).toBe("pass");
  });

  it("too few values or none is inconclusive", () => {
    expect(
      judge([samples("latency", [12.1, 13.4], [12.9, 14.0])], { minSamples: 200 }).verdict,
    ).toBe("inconclusive");
    expect(judge([samples("latency", base, [])]).metrics[0].reason).toBe(
      "no canary data (0 values)",
    );
    expect(judge([samples("latency", [], base)]).verdict).toBe("inconclusive");
  });
});

describe("combining metrics", () => {
  const good = ratio("errors", [100, 10000], [10, 1000]);
  const bad = ratio("errors5xx", [100, 10000], [60, 1000]);
  const noData = ratio("saturation", [100, 10000], undefined);

  it("a critical failure fails the run alone", () => {
    const r = judge([good, { ...bad, critical: true } as JudgeMetric], { maxFailedMetrics: 5 });
    expect(r.verdict).toBe("fail");
    expect(r.reasons[0]).toMatch(/^critical metric errors5xx failed/);
  });

  it("non-critical failures fail the run beyond maxFailedMetrics", () => {
    expect(judge([good, bad]).verdict).toBe("fail");
    const tolerated = judge([good, bad], { maxFailedMetrics: 1 });
    expect(tolerated.verdict).toBe("pass");
    expect(tolerated.reasons[0]).toMatch(/tolerated by maxFailedMetrics 1/);
  });

  it("failure outranks missing data; missing data outranks passing", () => {
    expect(judge([good, bad, noData]).verdict).toBe("fail");
    const r = judge([good, noData]);
    expect(r.verdict).toBe("inconclusive");
    expect(r.reasons).toEqual(["metric saturation is inconclusive: no canary data"]);
  });

  it("applies Holm's correction across compared metrics", () => {
    // p ≈ 0.03 alone fails at α=0.05; next to an unrelated comparison it is adjusted upwards.
    const borderline = ratio("errors", [1000, 100000], [120, 10000], { tolerance: 0 });
    const alone = judge([borderline]);
    expect(alone.metrics[0].p).toBeLessThan(0.05);
    expect(alone.metrics[0].p).toBeGreaterThan(0.025);
    expect(alone.verdict).toBe("fail");
    const together = judge([borderline, good]);
    expect(together.metrics[0].pAdjusted).toBeGreaterThan(together.metrics[0].p!);
    expect(together.metrics[0].verdict).toBe("pass");
  });

  it("attachObservations leaves metrics the provider did not return without data", () => {
    const m = attachObservations(
      [
        { name: "errors", type: "ratio" },
        { name: "latency", type: "samples" },
      ],
      {
        errors: { baseline: { bad: 1, total: 1000 }, canary: { bad: 1, total: 1000 } },
      },
    );
    expect(judge(m).verdict).toBe("inconclusive");
  });
});

describe("error-free services", () => {
  const ratioMetric = (baseline: [number, number], canary: [number, number]): JudgeMetric =>
    ({
      name: "errors",
      type: "ratio",
      direction: "increase",
      baseline: { bad: baseline[0], total: baseline[1] },
      canary: { bad: canary[0], total: canary[1] },
    }) as JudgeMetric;

  it("pass once the traffic rules out a 0.1-point increase, and stay inconclusive before", () => {
    // With no errors anywhere a relative margin cannot be ruled out at any traffic; the absolute floor can.
    expect(judge([ratioMetric([0, 20_000], [0, 5_000])], { minSamples: 100 }).verdict).toBe("pass");
    expect(judge([ratioMetric([0, 1_440], [0, 360])], { minSamples: 100 }).verdict).toBe(
      "inconclusive",
    );
  });

  it("still fail a candidate that starts erroring", () => {
    expect(judge([ratioMetric([0, 20_000], [60, 5_000])], { minSamples: 100 }).verdict).toBe(
      "fail",
    );
  });
});
