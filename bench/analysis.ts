/**
 * Canary-analysis benchmark: how often each judge gets a canary step right.
 *
 *   npm run bench:analysis     (RUNS=2000 runs per cell by default; RUNS=200 for a quick
 *                               look; COUNT=10 for 10-interval canary steps)
 *
 * Seeded and reproducible: every run's traffic comes from a mulberry32 PRNG
 * seeded from (cell, run), and the three judges see the same traffic.
 *
 * Traffic model (one canary step):
 *   - a stream of STREAM = 10,000 requests per analysis interval (1 minute,
 *     ≈167 requests/s), split between candidate (weight w) and stable (1 - w);
 *   - COUNT = 5 intervals per step (5 minutes; env COUNT); each interval has 6 steps of
 *     10 s for per-step latency samples (what the Prometheus provider returns);
 *   - errors: each request fails independently with the slot's error ratio
 *     (stable 0.5%, 1% or 2%; candidate the same, or ×1.5, ×2, ×5);
 *   - latency: lognormal per request, median 100 ms, σ = 0.5 (p99 ≈ 320 ms);
 *     regressions multiply every candidate latency by 1.10 or 1.50.
 *
 * Judges:
 *   - slipway: runAnalysis + judge (cumulative windows, alpha 0.01 spent over
 *     the 5 looks, Holm across 2 metrics, margin rule for passes); errors
 *     tolerance 10% (critical), latency (per-step means) tolerance 5%.
 *   - flagger-style: every interval, canary error rate < 1% and canary p99 <
 *     400 ms over that interval; rolls back when failed checks reach 2.
 *   - argo-style: every interval, the same conditions on the candidate alone,
 *     failureLimit 0 (Argo's default): the first failed measurement aborts.
 *   - flagger-tuned: flagger-style with the error threshold set per service at
 *     twice its own stable error ratio (what a careful operator would write).
 */
import { runAnalysis, type AnalysisWindow, type MetricInputs } from "../src/analysis/run";
import { analysisSpecSchema } from "../src/analysis/spec";
import { mulberry32, normalQuantile } from "../src/analysis/stats";

const RUNS = Number(process.env.RUNS ?? 2000);
const STREAM = 10_000;
const COUNT = Number(process.env.COUNT ?? 5);
const STEPS = 6;
const WEIGHTS = [0.01, 0.05, 0.25];
const BASE_ERROR = [0.005, 0.01, 0.02];
const LAT_MU = Math.log(0.1);
const LAT_SIGMA = 0.5;
const FIXED_ERROR_MAX = 0.01;
const FIXED_P99_MAX = 0.4;
const FLAGGER_THRESHOLD = 2;

interface Scenario {
  name: string;
  errorFactor: number;
  latencyFactor: number;
}
const SCENARIOS: Scenario[] = [
  { name: "A/A", errorFactor: 1, latencyFactor: 1 },
  { name: "errors ×1.5", errorFactor: 1.5, latencyFactor: 1 },
  { name: "errors ×2", errorFactor: 2, latencyFactor: 1 },
  { name: "errors ×5", errorFactor: 5, latencyFactor: 1 },
  { name: "latency +10%", errorFactor: 1, latencyFactor: 1.1 },
  { name: "latency +50%", errorFactor: 1, latencyFactor: 1.5 },
];

// ---------------------------------------------------------------------------
// Seeded randomness (mulberry32 from the statistics module)

class Random {
  private spare: number | undefined;
  constructor(readonly uniform: () => number) {}
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
  /** Binomial(n, p) by geometric skips: O(np). */
  binomial(n: number, p: number): number {
    if (p <= 0) return 0;
    const logq = Math.log(1 - p);
    let x = 0;
    let i = Math.floor(Math.log(1 - this.uniform()) / logq);
    while (i < n) {
      x++;
      i += 1 + Math.floor(Math.log(1 - this.uniform()) / logq);
    }
    return x;
  }
  /** Gamma(shape, 1), Marsaglia-Tsang (shape >= 1). */
  gamma(shape: number): number {
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniform();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v)))
        return d * v;
    }
  }
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }
}

/** Mean of m lognormal latencies: exact sum for small m, the CLT beyond. */
function stepMeanLatency(rng: Random, m: number, factor: number): number {
  if (m <= 0) return NaN;
  const mean = Math.exp(LAT_MU + (LAT_SIGMA * LAT_SIGMA) / 2) * factor;
  if (m > 64) {
    const sd = (mean * Math.sqrt(Math.exp(LAT_SIGMA * LAT_SIGMA) - 1)) / Math.sqrt(m);
    return mean + sd * rng.normal();
  }
  let sum = 0;
  for (let i = 0; i < m; i++) sum += Math.exp(LAT_MU + LAT_SIGMA * rng.normal());
  return (sum / m) * factor;
}

