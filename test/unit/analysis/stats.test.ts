import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  betaProbabilityGreater,
  fisherExactTest,
  groupSequentialBoundaries,
  normalSf,
  hodgesLehmann,
  holmAdjust,
  mannWhitneyExactCdf,
  mannWhitneyU,
  normalCdf,
  normalQuantile,
  oneProportionZTest,
  quantile,
  selectPairwiseDifference,
  twoProportionZTest,
  wilsonInterval,
} from "../../../src/analysis/stats";

// Reference values below were computed with SciPy 1.x (scipy.stats.norm,
// scipy.stats.mannwhitneyu) and numerical integration for the beta posterior.

const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
const sample = (min = 1, max = 40) => fc.array(finite, { minLength: min, maxLength: max });

describe("normal distribution", () => {
  it("matches known CDF values", () => {
    expect(normalCdf(1.96)).toBeCloseTo(0.9750021048517795, 14);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316300933, 15);
    expect(normalCdf(0.5)).toBeCloseTo(0.6914624612740131, 14);
    expect(normalCdf(-8) / 6.22096057427174e-16).toBeCloseTo(1, 10);
    expect(normalCdf(0)).toBe(0.5);
  });

  it("matches known quantiles", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 13);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 13);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 12);
    expect(normalQuantile(0.3)).toBeCloseTo(-0.5244005127080409, 14);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
  });

  it("quantile inverts the CDF and is antisymmetric", () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 1 - 1e-12, noNaN: true }), (p) => {
        const z = normalQuantile(p);
        expect(normalCdf(z)).toBeCloseTo(p, 12);
        if (p > 1e-6 && p < 1 - 1e-6) expect(normalQuantile(1 - p)).toBeCloseTo(-z, 9);
      }),
    );
  });
});

