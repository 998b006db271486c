/**
 * One JSON request with a timeout and bounded retries: the HTTP side of hooks
 * and notifications. Thin: it records what happened and lets the caller decide.
 */

import {
  WEBHOOK_BACKOFF_FIRST_MS,
  WEBHOOK_BACKOFF_MAX_MS,
  WEBHOOK_EXCERPT_BYTES,
} from "../defaults";

export interface Attempt {
  attempt: number;
  /** HTTP status, when a response came back. */
  status?: number;
  /** Why there was no acceptable response: timeout, connection refused, … */
  error?: string;
  timedOut?: boolean;
  durationMs: number;
  /** The first bytes of the response body (for the log, after redaction by the caller). */
  excerpt?: string;
}

export interface CallResult {
  ok: boolean;
  attempts: Attempt[];
}

export interface JsonRequest {
  url: string;
  method: "POST" | "PUT";
  headers: Record<string, string>;
  body: unknown;
  timeoutSeconds: number;
  /** Further attempts after the first. */
  retries: number;
  /** Whether a failed attempt may be repeated (default: always). */
  retryable?: (attempt: Attempt) => boolean;
  /** Wait before attempt n (n ≥ 2); default 250 ms doubling, at most 2 s. */
  backoffMs?: (attempt: number) => number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Applied to the whole response body before it is cut to an excerpt: a secret echoed
   * across the cut would otherwise leave its prefix in the log.
   */
  redact?: (text: string) => string;
}

const defaultBackoff = (n: number) =>
  Math.min(WEBHOOK_BACKOFF_MAX_MS, WEBHOOK_BACKOFF_FIRST_MS * 2 ** (n - 2));
const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function callJson(req: JsonRequest): Promise<CallResult> {
  const attempts: Attempt[] = [];
  const backoff = req.backoffMs ?? defaultBackoff;
  const sleep = req.sleep ?? defaultSleep;
  for (let n = 1; n <= req.retries + 1; n++) {
    if (n > 1) await sleep(backoff(n));
    const attempt = await once(req, n);
    attempts.push(attempt);
    const passed = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
    if (passed) return { ok: true, attempts };
    if (req.retryable && !req.retryable(attempt)) break;
  }
  return { ok: false, attempts };
}

async function once(req: JsonRequest, n: number): Promise<Attempt> {
  const started = Date.now();
  const timeoutMs = Math.round(req.timeoutSeconds * 1000);
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: { "content-type": "application/json", "user-agent": "slipway", ...req.headers },
      body: JSON.stringify(req.body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: "manual",
    });
    // The body is read under the same timeout: a server that sends headers and then hangs is a timeout too.
    const text = await res.text();
    return {
      attempt: n,
      status: res.status,
      durationMs: Date.now() - started,
      ...(text
        ? { excerpt: (req.redact ? req.redact(text) : text).slice(0, WEBHOOK_EXCERPT_BYTES) }
        : {}),
    };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const timedOut = e.name === "TimeoutError" || e.name === "AbortError";
    return {
      attempt: n,
      error: timedOut
        ? `no response within ${req.timeoutSeconds}s`
        : (e.cause?.code ?? e.cause?.message ?? e.message),
      ...(timedOut ? { timedOut: true } : {}),
      durationMs: Date.now() - started,
    };
  }
}

/** One line for a person: "500, 500, timeout after 2s". */
export function describeAttempts(attempts: readonly Attempt[]): string {
  return attempts.map((a) => (a.status !== undefined ? String(a.status) : a.error)).join(", ");
}
