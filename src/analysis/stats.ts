/**
 * Statistics for canary analysis. Pure functions, no dependencies, no I/O.
 *
 * Conventions: `x` is the baseline (stable slot), `y` is the canary (candidate
 * slot). A shift or difference is always canary minus baseline. An
 * `alternative` names the hypothesis that the canary is `"greater"` than the
 * baseline, `"less"`, or different in either direction (`"two-sided"`).
 */

export type Alternative = "greater" | "less" | "two-sided";

// ---------------------------------------------------------------------------
// Normal distribution

/**
 * Standard normal CDF, accurate to about 1e-15 absolute (Hart 1968, as given
 * by West, "Better approximations to cumulative normal functions", 2005).
 */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const x = Math.abs(z);
  let tail: number;
  if (x > 37) {
    tail = 0;
  } else {
    const e = Math.exp((-x * x) / 2);
    if (x < 7.07106781186547) {
      let n = 3.52624965998911e-2 * x + 0.700383064443688;
      n = n * x + 6.37396220353165;
      n = n * x + 33.912866078383;
      n = n * x + 112.079291497871;
      n = n * x + 221.213596169931;
      n = n * x + 220.206867912376;
      let d = 8.83883476483184e-2 * x + 1.75566716318264;
      d = d * x + 16.064177579207;
      d = d * x + 86.7807322029461;
      d = d * x + 296.564248779674;
      d = d * x + 637.333633378831;
      d = d * x + 793.826512519948;
      d = d * x + 440.413735824752;
      tail = (e * n) / d;
    } else {
      // Laplace's continued fraction, evaluated bottom-up; 60 terms is exact to
      // double precision for x >= 7.
      let f = x;
      for (let k = 60; k >= 1; k--) f = x + k / f;
      tail = e / f / 2.5066282746310002;
    }
  }
  return z > 0 ? 1 - tail : tail;
}

/** Upper tail of the standard normal, P(Z > z), without cancellation for large z. */
export function normalSf(z: number): number {
  return normalCdf(-z);
}

/**
 * Standard normal quantile (inverse CDF), Wichura's AS 241 (PPND16), relative
 * accuracy about 1e-16. Returns -Infinity / Infinity at 0 / 1.
 */
export function normalQuantile(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (
      (q *
        (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r +
          45921.953931549871457) *
          r +
          13731.693765509461125) *
          r +
          1971.5909503065514427) *
          r +
          133.14166789178437745) *
          r +
          3.387132872796366608)) /
      (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r +
        21213.794301586595867) *
        r +
        5394.1960214247511077) *
        r +
        687.1870074920579083) *
        r +
        42.313330701600911252) *
        r +
        1)
    );
  }
  let r = q < 0 ? p : 1 - p;
  r = Math.sqrt(-Math.log(r));
  let value: number;
  if (r <= 5) {
    r -= 1.6;
    value =
      (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r +
        0.24178072517745061177) *
        r +
        1.27045825245236838258) *
        r +
        3.64784832476320460504) *
        r +
        5.7694972214606914055) *
        r +
        4.6303378461565452959) *
        r +
        1.42343711074968357734) /
      (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r +
        0.0151986665636164571966) *
        r +
        0.14810397642748007459) *
        r +
        0.68976733498510000455) *
        r +
        1.6763848301838038494) *
        r +
        2.05319162663775882187) *
        r +
        1);
  } else {
    r -= 5;
    value =
      (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
        0.0012426609473880784386) *
        r +
        0.026532189526576123093) *
        r +
        0.29656057182850489123) *
        r +
        1.7848265399172913358) *
        r +
        5.4637849111641143699) *
        r +
        6.6579046435011037772) /
      (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r +
        1.8463183175100546818e-5) *
        r +
        7.868691311456132591e-4) *
        r +
        0.0148753612908506148525) *
        r +
        0.13692988092273580531) *
        r +
        0.59983220655588793769) *
        r +
        1);
  }
  return q < 0 ? -value : value;
}

/** p-value of an (approximately) standard normal statistic under `alternative`. */
export function pValueFromZ(z: number, alternative: Alternative): number {
  if (Number.isNaN(z)) return NaN;
  switch (alternative) {
    case "greater":
      return normalSf(z);
    case "less":
      return normalCdf(z);
    case "two-sided":
      return Math.min(1, 2 * normalSf(Math.abs(z)));
  }
}

