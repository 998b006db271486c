import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventFromRecord,
  genericPayload,
  notificationsSchema,
  Notifier,
  slackPayload,
  type DeliveryEntry,
} from "../../../src/notify";
import type { LogRecord } from "../../../src/pipeline/log";
import { webhookServer, type WebhookServer } from "../support/webhooks";

let seq = 0;
const rec = (event: string, extra: Partial<LogRecord> = {}): LogRecord =>
  ({
    seq: ++seq,
    at: "2026-12-01T10:00:00.000Z",
    stage: "local",
    releaseId: "r-20261201-100000-ab12",
    actor: "ci@host",
    event,
    ...extra,
  }) as LogRecord;

const started = () =>
  rec("release.started", {
    artifact: {
      image: `r/c@sha256:${"2".repeat(64)}`,
      digest: `sha256:${"2".repeat(64)}`,
      version: "1.1.0",
    },
  });

describe("notification events and formats", () => {
  it("maps release log records to events with stable ids", () => {
    const ctx = { service: "checkout", version: "1.1.0" };
    expect(eventFromRecord(started(), ctx)).toMatchObject({
      kind: "started",
      id: "local/r-20261201-100000-ab12/started",
      summary: "checkout 1.1.0 (r-20261201-100000-ab12): release started on local",
    });
    const step = rec("step.completed", {
      step: { index: 0, description: "setWeight 10" },
      weights: { blue: 90, green: 10 },
    });
    expect(eventFromRecord(step, ctx)).toMatchObject({
      kind: "stepDone",
      id: "local/r-20261201-100000-ab12/stepDone:0",
      step: { number: 1 },
    });
    const verdict = rec("analysis.failed", {
      verdict: "fail",
      step: { index: 1, description: "analysis" },
      reason: "errors: 5% vs 0.1%",
    });
    expect(eventFromRecord(verdict, ctx)!.summary).toMatch(
      /analysis at step 2 on local: fail: errors/,
    );
    expect(
      eventFromRecord(rec("weights.drifted", { weights: { blue: 50, green: 50 } }), ctx)!.kind,
    ).toBe("drift");
    expect(eventFromRecord(rec("update.started"), ctx)).toBeUndefined();
    expect(eventFromRecord(rec("notification.delivered"), ctx)).toBeUndefined();
  });

  it("formats generic JSON and a Slack-compatible {text, blocks} message", () => {
    const event = eventFromRecord(rec("release.rolledBack", { reason: "analysis <failed>" }), {
      service: "checkout",
      version: "1.1.0",
    })!;
    expect(genericPayload(event)).toMatchObject({
      schema: "slipway.notification/v1",
      kind: "rolledBack",
      reason: "analysis <failed>",
    });
    const slack = slackPayload(event);
    expect(slack.text).toMatch(
      /^:leftwards_arrow_with_hook: checkout 1\.1\.0 .*rolled back on local: analysis <failed>$/,
    );
    expect(JSON.stringify(slack.blocks)).toContain("analysis &lt;failed&gt;");
    expect((slack.blocks[0] as any).type).toBe("section");
  });

  it("validates the config key with defaults", () => {
    expect(
      notificationsSchema.parse({
        webhooks: [{ name: "chat", url: "https://hooks.example.com/x" }],
      }).webhooks[0],
    ).toEqual({
      name: "chat",
      url: "https://hooks.example.com/x",
      format: "generic",
      headers: {},
      timeoutSeconds: 5,
      retries: 2,
    });
    const bad = notificationsSchema.safeParse({
      webhooks: [{ name: "chat", url: "x", format: "teams", events: ["deployed"] }],
    });
    expect(bad.error!.issues.map((i) => i.path.join("."))).toEqual([
      "webhooks.0.url",
      "webhooks.0.format",
      "webhooks.0.events.0",
    ]);
  });
});

