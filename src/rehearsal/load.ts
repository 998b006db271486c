import { Agent, request } from "node:http";
import type { Slot } from "../domain";
import type { Weights } from "../traffic/weights";

/**
 * The rehearsal's traffic: real HTTP requests on loopback, bounded in rate,
 * concurrency, count and time. Two targets:
 *
 * - `gateway` (the live cluster): every request goes to the Gateway's address
 *   (Traefik), with the Host header when the route has hostnames. Which slot
 *   answers is Traefik's decision from the HTTPRoute; the generator does not
 *   know the weights, so its counts are per answer, not per slot (what each
 *   slot served is read from the services' own counters).
 * - `split` (render mode, no gateway): the generator plays the gateway and
 *   splits by the rendered HTTPRoute's weights with a smooth weighted round
 *   robin (as nginx does it), so 20% is exactly one request in five.
 */

export type LoadTarget =
  | { kind: "gateway"; url: string; host?: string }
  | {
      kind: "split";
      /** Base URL of each slot; loopback only. */
      target: (slot: Slot) => string | undefined;
      weights: () => Weights | undefined;
    };

export interface LoadOptions {
  /** Requests per second, all slots together. */
  rate: number;
  target: LoadTarget;
  path?: string;
  /** Extra headers on every request (the tester header, for a smoke check through the gateway). */
  headers?: Record<string, string>;
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
  /** The 5xx answers by status code, and when the first and the last came (ms since the epoch). */
  serverErrorCodes?: Record<string, number>;
  serverErrorSpan?: { first: number; last: number };
  /**
   * 5xx answers that came before the first 2xx: while a stage is first created, the Gateway may
   * take the new route before the slot's process listens (on the local cluster kwok declares a
   * pod ready at once, where a kubelet would wait for its readiness probe).
   */
  serverErrorsBeforeServing?: number;
  /** When the first 2xx came (ms since the epoch). */
  firstOkAt?: number;
}

function countOk(c: SlotLoad): void {
  c.ok++;
  c.firstOkAt ??= Date.now();
}

function countServerError(c: SlotLoad, code: number): void {
  c.serverErrors++;
  if (c.ok === 0) c.serverErrorsBeforeServing = (c.serverErrorsBeforeServing ?? 0) + 1;
  const codes = (c.serverErrorCodes ??= {});
  codes[code] = (codes[code] ?? 0) + 1;
  const now = Date.now();
  c.serverErrorSpan = { first: c.serverErrorSpan?.first ?? now, last: now };
}

/** "502×40 503×2, from 12.3 s to 12.9 s" (seconds since `since`), or "" without 5xx answers. */
export function describeServerErrors(c: SlotLoad, since: number): string {
  if (!c.serverErrors || !c.serverErrorSpan) return "";
  const codes = Object.entries(c.serverErrorCodes ?? {})
    .map(([code, n]) => `${code}×${n}`)
    .join(" ");
  const at = (t: number) => `${((t - since) / 1000).toFixed(1)} s`;
  const before = c.serverErrorsBeforeServing
    ? `, ${c.serverErrorsBeforeServing} of them before the first 2xx at ${c.firstOkAt ? at(c.firstOkAt) : "-"}`
    : "";
  return `${codes}, from ${at(c.serverErrorSpan.first)} to ${at(c.serverErrorSpan.last)}${before}`;
}

/** What the generator saw: all answers, and per slot where it chose the slot (split mode). */
export interface LoadTally {
  /** When counting began (ms since the epoch). */
  since?: number;
  total: SlotLoad;
  bySlot?: Record<Slot, SlotLoad>;
}

export interface LoadStats extends LoadTally {
  sent: number;
  skipped: number;
  startedAt?: number;
  stoppedAt?: number;
  /** Why the generator stopped on its own, if it did (a bound was reached). */
  stopReason?: string;
}

const emptySlot = (): SlotLoad => ({ sent: 0, ok: 0, serverErrors: 0, otherStatus: 0, failed: 0 });
export const isLoopbackHost = (h: string) =>
  h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
const emptyTally = (split: boolean): LoadTally => ({
  total: emptySlot(),
  ...(split ? { bySlot: { blue: emptySlot(), green: emptySlot() } } : {}),
});

export class LoadGenerator {
  readonly stats: LoadStats;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private current = { blue: 0, green: 0 };
  private readonly agent: Agent;
  private drained: (() => void) | undefined;
  private window: LoadTally | undefined;