describe("proportions", () => {
  it("two-proportion z-test matches a hand computation", () => {
    const t = twoProportionZTest(50, 10000, 9, 500, "greater");
    expect(t.z).toBeCloseTo(3.7951238245433885, 10);
    expect(t.p).toBeCloseTo(7.378489361037788e-5, 12);
    expect(twoProportionZTest(50, 10000, 9, 500).p).toBeCloseTo(1.4756978722075577e-4, 12);
  });

  it("swapping the samples negates z and swaps the one-sided p-values", () => {
    const counts = fc
      .integer({ min: 1, max: 100000 })
      .chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n)));
    fc.assert(
      fc.property(counts, counts, ([x1, n1], [x2, n2]) => {
        const a = twoProportionZTest(x1, n1, x2, n2, "greater");
        const b = twoProportionZTest(x2, n2, x1, n1, "less");
        expect(a.z).toBeCloseTo(-b.z, 9);
        expect(a.p).toBeCloseTo(b.p, 12);
      }),
    );
  });

  it("Fisher's exact test matches SciPy", () => {
    const cases: [number, number, number, number, number, number][] = [
      [50, 10000, 9, 500, 0.0017555147436795976, 0.9995808075649679],
      [3, 1000, 0, 50, 1.0, 0.8637140008711626],
      [120, 20000, 30, 2000, 2.977589966555561e-5, 0.9999888346925956],
      [5000, 1000000, 300, 50000, 0.0014741703895088407, 0.9987944931908367],
    ];
    for (const [x1, n1, x2, n2, greater, less] of cases) {
      expect(fisherExactTest(x1, n1, x2, n2, "greater").p / greater).toBeCloseTo(1, 7);
      expect(fisherExactTest(x1, n1, x2, n2, "less").p / less).toBeCloseTo(1, 7);
    }
  });

  it("Fisher's one-sided p-values cover the observed table from both sides", () => {
    const counts = fc
      .integer({ min: 1, max: 3000 })
      .chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n)));
    fc.assert(
      fc.property(counts, counts, ([x1, n1], [x2, n2]) => {
        const g = fisherExactTest(x1, n1, x2, n2, "greater").p;
        const l = fisherExactTest(x1, n1, x2, n2, "less").p;
        expect(g).toBeGreaterThanOrEqual(0);
        expect(g).toBeLessThanOrEqual(1);
        expect(g + l).toBeGreaterThanOrEqual(1 - 1e-6);
        // Swapping the samples swaps the tails.
        expect(fisherExactTest(x2, n2, x1, n1, "less").p).toBeCloseTo(g, 6);
      }),
      { numRuns: 60 },
    );
  });

  it("no events on either side is never evidence", () => {
    expect(twoProportionZTest(0, 1000, 0, 10, "greater").p).toBe(1);
    expect(twoProportionZTest(5, 5, 3, 3, "less").p).toBe(1);
  });

  it("one-proportion test and Wilson interval agree on direction", () => {
    expect(oneProportionZTest(90, 1000, 0.05, "greater").p).toBeLessThan(1e-6);
    expect(oneProportionZTest(40, 1000, 0.05, "greater").p).toBeGreaterThan(0.5);
    const w = wilsonInterval(90, 1000);
    expect(w.lower).toBeGreaterThan(0.05);
    expect(w.upper).toBeLessThan(0.12);
  });

  it("beta-binomial posterior probability matches numerical integration", () => {
    expect(betaProbabilityGreater(1, 1, 1, 1)).toBeCloseTo(0.5, 12);
    expect(betaProbabilityGreater(1, 1, 2, 1)).toBeCloseTo(2 / 3, 12);
    expect(betaProbabilityGreater(3, 7, 5, 6)).toBeCloseTo(0.7800666825434627, 9);
    expect(betaProbabilityGreater(51, 9951, 10, 492)).toBeCloseTo(0.9995110533871974, 6);
  });

  it("P(Y > X) + P(X > Y) = 1 for beta posteriors", () => {
    const param = fc.integer({ min: 1, max: 300 });
    fc.assert(
      fc.property(param, param, param, param, (a1, b1, a2, b2) => {
        expect(
          betaProbabilityGreater(a1, b1, a2, b2) + betaProbabilityGreater(a2, b2, a1, b1),
        ).toBeCloseTo(1, 6);
      }),
      { numRuns: 60 },
    );
  });
});

