import { callJson, describeAttempts, type Attempt } from "../hooks/http";
import { redact, resolveHeaders, urlForLog } from "../hooks/secrets";
import type { LogRecord } from "../pipeline/log";
import { eventFromRecord, type NotifyEvent } from "./events";
import { payloadFor } from "./format";
import { subscribes, type Webhook } from "./spec";

export type DeliveryLogEvent = "notification.delivered" | "notification.failed";

/** A delivery record for the release log; the adapter adds seq, time and actor. */
export interface DeliveryEntry {
  stage: string;
  releaseId: string;
  event: DeliveryLogEvent;
  figures: Record<string, unknown>;
  reason?: string;
}

export interface NotifierOptions {
  webhooks: readonly Webhook[];
  service: string;
  env: Record<string, string | undefined>;
  /** Appends a delivery record to the release log. */
  record: (entry: DeliveryEntry) => unknown;
  /** Records already in the log: deliveries made before a resume are not repeated. */
  history?: readonly LogRecord[];
  backoffMs?: (attempt: number) => number;
}

/**
 * Sends release events to webhooks. It observes release log records (what the
 * pipeline decided) and delivers in the background, one webhook's events in
 * order; `flush()` waits for what is queued. At most once per event and
 * webhook: an event already recorded as delivered or failed is not sent again,
 * and an attempt is repeated only when the receiver answered that it did not
 * take it (a non-2xx status) or could not be reached (connection refused),
 * never after a timeout, which may have been received. Nothing here throws
 * into the pipeline: a notification never changes a release's outcome.
 */
export class Notifier {
  private readonly done = new Set<string>();
  private readonly versions = new Map<string, string>();
  private readonly queues = new Map<string, Promise<void>>();
  /** Every event delivered (or attempted) here, for reports. */
  readonly sent: { webhook: string; event: NotifyEvent; ok: boolean }[] = [];

  constructor(private readonly options: NotifierOptions) {
    for (const r of options.history ?? []) {
      if (r.event === "notification.delivered" || r.event === "notification.failed") {
        const f = (r.figures ?? {}) as { webhook?: string; eventId?: string };
        if (f.webhook && f.eventId) this.done.add(`${f.webhook} ${f.eventId}`);
      }
      if (r.event === "release.started" && r.artifact)
        this.versions.set(r.releaseId, r.artifact.version);
    }
  }

  /** Throws naming the webhook and variable when a `{fromEnv}` header has no value. */
  preflight(): void {
    this.options.webhooks.forEach((w, i) =>
      resolveHeaders(w.headers, this.options.env, `slipway:notifications.webhooks[${i}]`),
    );
  }

  /** Called with every record appended to the release log. Never throws. */
  observe(record: LogRecord): void {
    try {
      if (record.event === "release.started" && record.artifact)
        this.versions.set(record.releaseId, record.artifact.version);
      const event = eventFromRecord(record, {
        service: this.options.service,
        version: this.versions.get(record.releaseId),
      });
      if (!event) return;
      for (const webhook of this.options.webhooks) {
        if (!subscribes(webhook, event.kind)) continue;
        const key = `${webhook.name} ${event.id}`;
        if (this.done.has(key)) continue;
        this.done.add(key);
        const previous = this.queues.get(webhook.name) ?? Promise.resolve();
        this.queues.set(
          webhook.name,
          previous.then(() => this.deliver(webhook, event)).catch(() => {}),
        );
      }
    } catch {
      // A notification problem must not reach the release.
    }
  }

  /** Waits for every queued delivery (each bounded by its timeout and retries). */
  async flush(): Promise<void> {
    await Promise.all([...this.queues.values()]);
  }

  private async deliver(webhook: Webhook, event: NotifyEvent): Promise<void> {
    const index = this.options.webhooks.indexOf(webhook);
    let headers: Record<string, string>;
    let secrets: string[] = [];
    let attempts: Attempt[] = [];
    let ok = false;
    let problem: string | undefined;
    try {
      const resolved = resolveHeaders(
        webhook.headers,
        this.options.env,
        `slipway:notifications.webhooks[${index}]`,
      );
      headers = resolved.headers;
      secrets = resolved.secrets;
      const result = await callJson({
        url: webhook.url,
        method: "POST",
        headers: { ...headers, "x-slipway-event-id": event.id },
        body: payloadFor(webhook.format, event),
        timeoutSeconds: webhook.timeoutSeconds,
        retries: webhook.retries,
        // Repeat only what certainly did not arrive.
        retryable: (a) => a.status !== undefined || a.error === "ECONNREFUSED",
        backoffMs: this.options.backoffMs,
        redact: (text) => redact(text, secrets),
      });
      attempts = result.attempts;
      ok = result.ok;
      if (!ok) problem = describeAttempts(attempts);
    } catch (err) {
      problem = (err as Error).message;
    }
    this.sent.push({ webhook: webhook.name, event, ok });
    try {
      await this.options.record({
        stage: event.stage,
        releaseId: event.releaseId,
        event: ok ? "notification.delivered" : "notification.failed",
        figures: {
          webhook: webhook.name,
          eventId: event.id,
          kind: event.kind,
          summary: event.summary,
          format: webhook.format,
          url: urlForLog(webhook.url),
          attempts: attempts.map((a) => ({
            ...a,
            ...(a.error !== undefined ? { error: redact(a.error, secrets) } : {}),
            ...(a.excerpt !== undefined ? { excerpt: redact(a.excerpt, secrets) } : {}),
          })),
        },
        ...(problem !== undefined
          ? {
              reason: redact(
                `notification ${event.kind} to webhook ${webhook.name} not delivered: ${problem}`,
                secrets,
              ),
            }
          : {}),
      });
    } catch {
      // The log is the pipeline's; a failure to write a delivery record is not the release's.
    }
  }
}
