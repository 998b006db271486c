import { Agent, request } from "node:http";
import type { Slot } from "../config/schema";
import type { Weights } from "../traffic/weights";

/**
 * The rehearsal's traffic: real HTTP requests on loopback, split between the
 * slots by the weights the stage's HTTPRoute holds right now (the job a
 * gateway does in a cluster). Bounded in rate, concurrency, count and time.
 *
 * The split is a smooth weighted round robin (as nginx does it), so that a
 * weight of 20 sends exactly one request in five to the candidate rather than
 * a random number close to it.
 */

export interface LoadOptions {
  /** Requests per second, all slots together. */
  rate: number;
  /** Base URL of each slot; loopback only. */
  target: (slot: Slot) => string;
  weights: () => Weights | undefined;
  path?: string;
  /** Requests in flight at most; beyond it a request is skipped and counted. */
  concurrency?: number;
  maxRequests?: number;
  maxDurationMs?: number;
  timeoutMs?: number;
}

export interface SlotLoad {
  sent: number;
  ok: number;
  /** 5xx answers: what the service's own metrics count as errors. */
  serverErrors: number;
  otherStatus: number;
  /** No answer: connection refused, reset or timed out. */
  failed: number;
}

export interface LoadStats {
  sent: number;
  skipped: number;
  bySlot: Record<Slot, SlotLoad>;
  startedAt?: number;
  stoppedAt?: number;
  /** Why the generator stopped on its own, if it did (a bound was reached). */
  stopReason?: string;
}

const emptySlot = (): SlotLoad => ({ sent: 0, ok: 0, serverErrors: 0, otherStatus: 0, failed: 0 });
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export class LoadGenerator {
  readonly stats: LoadStats = {
    sent: 0,
    skipped: 0,
    bySlot: { blue: emptySlot(), green: emptySlot() },
  };
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private current = { blue: 0, green: 0 };
  private readonly agent: Agent;
  private drained: (() => void) | undefined;
  private window: Record<Slot, SlotLoad> | undefined;

  constructor(readonly options: LoadOptions) {
    if (!(options.rate > 0 && options.rate <= 2000))
      throw new Error(
        `load rate: got ${options.rate}; allowed: 0 < rate <= 2000 requests per second`,
      );
    this.agent = new Agent({ keepAlive: true, maxSockets: options.concurrency ?? 64 });
  }

  start(): void {
    const started = Date.now();
    this.stats.startedAt = started;
    const tickMs = 10;
    this.timer = setInterval(() => {
      const elapsed = Date.now() - started;
      if (this.options.maxDurationMs !== undefined && elapsed > this.options.maxDurationMs) {
        return void this.halt(`ran for its longest time, ${this.options.maxDurationMs} ms`);
      }
      const due =
        Math.floor((elapsed / 1000) * this.options.rate) - (this.stats.sent + this.stats.skipped);
      for (let i = 0; i < due; i++) {
        if (
          this.options.maxRequests !== undefined &&
          this.stats.sent + this.stats.skipped >= this.options.maxRequests
        ) {
          return void this.halt(`sent its most requests, ${this.options.maxRequests}`);
        }
        this.fire();
      }
    }, tickMs);
  }

  private halt(reason?: string): void {
    if (reason) this.stats.stopReason ??= reason;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stats.stoppedAt ??= Date.now();
  }

  /**
   * Counts from now on into a fresh tally as well, returned live. A request belongs to the
   * tally that was current when it was sent, even if its answer comes after the next one.
   */
  startTally(): Record<Slot, SlotLoad> {
    this.window = { blue: emptySlot(), green: emptySlot() };
    return this.window;
  }

  /** Stops adding new requests to the current tally (answers to those already sent still count). */
  endTally(): void {
    this.window = undefined;
  }

  /** Smooth weighted round robin: the slot for the next request, or undefined when no weights are known. */
  private pick(): Slot | undefined {
    const w = this.options.weights();
    if (!w || w.blue + w.green <= 0) return undefined;
    this.current.blue += w.blue;
    this.current.green += w.green;
    const slot: Slot = this.current.blue >= this.current.green ? "blue" : "green";
    this.current[slot] -= w.blue + w.green;
    return slot;
  }

  private fire(): void {
    const slot = this.pick();
    if (!slot || this.inFlight >= (this.options.concurrency ?? 64)) {
      this.stats.skipped++;
      return;
    }
    const url = new URL(this.options.path ?? "/work", this.options.target(slot));
    if (!LOOPBACK.has(url.hostname))
      throw new Error(
        `load generator: ${url.host} is not a loopback address; it only sends to 127.0.0.1`,
      );
    const counters = [this.stats.bySlot[slot], ...(this.window ? [this.window[slot]] : [])];
    this.stats.sent++;
    for (const c of counters) c.sent++;
    this.inFlight++;
    let settled = false;
    const done = (outcome: "ok" | "serverError" | "other" | "failed") => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      for (const c of counters) {
        if (outcome === "ok") c.ok++;
        else if (outcome === "serverError") c.serverErrors++;
        else if (outcome === "other") c.otherStatus++;
        else c.failed++;
      }
      if (this.inFlight === 0) this.drained?.();
    };
    const req = request(
      url,
      { agent: this.agent, timeout: this.options.timeoutMs ?? 5000 },
      (res) => {
        res.resume();
        res.on("end", () => {
          const code = res.statusCode ?? 0;
          done(code >= 200 && code < 300 ? "ok" : code >= 500 ? "serverError" : "other");
        });
        res.on("error", () => done("failed"));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => done("failed"));
    req.end();
  }

  /** Stops sending and waits (at most `graceMs`) for requests in flight. */
  async stop(graceMs = 3000): Promise<LoadStats> {
    this.halt();
    if (this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((r) => (this.drained = r)),
        new Promise((r) => setTimeout(r, graceMs)),
      ]);
    }
    this.agent.destroy();
    return this.stats;
  }
}
