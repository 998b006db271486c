import type { Slot } from "../domain";
import type { Weights } from "../traffic/weights";
import type { ServedCount } from "./supervisor";

/**
 * The traffic split of a release as observed at the services, per stretch of
 * time in which the stack held one set of weights: from the moment the
 * pipeline read the weights back (after an update) until the next update
 * starts. Updates themselves are left out, since the weights change during
 * them. The counts are the slots' own request counters (what each slot
 * served), not what the load generator sent.
 */

export interface ObservedStep {
  /** The weights the stack held (read back from the route) during this stretch. */
  weights: Weights;
  candidateWeight: number;
  /** Whether the read-back matched what the pipeline expected (false: drift). */
  verified: boolean;
  startedAt: number;
  endedAt: number;
  requests: { candidate: number; stable: number; total: number };
  candidateErrors: number;
  stableErrors: number;
  /** Candidate share of the requests served, 0–100; undefined when none were served. */
  candidateShare?: number;
}

type Reading = Record<Slot, ServedCount>;

interface Open {
  weights: Weights;
  verified: boolean;
  at: number;
  reading: Promise<Reading>;
}

/**
 * Fed with the pipeline's events as they happen: `held` when weights are read back,
 * `changing` when an update starts, `end` at the release's end. Each gets a reading of
 * the services' counters (a promise, taken at that moment).
 */
export class SplitRecorder {
  private open: Open | undefined;
  private readonly closed: Promise<ObservedStep | undefined>[] = [];

  constructor(readonly candidate: Slot) {}

  held(weights: Weights, verified: boolean, reading: Promise<Reading>, at = Date.now()): void {
    if (
      this.open &&
      this.open.weights.blue === weights.blue &&
      this.open.weights.green === weights.green &&
      this.open.verified === verified
    )
      return;
    this.close(reading, at);
    this.open = { weights, verified, at, reading };
  }

  changing(reading: Promise<Reading>, at = Date.now()): void {
    this.close(reading, at);
  }

  private close(reading: Promise<Reading>, at: number): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const candidate = this.candidate;
    this.closed.push(
      Promise.all([open.reading, reading]).then(
        ([before, after]) => observedStep(open, at, before, after, candidate),
        () => undefined,
      ),
    );
  }

  /** Closes the open stretch with `reading` and returns every stretch, in order. */
  async finish(reading: Promise<Reading>, at = Date.now()): Promise<ObservedStep[]> {
    this.close(reading, at);
    return (await Promise.all(this.closed)).filter((s): s is ObservedStep => !!s);
  }
}

export function observedStep(
  open: { weights: Weights; verified: boolean; at: number },
  endedAt: number,
  before: Reading,
  after: Reading,
  candidate: Slot,
): ObservedStep {
  const stable: Slot = candidate === "blue" ? "green" : "blue";
  const served = (s: Slot) => Math.max(0, after[s].total - before[s].total);
  const errors = (s: Slot) => Math.max(0, after[s].errors - before[s].errors);
  const c = served(candidate);
  const s = served(stable);
  return {
    weights: open.weights,
    candidateWeight: open.weights[candidate],
    verified: open.verified,
    startedAt: open.at,
    endedAt,
    requests: { candidate: c, stable: s, total: c + s },
    candidateErrors: errors(candidate),
    stableErrors: errors(stable),
    ...(c + s > 0 ? { candidateShare: (100 * c) / (c + s) } : {}),
  };
}
