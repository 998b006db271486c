import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HookRunner } from "../../../src/hooks";
import {
  hookAndNotificationLines,
  startHookSink,
  type HookSink,
} from "../../../src/rehearsal/hookSink";
import type { LogRecord } from "../../../src/pipeline/log";
import { webhookServer, type WebhookServer } from "../support/webhooks";

describe("the rehearsal's acceptance hook and notification sink", () => {
  let candidate: WebhookServer;
  let sink: HookSink;
  beforeAll(async () => {
    candidate = await webhookServer();
    sink = await startHookSink({
      slotUrl: (slot) => (slot === "green" ? candidate.url("") : undefined),
      readyPath: "/readyz",
    });
  });
  afterAll(async () => {
    await sink.stop();
    await candidate.close();
  });

  it("checks the candidate through the tester header and passes or fails the hook by its answer", async () => {
    const entries: unknown[] = [];
    const runner = new HookRunner({
      hooks: sink.hooks,
      env: {},
      record: (e) => entries.push(e),
      backoffMs: () => 1,
    });
    const ctx = {
      releaseId: "r-1",
      stage: "local",
      service: "checkout",
      artifact: { image: "i", digest: "d", version: "1" },
      candidateSlot: "green",
      stableSlot: "blue",
      weights: { blue: 100, green: 0 },
      testerHeader: { name: "x-slipway-canary", value: "v-secret-1234" },
    };
    expect(await runner.run("afterDeploy", ctx)).toEqual({ action: "continue" });
    expect(candidate.received.at(-1)!.headers["x-slipway-canary"]).toBe("v-secret-1234");
    candidate.on("/readyz", [503]);
    expect((await runner.run("afterDeploy", ctx)).action).toBe("rollback");
    expect(sink.checks.map((c) => c.status)).toEqual([200, 503, 503]);
  });

  it("lists hook results and delivered messages for the report", () => {
    const rec = (event: string, figures: Record<string, unknown>) =>
      ({ event, figures }) as unknown as LogRecord;
    expect(
      hookAndNotificationLines([
        rec("hook.passed", { hook: "acceptance", at: "afterDeploy", attempts: [{ status: 200 }] }),
        rec("notification.delivered", {
          webhook: "rehearsal-sink",
          kind: "promoted",
          summary: "checkout 1.1.0 (r-1): promoted on local",
        }),
      ]),
    ).toEqual([
      "## Hooks and notifications",
      "",
      "- hook **acceptance** at afterDeploy: passed (200)",
      "- notification delivered to rehearsal-sink: checkout 1.1.0 (r-1): promoted on local",
      "",
    ]);
  });
});