// ---------------------------------------------------------------------------
// Proportions

export interface ProportionTest {
  /** Baseline and canary proportions. */
  p1: number;
  p2: number;
  /** Canary minus baseline. */
  difference: number;
  z: number;
  p: number;
}

/**
 * Pooled two-proportion z-test of x2/n2 (canary) against x1/n1 (baseline).
 * When both samples have no successes (or no failures) there is no evidence of
 * a difference: z = 0, p = 1 (one-sided p = 0.5 would also be defensible, but
 * 1 keeps "no events" from ever looking significant).
 */
export function twoProportionZTest(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  alternative: Alternative = "two-sided",
): ProportionTest {
  if (!(n1 > 0 && n2 > 0)) throw new RangeError("twoProportionZTest: both totals must be positive");
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (!(se > 0)) return { p1, p2, difference: p2 - p1, z: 0, p: 1 };
  const z = (p2 - p1) / se;
  return { p1, p2, difference: p2 - p1, z, p: pValueFromZ(z, alternative) };
}

/** ln C(n, k). */
export function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/**
 * Fisher's exact test of x2/n2 (canary) against x1/n1 (baseline), conditional
 * on the total number of events: under H0 the canary's events are
 * hypergeometric. Unlike the z-test it stays valid with a handful of events
 * and at the tiny significance levels of early sequential looks. Two-sided
 * p-values double the smaller tail. O(number of events) via the pmf recurrence.
 */
export function fisherExactTest(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  alternative: Alternative = "two-sided",
): { p: number } {
  if (!(n1 > 0 && n2 > 0)) throw new RangeError("fisherExactTest: both totals must be positive");
  const events = x1 + x2;
  const total = n1 + n2;
  const lo = Math.max(0, events - n1);
  const hi = Math.min(events, n2);
  const logPmf = (k: number) =>
    logChoose(events, k) + logChoose(total - events, n2 - k) - logChoose(total, n2);
  // Sum a tail starting at k0 and walking away from it until terms stop mattering.
  // Terms are kept relative to the first one (which may be far below the smallest
  // double) and rescaled as they grow, so nothing underflows or overflows.
  const tail = (k0: number, step: 1 | -1): number => {
    let logScale = logPmf(k0);
    let term = 1;
    let sum = 1;
    for (let k = k0; step === 1 ? k < hi : k > lo; k += step) {
      const ratio =
        step === 1
          ? ((events - k) * (n2 - k)) / ((k + 1) * (total - events - n2 + k + 1))
          : (k * (total - events - n2 + k)) / ((events - k + 1) * (n2 - k + 1));
      term *= ratio;
      sum += term;
      if (sum > 1e200) {
        term /= 1e200;
        sum /= 1e200;
        logScale += 200 * Math.LN10;
      }
      if (term < sum * 1e-17 && ratio < 1) break;
    }
    return Math.min(1, Math.exp(logScale + Math.log(sum)));
  };
  const greater = () => (x2 <= lo ? 1 : tail(x2, 1));
  const less = () => (x2 >= hi ? 1 : tail(x2, -1));
  if (alternative === "greater") return { p: greater() };
  if (alternative === "less") return { p: less() };
  return { p: Math.min(1, 2 * Math.min(greater(), less())) };
}

/**
 * One-sample score test of x/n against a fixed proportion p0 (for absolute
 * thresholds such as "error ratio at most 5%").
 */
export function oneProportionZTest(
  x: number,
  n: number,
  p0: number,
  alternative: Alternative,
): { z: number; p: number } {
  if (!(n > 0)) throw new RangeError("oneProportionZTest: total must be positive");
  if (p0 <= 0 || p0 >= 1) {
    // Degenerate bound: any event above a 0 bound (or below a 1 bound) is certain evidence.
    const observed = x / n;
    const beyond =
      alternative === "greater"
        ? observed > p0
        : alternative === "less"
          ? observed < p0
          : observed !== p0;
    return { z: beyond ? (observed > p0 ? Infinity : -Infinity) : 0, p: beyond ? 0 : 1 };
  }
  const z = (x / n - p0) / Math.sqrt((p0 * (1 - p0)) / n);
  return { z, p: pValueFromZ(z, alternative) };
}