  constructor(readonly options: LoadOptions) {
    this.stats = { sent: 0, skipped: 0, ...emptyTally(options.target.kind === "split") };
    if (options.target.kind === "gateway") {
      const host = new URL(options.target.url).hostname;
      if (!isLoopbackHost(host))
        throw new Error(
          `load generator: gateway ${options.target.url} is not on a loopback address; it only sends to 127.0.0.0/8`,
        );
    }
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
  startTally(): LoadTally {
    this.window = { since: Date.now(), ...emptyTally(this.options.target.kind === "split") };
    return this.window;
  }

  /** Stops adding new requests to the current tally (answers to those already sent still count). */
  endTally(): void {
    this.window = undefined;
  }

  /** Smooth weighted round robin: the slot for the next request, or undefined when no weights are known. */
  private pick(weights: () => Weights | undefined): Slot | undefined {
    const w = weights();
    if (!w || w.blue + w.green <= 0) return undefined;
    this.current.blue += w.blue;
    this.current.green += w.green;
    const slot: Slot = this.current.blue >= this.current.green ? "blue" : "green";
    this.current[slot] -= w.blue + w.green;
    return slot;
  }

  private fire(): void {
    const t = this.options.target;
    const slot = t.kind === "split" ? this.pick(t.weights) : undefined;
    const base = t.kind === "gateway" ? t.url : slot && t.target(slot);
    if (!base || this.inFlight >= (this.options.concurrency ?? 64)) {
      this.stats.skipped++;
      return;
    }
    const url = new URL(this.options.path ?? "/work", base);
    if (!isLoopbackHost(url.hostname))
      throw new Error(
        `load generator: ${url.host} is not a loopback address; it only sends to 127.0.0.0/8`,
      );
    const tallies = [this.stats, ...(this.window ? [this.window] : [])];
    const counters = tallies.flatMap((x) => [
      x.total,
      ...(slot && x.bySlot ? [x.bySlot[slot]] : []),
    ]);
    this.stats.sent++;
    for (const c of counters) c.sent++;
    const headers = {
      ...(t.kind === "gateway" && t.host ? { host: t.host } : {}),
      ...(this.options.headers ?? {}),
    };
    this.inFlight++;
    let settled = false;
    const done = (outcome: "ok" | "serverError" | "other" | "failed", code = 0) => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      for (const c of counters) {
        if (outcome === "ok") countOk(c);
        else if (outcome === "serverError") countServerError(c, code);
        else if (outcome === "other") c.otherStatus++;
        else c.failed++;
      }
      if (this.inFlight === 0) this.drained?.();
    };
    const req = request(
      url,
      { agent: this.agent, timeout: this.options.timeoutMs ?? 5000, headers },
      (res) => {
        res.resume();
        res.on("end", () => {
          const code = res.statusCode ?? 0;
          done(code >= 200 && code < 300 ? "ok" : code >= 500 ? "serverError" : "other", code);
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

/**
 * Sends exactly `count` GETs (at most `concurrency` at a time) to a loopback URL and counts
 * the answers: a bounded burst for split measurements and smoke checks.
 */
export async function sendRequests(args: {
  url: string;
  count: number;
  host?: string;
  headers?: Record<string, string>;
  concurrency?: number;
  timeoutMs?: number;
}): Promise<SlotLoad & { bodies: string[] }> {
  const url = new URL(args.url);
  if (!isLoopbackHost(url.hostname))
    throw new Error(`sendRequests: ${url.host} is not a loopback address`);
  if (!(args.count > 0 && args.count <= 100_000))
    throw new Error(`sendRequests: count ${args.count}; allowed: 1 to 100000`);
  const agent = new Agent({ keepAlive: true, maxSockets: args.concurrency ?? 16 });
  const out = { ...emptySlot(), bodies: [] as string[] };
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      out.sent++;
      const req = request(
        url,
        {
          agent,
          timeout: args.timeoutMs ?? 5000,
          headers: { ...(args.host ? { host: args.host } : {}), ...(args.headers ?? {}) },
        },
        (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => {
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) countOk(out);
            else if (code >= 500) countServerError(out, code);
            else out.otherStatus++;
            if (out.bodies.length < 1000) out.bodies.push(body);
            resolve();
          });
          res.on("error", () => (out.failed++, resolve()));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => (out.failed++, resolve()));
      req.end();
    });
  const worker = async () => {
    while (next < args.count) {
      next++;
      await one();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(args.concurrency ?? 16, args.count) }, worker));
  } finally {
    agent.destroy();
  }
  return out;
}

/**
 * Waits until the Gateway answers 404 for `host` (no route of any stage serves it), at most
 * `timeoutMs`; throws after that, naming the last answer. A deleted HTTPRoute keeps serving
 * until Traefik has taken the deletion (its throttle, half a second here), and a route of the
 * same host created meanwhile loses to the older one: traffic to slots that no longer run.
 */
export async function untilNoRouteServes(args: {
  url: string;
  host?: string;
  timeoutMs: number;
}): Promise<void> {
  const url = new URL("/", args.url);
  if (!isLoopbackHost(url.hostname))
    throw new Error(`untilNoRouteServes: ${url.host} is not a loopback address`);
  const status = () =>
    new Promise<string>((resolve) => {
      const req = request(
        url,
        { timeout: 2000, headers: args.host ? { host: args.host } : {}, agent: false },
        (res) => {
          res.resume();
          res.on("end", () => resolve(String(res.statusCode)));
          res.on("error", (e) => resolve(e.message));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (e) => resolve(e.message));
      req.end();
    });
  const deadline = Date.now() + args.timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = await status();
    if (last === "404") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `the Gateway ${args.url} still routes${args.host ? ` host ${args.host}` : ""} after ${args.timeoutMs} ms (last answer: ${last}); is an HTTPRoute of another stage on it?`,
  );
}