describe("delivery against a real HTTP server", () => {
  let server: WebhookServer;
  beforeAll(async () => {
    server = await webhookServer();
  });
  afterAll(() => server.close());

  const notifier = (
    webhooks: unknown,
    history: LogRecord[] = [],
    env: Record<string, string> = {},
  ) => {
    const records: DeliveryEntry[] = [];
    const n = new Notifier({
      webhooks: notificationsSchema.parse({ webhooks }).webhooks,
      service: "checkout",
      env,
      record: (e) => records.push(e),
      history,
      backoffMs: () => 1,
    });
    return { n, records };
  };

  it("delivers each subscribed event once, in order, with a delivery record; secrets stay out of the log", async () => {
    const { n, records } = notifier(
      [
        {
          name: "all",
          url: server.url("/all"),
          headers: { Authorization: { fromEnv: "CHAT_TOKEN" } },
        },
        {
          name: "chat",
          url: server.url("/slack"),
          format: "slack",
          events: ["promoted", "rolledBack"],
        },
      ],
      [],
      { CHAT_TOKEN: "chat-secret-xyz" },
    );
    const s = started();
    n.observe(s);
    n.observe(s); // the same record twice: one event
    n.observe(rec("step.completed", { step: { index: 0, description: "setWeight 10" } }));
    n.observe(rec("release.promoted", { weights: { blue: 0, green: 100 } }));
    await n.flush();
    const all = server.received.filter((r) => r.path === "/all");
    expect(all.map((r) => r.body.kind)).toEqual(["started", "stepDone", "promoted"]);
    expect(all[0]!.headers.authorization).toBe("chat-secret-xyz");
    expect(all[0]!.headers["x-slipway-event-id"]).toBe(all[0]!.body.id);
    const slack = server.received.filter((r) => r.path === "/slack");
    expect(slack).toHaveLength(1);
    expect(slack[0]!.body.text).toMatch(/promoted on local/);
    // Each webhook's deliveries are in order; the two webhooks run side by side.
    const line = (r: DeliveryEntry) =>
      `${r.event} ${(r.figures as any).webhook} ${(r.figures as any).kind}`;
    expect(records.filter((r) => (r.figures as any).webhook === "all").map(line)).toEqual([
      "notification.delivered all started",
      "notification.delivered all stepDone",
      "notification.delivered all promoted",
    ]);
    expect(records.filter((r) => (r.figures as any).webhook === "chat").map(line)).toEqual([
      "notification.delivered chat promoted",
    ]);
    expect(records.filter((r) => r.event === "notification.delivered")).toHaveLength(4);
    expect(JSON.stringify(records)).not.toContain("chat-secret-xyz");
  });

  it("a 500 is retried, then recorded as failed; nothing throws", async () => {
    server.on("/broken", [500]);
    const { n, records } = notifier([{ name: "broken", url: server.url("/broken"), retries: 2 }]);
    const before = server.received.length;
    expect(() => n.observe(rec("release.failed", { reason: "boom" }))).not.toThrow();
    await n.flush();
    expect(server.received.slice(before).filter((r) => r.path === "/broken")).toHaveLength(3);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      event: "notification.failed",
      reason: "notification failed to webhook broken not delivered: 500, 500, 500",
    });
  });

  it("a timeout is not retried (the receiver may have it): at most once", async () => {
    server.on("/slow", "hang");
    const { n, records } = notifier([
      { name: "slow", url: server.url("/slow"), retries: 3, timeoutSeconds: 0.3 },
    ]);
    const before = server.received.length;
    n.observe(rec("release.paused", { reason: "waits for approval" }));
    await n.flush();
    expect(server.received.slice(before)).toHaveLength(1);
    expect((records[0]!.figures as any).attempts).toHaveLength(1);
  });

  it("does not repeat an event the log already records as delivered (resume)", async () => {
    const first = notifier([{ name: "once", url: server.url("/once") }]);
    const s = started();
    first.n.observe(s);
    await first.n.flush();
    const history = first.records.map(
      (r, i) => ({ ...r, seq: 1000 + i, at: s.at, actor: "x" }) as unknown as LogRecord,
    );
    const second = notifier([{ name: "once", url: server.url("/once") }], history);
    second.n.observe({ ...s, seq: 2000 });
    await second.n.flush();
    expect(server.received.filter((r) => r.path === "/once")).toHaveLength(1);
    expect(second.records).toHaveLength(0);
  });
});