/** Wilson score interval for x/n at two-sided confidence `confidence`. */
export function wilsonInterval(
  x: number,
  n: number,
  confidence = 0.95,
): { lower: number; upper: number } {
  if (!(n > 0)) return { lower: 0, upper: 1 };
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = x / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

// ---------------------------------------------------------------------------
// Bayesian beta-binomial

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 1e-15 relative). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  const xm = x - 1;
  let a = c[0];
  const t = xm + g + 0.5;
  for (let i = 1; i < g + 2; i++) a += c[i] / (xm + i);
  return 0.5 * Math.log(2 * Math.PI) + (xm + 0.5) * Math.log(t) - t + Math.log(a);
}

function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

/**
 * P(Y > X) for independent X ~ Beta(a1, b1) (baseline) and Y ~ Beta(a2, b2)
 * (canary). Exact closed form (a sum over a2 terms) when a2 is a small integer,
 * otherwise a normal approximation of the two posteriors.
 *
 * With a Beta(1, 1) prior and counts bad/total this is the posterior
 * probability that the canary's ratio is higher than the baseline's:
 * `betaProbabilityGreater(1 + bad1, 1 + total1 - bad1, 1 + bad2, 1 + total2 - bad2)`.
 */
export function betaProbabilityGreater(a1: number, b1: number, a2: number, b2: number): number {
  if (Number.isInteger(a2) && a2 <= 20_000) {
    // Sum_{i=0}^{a2-1} B(a1+i, b1+b2) / ((b2+i) B(1+i, b2) B(a1, b1))
    let total = 0;
    const lbA = logBeta(a1, b1);
    for (let i = 0; i < a2; i++) {
      total += Math.exp(logBeta(a1 + i, b1 + b2) - Math.log(b2 + i) - logBeta(1 + i, b2) - lbA);
    }
    return Math.min(1, Math.max(0, total));
  }
  const mean = (a: number, b: number) => a / (a + b);
  const variance = (a: number, b: number) => (a * b) / ((a + b) ** 2 * (a + b + 1));
  const z = (mean(a2, b2) - mean(a1, b1)) / Math.sqrt(variance(a1, b1) + variance(a2, b2));
  return normalCdf(z);
}

// ---------------------------------------------------------------------------
// Order statistics helpers

function sortedCopy(values: readonly number[]): Float64Array {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}