describe("Mann-Whitney U", () => {
  const x = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
  const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];

  it("matches SciPy on the asymptotic method with ties", () => {
    const r = mannWhitneyU(x, y, "two-sided");
    expect(r.method).toBe("normal"); // y has ties
    expect(r.u).toBe(23);
    expect(r.p).toBeCloseTo(0.13291945818531892, 12);
    expect(mannWhitneyU(x, y, "less").p).toBeCloseTo(0.06645972909265946, 12);
    expect(mannWhitneyU(x, y, "greater").p).toBeCloseTo(0.9442044002897128, 12);
    const a = [1, 2, 2, 3, 3, 3, 4, 5];
    const b = [2, 3, 4, 4, 5, 5, 6, 7, 7];
    expect(mannWhitneyU(a, b, "two-sided").p).toBeCloseTo(0.03175895714806371, 12);
    expect(mannWhitneyU(a, b, "greater").p).toBeCloseTo(0.015879478574031856, 12);
    expect(mannWhitneyU(a, b, "greater").u).toBe(58.5);
  });

  it("matches SciPy's exact method without ties", () => {
    const a = [
      0.345584, 0.821618, 0.330437, -1.303157, 0.905356, 0.446375, -0.536953, 0.581118, 0.364572,
      0.294132, 0.028422, 0.546713, -0.736454, -0.16291, -0.482119, 0.598846, 0.039722, -0.292457,
      -0.781908, -0.257192,
    ];
    const b = [
      0.808142, 0.524397, 2.094064, 1.806724, -1.911162, -1.089013, 0.625228, 0.37781, 1.013643,
      1.017322, 2.917839, -0.312021, 0.422395, 2.842772, 1.446703, 1.463063, 0.285994, -0.848075,
      0.967465, 0.909014, -0.427352, 0.116773, 0.727956, -0.144752, 0.70173,
    ];
    const r = mannWhitneyU(a, b, "greater");
    expect(r.method).toBe("exact");
    expect(r.u).toBe(355);
    expect(r.p).toBeCloseTo(0.007959596096537815, 12);
    expect(mannWhitneyU(a, b, "two-sided").p).toBeCloseTo(0.01591919219307563, 12);
  });

  it("exact null distribution is a symmetric CDF ending at 1", () => {
    for (const [m, n] of [
      [1, 1],
      [3, 4],
      [7, 7],
      [50, 50],
    ]) {
      const cdf = mannWhitneyExactCdf(m, n);
      expect(cdf.length).toBe(m * n + 1);
      expect(cdf[cdf.length - 1]).toBeCloseTo(1, 12);
      for (let k = 0; k < cdf.length - 1; k++) {
        // P(U <= k) = P(U >= mn - k) = 1 - P(U <= mn - k - 1)
        expect(cdf[k]).toBeCloseTo(1 - cdf[m * n - k - 1], 10);
      }
    }
    // P(U = 0) for 3 vs 4 is 1 / C(7,3).
    expect(mannWhitneyExactCdf(3, 4)[0]).toBeCloseTo(1 / 35, 15);
  });

  it("swapping samples gives U' = n1 n2 - U and mirrored p-values", () => {
    fc.assert(
      fc.property(sample(), sample(), (a, b) => {
        const r = mannWhitneyU(a, b, "greater");
        const s = mannWhitneyU(b, a, "less");
        expect(r.u + s.u).toBeCloseTo(a.length * b.length, 9);
        expect(r.p).toBeCloseTo(s.p, 9);
      }),
    );
  });

  it("is invariant under monotone transforms", () => {
    const ints = fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(ints, ints, (a, b) => {
        const f = (v: number) => 3 * v + 7;
        const r = mannWhitneyU(a, b, "two-sided");
        const s = mannWhitneyU(a.map(f), b.map(f), "two-sided");
        expect(s.u).toBe(r.u);
        expect(s.p).toBeCloseTo(r.p, 12);
      }),
    );
  });

  it("p-values are probabilities and one-sided ones are complementary-ish", () => {
    fc.assert(
      fc.property(sample(2), sample(2), (a, b) => {
        const g = mannWhitneyU(a, b, "greater").p;
        const l = mannWhitneyU(a, b, "less").p;
        const t = mannWhitneyU(a, b, "two-sided").p;
        for (const p of [g, l, t]) {
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThanOrEqual(1);
        }
        expect(g + l).toBeGreaterThanOrEqual(1 - 1e-9); // both include the observed value
        expect(t).toBeGreaterThanOrEqual(Math.min(g, l) - 1e-12);
      }),
    );
  });

  it("identical samples are never significant", () => {
    expect(mannWhitneyU([5, 5, 5], [5, 5, 5, 5]).p).toBe(1);
  });

  it("handles large samples fast", () => {
    const a = Array.from({ length: 50_000 }, (_, i) => Math.sin(i) * 100);
    const b = Array.from({ length: 20_000 }, (_, i) => Math.cos(i) * 100 + 1);
    const started = performance.now();
    const r = mannWhitneyU(a, b, "greater");
    expect(r.method).toBe("normal");
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("Hodges-Lehmann", () => {
  const brute = (a: number[], b: number[]) => {
    const d: number[] = [];
    for (const x of a) for (const y of b) d.push(y - x);
    d.sort((p, q) => p - q);
    return d;
  };

  it("matches a known value", () => {
    const x = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
    const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
    expect(hodgesLehmann(x, y).estimate).toBeCloseTo(-0.56, 12);
  });

  it("selection agrees with sorting every pairwise difference", () => {
    const small = fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 60 });
    fc.assert(
      fc.property(small, small, fc.double({ min: 0, max: 1, noNaN: true }), (a, b, f) => {
        const all = brute(a, b);
        const k = Math.min(all.length - 1, Math.floor(f * all.length));
        const xs = Float64Array.from(a).sort();
        const ys = Float64Array.from(b).sort();
        expect(selectPairwiseDifference(xs, ys, k)).toBe(all[k]);
      }),
    );
  });

  it("estimate equals the median of pairwise differences", () => {
    fc.assert(
      fc.property(sample(1, 30), sample(1, 30), (a, b) => {
        expect(hodgesLehmann(a, b).estimate).toBeCloseTo(quantile(brute(a, b), 0.5, true), 6);
      }),
    );
  });

  it("is equivariant: shifting the canary by c shifts the estimate by c; swapping negates it", () => {
    fc.assert(
      fc.property(
        sample(1, 30),
        sample(1, 30),
        fc.integer({ min: -1000, max: 1000 }),
        (a, b, c) => {
          const base = hodgesLehmann(a, b);
          expect(
            hodgesLehmann(
              a,
              b.map((v) => v + c),
            ).estimate,
          ).toBeCloseTo(base.estimate + c, 6);
          expect(hodgesLehmann(b, a).estimate).toBeCloseTo(-base.estimate, 6);
          expect(base.lower).toBeLessThanOrEqual(base.estimate);
          expect(base.upper).toBeGreaterThanOrEqual(base.estimate);
        },
      ),
    );
  });

  it("is fast on large samples (no m*n materialisation)", () => {
    // 20,000 x 20,000 = 4e8 differences: far too many to sort, instant to select.
    const a = Array.from({ length: 20_000 }, (_, i) => 100 + 20 * Math.sin(i * 1.7));
    const b = Array.from({ length: 20_000 }, (_, i) => 110 + 20 * Math.sin(i * 2.3));
    const started = performance.now();
    const r = hodgesLehmann(a, b);
    expect(r.estimate).toBeGreaterThan(8);
    expect(r.estimate).toBeLessThan(12);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("group-sequential boundaries", () => {
  it("match published O'Brien-Fleming-type (Lan-DeMets) boundaries", () => {
    // gsDesign::gsDesign(k = 5, test.type = 1, alpha = 0.025, sfu = sfLDOF)$upper$bound
    const z = groupSequentialBoundaries(5, 0.025);
    [4.8769, 3.357, 2.6803, 2.2898, 2.031].forEach((expected, i) =>
      expect(z[i]).toBeCloseTo(expected, 3),
    );
    expect(groupSequentialBoundaries(1, 0.01)[0]).toBeCloseTo(2.3263478740408408, 10);
  });

  it("give a Brownian statistic crossing probability alpha (seeded Monte Carlo)", () => {
    const looks = 5;
    const alpha = 0.025;
    const z = groupSequentialBoundaries(looks, alpha);
    let seed = 12345; // mulberry32
    const uniform = () => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
    const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    const paths = 100_000;
    let crossed = 0;
    for (let p = 0; p < paths; p++) {
      let s = 0;
      for (let k = 1; k <= looks; k++) {
        s += normal() * Math.sqrt(1 / looks);
        if (s / Math.sqrt(k / looks) >= z[k - 1]) {
          crossed++;
          break;
        }
      }
    }
    expect(crossed / paths).toBeGreaterThan(alpha - 0.002);
    expect(crossed / paths).toBeLessThan(alpha + 0.002);
    // and the nominal levels add up to more than alpha: the looks are correlated.
    expect(z.reduce((a, zk) => a + normalSf(zk), 0)).toBeGreaterThan(alpha);
  });
});

describe("Holm adjustment", () => {
  it("adjusts step-down and keeps order", () => {
    expect(holmAdjust([0.01, 0.04, 0.03])).toEqual([0.03, 0.06, 0.06]);
    expect(holmAdjust([])).toEqual([]);
  });
});
