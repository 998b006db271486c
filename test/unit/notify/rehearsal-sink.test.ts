import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HookRunner } from "../../../src/hooks";
import {
  hookAndNotificationLines,
  startHookSink,
  type HookSink,
} from "../../../src/rehearsal/hookSink";
import type { LogRecord } from "../../../src/pipeline/log";

/** A stand-in for a slot's process (or the Gateway in front of it): answers `/version` as told. */
async function versionServer() {
  const seen: IncomingHttpHeaders[] = [];
  const state = { status: 200, answer: { slot: "green", version: "1" } as Record<string, string> };
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(req.url === "/version" ? state.status : 404, {
      "content-type": "application/json",
    });
    res.end(JSON.stringify(state.answer));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    state,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("the rehearsal's acceptance hook and notification sink", () => {
  let candidate: Awaited<ReturnType<typeof versionServer>>;
  let sink: HookSink;
  beforeAll(async () => {
    candidate = await versionServer();
    sink = await startHookSink({
      target: (slot) =>
        slot === "green" ? { url: candidate.url, headers: { host: "checkout.local" } } : undefined,
      waitMs: 300,
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
    expect(candidate.seen.at(-1)).toMatchObject({
      "x-slipway-canary": "v-secret-1234",
      host: "checkout.local",
    });
    // The stable slot answered (the header route did not reach the candidate): a failure.
    candidate.state.answer = { slot: "blue", version: "0.9" };
    expect((await runner.run("afterDeploy", ctx)).action).toBe("rollback");
    // The candidate answered, but with another release's version: a failure too.
    candidate.state.answer = { slot: "green", version: "0.9" };
    expect((await runner.run("afterDeploy", ctx)).action).toBe("rollback");
    candidate.state.status = 503;
    candidate.state.answer = { slot: "green", version: "1" };
    expect((await runner.run("afterDeploy", ctx)).action).toBe("rollback");
    expect(sink.checks.map((c) => [c.status, c.answered?.slot, c.answered?.version, c.ok])).toEqual(
      [
        [200, "green", "1", true],
        ...Array(2).fill([200, "blue", "0.9", false]),
        ...Array(2).fill([200, "green", "0.9", false]),
        ...Array(2).fill([503, "green", "1", false]),
      ],
    );
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