/** Nearest-rank p99 of n lognormal latencies, via the Beta law of uniform order statistics. */
function sampleP99(rng: Random, n: number, factor: number): number {
  const k = Math.ceil(0.99 * n);
  const u = rng.beta(k, n - k + 1);
  return Math.exp(LAT_MU + LAT_SIGMA * normalQuantile(u)) * factor;
}

// ---------------------------------------------------------------------------
// One simulated canary step

interface Interval {
  canary: { bad: number; total: number; stepMeans: number[]; p99: number };
  baseline: { bad: number; total: number; stepMeans: number[] };
}

function simulate(rng: Random, weight: number, baseError: number, s: Scenario): Interval[] {
  const nCanary = Math.round(STREAM * weight);
  const nBase = STREAM - nCanary;
  const out: Interval[] = [];
  for (let k = 0; k < COUNT; k++) {
    const split = (n: number) =>
      Array.from(
        { length: STEPS },
        (_, i) => Math.floor((n * (i + 1)) / STEPS) - Math.floor((n * i) / STEPS),
      );
    out.push({
      canary: {
        bad: rng.binomial(nCanary, Math.min(1, baseError * s.errorFactor)),
        total: nCanary,
        stepMeans: split(nCanary).map((m) => stepMeanLatency(rng, m, s.latencyFactor)),
        p99: sampleP99(rng, nCanary, s.latencyFactor),
      },
      baseline: {
        bad: rng.binomial(nBase, baseError),
        total: nBase,
        stepMeans: split(nBase).map((m) => stepMeanLatency(rng, m, 1)),
      },
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Judges

type Outcome = { verdict: "pass" | "fail" | "inconclusive"; canaryRequests: number };

const spec = analysisSpecSchema.parse({
  interval: 60,
  count: COUNT,
  alpha: 0.01,
  minSamples: 100,
  window: "cumulative",
  metrics: [
    { name: "errors", type: "ratio", direction: "increase", tolerance: 0.1, critical: true },
    { name: "latency", type: "samples", direction: "increase", tolerance: 0.05, minSamples: 6 },
  ],
});

async function slipwayJudge(intervals: Interval[]): Promise<Outcome> {
  let t = 0;
  const now = () => t;
  const sleep = async (ms: number) => {
    t += ms;
  };
  const fetch = async (w: AnalysisWindow): Promise<MetricInputs> => {
    const upTo = Math.round((w.end.getTime() - w.start.getTime()) / 60_000);
    const seen = intervals.slice(0, upTo);
    const sum = (f: (i: Interval) => number) => seen.reduce((a, i) => a + f(i), 0);
    return {
      errors: {
        baseline: { bad: sum((i) => i.baseline.bad), total: sum((i) => i.baseline.total) },
        canary: { bad: sum((i) => i.canary.bad), total: sum((i) => i.canary.total) },
      },
      latency: {
        baseline: seen.flatMap((i) => i.baseline.stepMeans).filter(Number.isFinite),
        canary: seen.flatMap((i) => i.canary.stepMeans).filter(Number.isFinite),
      },
    };
  };
  const out = await runAnalysis({ spec, fetch, now, sleep });
  const looks = out.measurements.length;
  return {
    verdict: out.verdict,
    canaryRequests: intervals.slice(0, looks).reduce((a, i) => a + i.canary.total, 0),
  };
}

function thresholdJudge(
  intervals: Interval[],
  failuresToAbort: number,
  errorMax = FIXED_ERROR_MAX,
): Outcome {
  let failed = 0;
  let requests = 0;
  for (const i of intervals) {
    requests += i.canary.total;
    const errorRate = i.canary.bad / i.canary.total;
    if (errorRate >= errorMax || i.canary.p99 >= FIXED_P99_MAX) failed++;
    if (failed >= failuresToAbort) return { verdict: "fail", canaryRequests: requests };
  }
  return { verdict: "pass", canaryRequests: requests };
}

const JUDGES = ["slipway", "flagger-style", "argo-style", "flagger-tuned"] as const;
type JudgeName = (typeof JUDGES)[number];

// ---------------------------------------------------------------------------
// Run the grid

interface Tally {
  runs: number;
  pass: number;
  fail: number;
  inconclusive: number;
  requests: number[];
}
const tally = () => ({ runs: 0, pass: 0, fail: 0, inconclusive: 0, requests: [] as number[] });
const key = (judge: JudgeName, scenario: string, weight: number, base?: number) =>
  `${judge}|${scenario}|${weight}|${base ?? "*"}`;

function median(values: number[]): number {
  const a = [...values].sort((x, y) => x - y);
  return a.length === 0 ? NaN : a[Math.floor((a.length - 1) / 2)];
}

async function main(): Promise<void> {
  const started = performance.now();
  const tallies = new Map<string, Tally>();
  const add = (k: string, o: Outcome) => {
    const t = tallies.get(k) ?? tally();
    t.runs++;
    t[o.verdict]++;
    t.requests.push(o.canaryRequests);
    tallies.set(k, t);
  };

  let cell = 0;
  for (const weight of WEIGHTS) {
    for (const base of BASE_ERROR) {
      for (const scenario of SCENARIOS) {
        cell++;
        for (let run = 0; run < RUNS; run++) {
          const rng = new Random(mulberry32(cell * 1_000_003 + run * 7919 + 17));
          const intervals = simulate(rng, weight, base, scenario);
          const outcomes: Record<JudgeName, Outcome> = {
            slipway: await slipwayJudge(intervals),
            "flagger-style": thresholdJudge(intervals, FLAGGER_THRESHOLD),
            "argo-style": thresholdJudge(intervals, 1),
            "flagger-tuned": thresholdJudge(intervals, FLAGGER_THRESHOLD, 2 * base),
          };
          for (const judge of JUDGES) {
            add(key(judge, scenario.name, weight, base), outcomes[judge]);
            add(key(judge, scenario.name, weight), outcomes[judge]);
          }
        }
      }
    }
  }

  const pctOf = (n: number, d: number) => `${((100 * n) / d).toFixed(1)}%`.padStart(6);
  const lines: string[] = [];
  lines.push(
    `# Canary analysis benchmark — ${RUNS} runs per cell, stream ${STREAM} requests/interval, ${COUNT} intervals`,
  );
  lines.push("");
  lines.push(
    "Rate of verdicts by scenario and candidate weight (all three baseline error ratios 0.5%, 1%, 2% pooled).",
  );
  lines.push(
    "For A/A, `fail` is a false failure; for a regression it is a detection and `pass` is a miss.",
  );
  lines.push("");
  lines.push(
    "| judge | scenario | weight | fail | inconclusive | pass | median candidate requests to verdict |",
  );
  lines.push("|---|---|---:|---:|---:|---:|---:|");
  for (const judge of JUDGES) {
    for (const s of SCENARIOS) {
      for (const w of WEIGHTS) {
        const t = tallies.get(key(judge, s.name, w))!;
        lines.push(
          `| ${judge} | ${s.name} | ${(w * 100).toFixed(0)}% | ${pctOf(t.fail, t.runs)} | ${pctOf(t.inconclusive, t.runs)} | ${pctOf(t.pass, t.runs)} | ${median(t.requests)} |`,
        );
      }
    }
  }

  lines.push("");
  lines.push("Errors ×2 at 5% weight, by baseline error ratio (detection = fail):");
  lines.push("");
  lines.push("| judge | 0.5% | 1% | 2% |");
  lines.push("|---|---:|---:|---:|");
  for (const judge of JUDGES) {
    const cells = BASE_ERROR.map((b) => {
      const t = tallies.get(key(judge, "errors ×2", 0.05, b))!;
      return pctOf(t.fail, t.runs);
    });
    lines.push(`| ${judge} | ${cells.join(" | ")} |`);
  }

  lines.push("");
  lines.push("A/A false failures by baseline error ratio (all weights):");
  lines.push("");
  lines.push("| judge | 0.5% | 1% | 2% | all |");
  lines.push("|---|---:|---:|---:|---:|");
  for (const judge of JUDGES) {
    let allFail = 0;
    let allRuns = 0;
    const cells = BASE_ERROR.map((b) => {
      let fail = 0;
      let runs = 0;
      for (const w of WEIGHTS) {
        const t = tallies.get(key(judge, "A/A", w, b))!;
        fail += t.fail;
        runs += t.runs;
      }
      allFail += fail;
      allRuns += runs;
      return pctOf(fail, runs);
    });
    lines.push(`| ${judge} | ${cells.join(" | ")} | ${pctOf(allFail, allRuns)} |`);
  }

  lines.push("");
  lines.push(
    "Wrong verdicts over the whole grid (A/A failed, or regression passed); inconclusive counted apart:",
  );
  lines.push("");
  lines.push("| judge | wrong | of runs | inconclusive |");
  lines.push("|---|---:|---:|---:|");
  for (const judge of JUDGES) {
    let wrong = 0;
    let runs = 0;
    let inconclusive = 0;
    for (const s of SCENARIOS) {
      for (const w of WEIGHTS) {
        const t = tallies.get(key(judge, s.name, w))!;
        wrong += s.name === "A/A" ? t.fail : t.pass;
        inconclusive += t.inconclusive;
        runs += t.runs;
      }
    }
    lines.push(
      `| ${judge} | ${wrong} (${pctOf(wrong, runs).trim()}) | ${runs} | ${inconclusive} (${pctOf(inconclusive, runs).trim()}) |`,
    );
  }
  lines.push("");
  lines.push(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  console.log(lines.join("\n"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