/** Quantile with linear interpolation between order statistics (R type 7). */
export function quantile(
  values: readonly number[] | Float64Array,
  q: number,
  alreadySorted = false,
): number {
  if (values.length === 0) return NaN;
  const a = alreadySorted ? values : sortedCopy(values as number[]);
  const h = (a.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return a[lo] + (h - lo) * (a[hi] - a[lo]);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

// ---------------------------------------------------------------------------
// Mann-Whitney U

export interface MannWhitneyResult {
  /** U statistic of the canary: number of (baseline, canary) pairs with canary > baseline, ties counting 1/2. */
  u: number;
  n1: number;
  n2: number;
  /** Normal-approximation z (continuity- and tie-corrected); 0 for the exact method's bookkeeping. */
  z: number;
  p: number;
  method: "exact" | "normal";
  /** Common-language effect size U / (n1 n2): P(canary > baseline) + P(tie)/2. */
  probabilityGreater: number;
}

/** Sizes up to which, without ties, the exact null distribution is used (product n1*n2). */
export const MANN_WHITNEY_EXACT_MAX_PAIRS = 2500;

/**
 * Mann-Whitney U test of canary `y` against baseline `x`.
 * Exact null distribution when there are no ties and n1*n2 <= 2500; otherwise
 * the normal approximation with tie correction and continuity correction.
 * O(N log N).
 */
export function mannWhitneyU(
  x: readonly number[],
  y: readonly number[],
  alternative: Alternative = "two-sided",
): MannWhitneyResult {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) throw new RangeError("mannWhitneyU: both samples must be non-empty");
  for (const v of x)
    if (!Number.isFinite(v)) throw new RangeError("mannWhitneyU: baseline has a non-finite value");
  for (const v of y)
    if (!Number.isFinite(v)) throw new RangeError("mannWhitneyU: canary has a non-finite value");
  const n = n1 + n2;
  // Sort indices of the combined sample; ranks averaged over ties.
  const values = new Float64Array(n);
  for (let i = 0; i < n1; i++) values[i] = x[i];
  for (let j = 0; j < n2; j++) values[n1 + j] = y[j];
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => values[a] - values[b]);
  let rankSumY = 0;
  let tieTerm = 0;
  let hasTies = false;
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && values[order[j]] === values[order[i]]) j++;
    const t = j - i;
    const averageRank = (i + 1 + j) / 2;
    if (t > 1) {
      hasTies = true;
      tieTerm += t * t * t - t;
    }
    for (let k = i; k < j; k++) if (order[k] >= n1) rankSumY += averageRank;
    i = j;
  }
  const u = rankSumY - (n2 * (n2 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const probabilityGreater = u / (n1 * n2);

  if (!hasTies && n1 * n2 <= MANN_WHITNEY_EXACT_MAX_PAIRS) {
    const cdf = mannWhitneyExactCdf(n1, n2);
    const uInt = Math.round(u);
    const pLE = (k: number) => (k < 0 ? 0 : k >= cdf.length ? 1 : cdf[k]);
    const pGreater = 1 - pLE(uInt - 1); // P(U >= u)
    const pLess = pLE(uInt); // P(U <= u)
    const p =
      alternative === "greater"
        ? pGreater
        : alternative === "less"
          ? pLess
          : Math.min(1, 2 * Math.min(pGreater, pLess));
    const sd = Math.sqrt((n1 * n2 * (n + 1)) / 12);
    return {
      u,
      n1,
      n2,
      z: (u - mean) / sd,
      p: Math.min(1, Math.max(0, p)),
      method: "exact",
      probabilityGreater,
    };
  }

  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  if (!(variance > 0)) {
    // Every value equal: no evidence either way.
    return { u, n1, n2, z: 0, p: 1, method: "normal", probabilityGreater };
  }
  const sd = Math.sqrt(variance);
  const d = u - mean;
  let z: number;
  if (alternative === "greater") z = (d - 0.5) / sd;
  else if (alternative === "less") z = (d + 0.5) / sd;
  else z = (Math.sign(d) * Math.max(0, Math.abs(d) - 0.5)) / sd;
  return { u, n1, n2, z, p: pValueFromZ(z, alternative), method: "normal", probabilityGreater };
}

const exactCdfCache = new Map<string, Float64Array>();

/**
 * CDF of U under H0 without ties: P(U <= k), k = 0..n1*n2. The counts are the
 * coefficients of the Gaussian binomial [n1+n2 choose n1]_q, built as
 * prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i) with m = min(n1, n2).
 */
export function mannWhitneyExactCdf(n1: number, n2: number): Float64Array {
  const m = Math.min(n1, n2);
  const n = Math.max(n1, n2);
  const key = `${m},${n}`;
  const cached = exactCdfCache.get(key);
  if (cached) return cached;
  const size = m * n + 1;
  const c = new Float64Array(size);
  c[0] = 1;
  let degree = 0;
  for (let i = 1; i <= m; i++) {
    // multiply by (1 - q^(n+i))
    const s = n + i;
    const newDegree = degree + s;
    for (let k = Math.min(newDegree, size - 1); k >= s; k--) c[k] -= c[k - s];
    degree = newDegree;
    // divide by (1 - q^i): running sum with stride i
    for (let k = i; k < size; k++) c[k] += c[k - i];
    degree -= i;
  }
  let total = 0;
  for (let k = 0; k < size; k++) total += c[k];
  const cdf = new Float64Array(size);
  // Accumulate from the nearer tail so that small tail probabilities keep their precision.
  let acc = 0;
  const half = Math.floor((size - 1) / 2);
  for (let k = 0; k <= half; k++) {
    acc += c[k];
    cdf[k] = acc / total;
  }
  acc = 0;
  for (let k = size - 1; k > half; k--) {
    cdf[k] = 1 - acc / total;
    acc += c[k];
  }
  exactCdfCache.set(key, cdf);
  return cdf;
}

// ---------------------------------------------------------------------------
// Hodges-Lehmann shift

export interface HodgesLehmannResult {
  /** Median of all pairwise differences canary - baseline. */
  estimate: number;
  /** Distribution-free confidence interval for the shift (normal approximation of U's quantiles). */
  lower: number;
  upper: number;
  confidence: number;
}

/** Small deterministic PRNG (mulberry32) for pivot choice: results never depend on luck. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * k-th smallest (0-based) of the m*n differences ys[j] - xs[i], both arrays
 * sorted ascending, without materialising them: randomised selection over
 * per-row candidate ranges (Monahan 1984), O((m + n) log(mn)) expected.
 */
export function selectPairwiseDifference(xs: Float64Array, ys: Float64Array, k: number): number {
  const m = xs.length;
  const n = ys.length;
  if (k < 0 || k >= m * n) throw new RangeError("selectPairwiseDifference: k out of range");
  const lo = new Int32Array(m); // candidates in row i are columns [lo[i], hi[i])
  const hi = new Int32Array(m).fill(n);
  const lessCount = new Int32Array(m);
  const lessEqualCount = new Int32Array(m);
  const random = mulberry32(0x5eed ^ (m * 31 + n));
  let below = 0; // differences known to rank below k (left of the candidate ranges)
  for (;;) {
    let candidates = 0;
    for (let i = 0; i < m; i++) candidates += hi[i] - lo[i];
    if (candidates <= Math.max(64, m + n)) {
      const rest: number[] = [];
      for (let i = 0; i < m; i++) for (let j = lo[i]; j < hi[i]; j++) rest.push(ys[j] - xs[i]);
      rest.sort((a, b) => a - b);
      return rest[k - below];
    }
    let r = Math.floor(random() * candidates);
    let pivot = NaN;
    for (let i = 0; i < m; i++) {
      const w = hi[i] - lo[i];
      if (r < w) {
        pivot = ys[lo[i] + r] - xs[i];
        break;
      }
      r -= w;
    }
    // For each row, count columns with difference < pivot and <= pivot.
    // Threshold pivot + xs[i] grows with i, so both pointers only move right.
    let jl = 0;
    let jle = 0;
    let totalLess = 0;
    let totalLessEqual = 0;
    for (let i = 0; i < m; i++) {
      while (jl < n && ys[jl] - xs[i] < pivot) jl++;
      while (jle < n && ys[jle] - xs[i] <= pivot) jle++;
      lessCount[i] = jl;
      lessEqualCount[i] = jle;
      totalLess += jl;
      totalLessEqual += jle;
    }
    if (k < totalLess) {
      for (let i = 0; i < m; i++) if (hi[i] > lessCount[i]) hi[i] = Math.max(lo[i], lessCount[i]);
    } else if (k < totalLessEqual) {
      return pivot;
    } else {
      for (let i = 0; i < m; i++)
        if (lo[i] < lessEqualCount[i]) lo[i] = Math.min(hi[i], lessEqualCount[i]);
    }
    // Every column left of lo[i] holds a difference ranked below k.
    below = 0;
    for (let i = 0; i < m; i++) below += lo[i];
  }
}

/**
 * Hodges-Lehmann estimate of the shift canary - baseline: the median of all
 * pairwise differences, with a confidence interval from the order statistics
 * of those differences. O((m + n) log(mn)); no subsampling needed.
 */
export function hodgesLehmann(
  x: readonly number[],
  y: readonly number[],
  confidence = 0.95,
): HodgesLehmannResult {
  const m = x.length;
  const n = y.length;
  if (m === 0 || n === 0) throw new RangeError("hodgesLehmann: both samples must be non-empty");
  const xs = sortedCopy(x);
  const ys = sortedCopy(y);
  const total = m * n;
  const mid = Math.floor(total / 2);
  const estimate =
    total % 2 === 1
      ? selectPairwiseDifference(xs, ys, mid)
      : (selectPairwiseDifference(xs, ys, mid - 1) + selectPairwiseDifference(xs, ys, mid)) / 2;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const ka = Math.floor(total / 2 - z * Math.sqrt((m * n * (m + n + 1)) / 12));
  const lowerIndex = Math.max(0, Math.min(total - 1, ka));
  const upperIndex = Math.max(0, Math.min(total - 1, total - 1 - ka));
  return {
    estimate,
    lower: selectPairwiseDifference(xs, ys, lowerIndex),
    upper: selectPairwiseDifference(xs, ys, upperIndex),
    confidence,
  };
}

// ---------------------------------------------------------------------------
// Multiple comparisons

/**
 * Holm-Bonferroni adjusted p-values (step-down, monotone). Comparing each
 * adjusted p with alpha controls the family-wise error rate at alpha.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

// ---------------------------------------------------------------------------
// Group-sequential boundaries

/** Lan-DeMets O'Brien-Fleming-type spending: alpha spent by information fraction t (one-sided). */
export function obrienFlemingSpending(t: number, alpha: number): number {
  if (t <= 0) return 0;
  if (t >= 1) return alpha;
  return 2 * normalSf(-normalQuantile(alpha / 2) / Math.sqrt(t));
}

const boundaryCache = new Map<string, number[]>();

/**
 * One-sided efficacy boundaries z_1..z_K for K equally spaced looks at
 * accumulating data, such that a standardised statistic that behaves like
 * Brownian motion under H0 crosses some z_k with probability exactly `alpha`,
 * spent with the O'Brien-Fleming-type function. Computed by recursive
 * numerical integration of the continuation density (Armitage, McPherson &
 * Rowe 1969; Jennison & Turnbull 2000, ch. 19), Simpson's rule on a grid.
 * Unlike a union bound over looks, no alpha is wasted on their correlation.
 */
export function groupSequentialBoundaries(count: number, alpha: number): number[] {
  const cacheKey = `${count}:${alpha}`;
  const cached = boundaryCache.get(cacheKey);
  if (cached) return cached;
  const points = 301; // odd, for Simpson's rule
  const width = 8; // grid reaches 8 standard deviations below
  const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  const boundaries: number[] = [];
  let grid = new Float64Array(points);
  let density = new Float64Array(points);
  let weights = new Float64Array(points);
  const layout = (lo: number, hi: number) => {
    const h = (hi - lo) / (points - 1);
    const g = new Float64Array(points);
    const w = new Float64Array(points);
    for (let i = 0; i < points; i++) {
      g[i] = lo + i * h;
      w[i] = (h / 3) * (i === 0 || i === points - 1 ? 1 : i % 2 === 1 ? 4 : 2);
    }
    return { g, w };
  };
  let previousT = 0;
  for (let k = 1; k <= count; k++) {
    const t = k / count;
    const target = obrienFlemingSpending(t, alpha) - obrienFlemingSpending(previousT, alpha);
    let b: number; // boundary on the Brownian scale S_t = Z_t * sqrt(t)
    if (k === 1) {
      b = Math.min(-normalQuantile(target), 40) * Math.sqrt(t);
    } else {
      const sd = Math.sqrt(t - previousT);
      const exit = (bound: number) => {
        let p = 0;
        for (let i = 0; i < points; i++)
          p += weights[i] * density[i] * normalSf((bound - grid[i]) / sd);
        return p;
      };
      let lo = grid[0];
      let hi = grid[points - 1] + 12 * sd;
      for (let iter = 0; iter < 100 && hi - lo > 1e-10; iter++) {
        const mid = (lo + hi) / 2;
        if (exit(mid) > target) lo = mid;
        else hi = mid;
      }
      b = Math.min((lo + hi) / 2, 40 * Math.sqrt(t));
    }
    boundaries.push(b / Math.sqrt(t));
    if (k === count) break;
    // Density of S_t on the continuation region (-inf, b].
    const lower = -width * Math.sqrt(t);
    const { g, w } = layout(Math.min(lower, b - 1e-6), b);
    const next = new Float64Array(points);
    if (k === 1) {
      for (let j = 0; j < points; j++) next[j] = phi(g[j] / Math.sqrt(t)) / Math.sqrt(t);
    } else {
      const sd = Math.sqrt(t - previousT);
      for (let j = 0; j < points; j++) {
        let s = 0;
        for (let i = 0; i < points; i++) s += weights[i] * density[i] * phi((g[j] - grid[i]) / sd);
        next[j] = s / sd;
      }
    }
    grid = g;
    weights = w;
    density = next;
    previousT = t;
  }
  boundaryCache.set(cacheKey, boundaries);
  return boundaries;
}
