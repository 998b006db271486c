import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callJson,
  failurePolicyOf,
  HeaderError,
  hookBody,
  HookRunner,
  hooksAt,
  hooksSchema,
  isHttpsOrLoopback,
  MissingSecretError,
  redact,
  resolveHeaders,
  type Hook,
  type HookContext,
  type HookLogEntry,
} from "../../../src/hooks";
import { webhookServer, type WebhookServer } from "../support/webhooks";

const parse = (hooks: unknown[]): Hook[] => hooksSchema.parse(hooks);

const ctx: HookContext = {
  releaseId: "r-20261201-100000-ab12",
  stage: "local",
  service: "checkout",
  artifact: {
    image: `registry.local/checkout@sha256:${"2".repeat(64)}`,
    digest: `sha256:${"2".repeat(64)}`,
    version: "1.1.0",
  },
  candidateSlot: "green",
  stableSlot: "blue",
  weights: { blue: 100, green: 0 },
  endpoint: "http://127.0.0.1:1/",
  testerHeader: { name: "x-slipway-canary", value: "tester-secret-value-123" },
};

describe("hook spec", () => {
  it("fills defaults and picks the failure policy by point", () => {
    const [gate, after] = parse([
      { name: "acceptance", at: "afterDeploy", url: "http://127.0.0.1:9/x" },
      { name: "tell", at: "postRollout", url: "https://ci.example.com/done" },
    ]);
    expect(gate).toMatchObject({ method: "POST", timeoutSeconds: 10, retries: 0, headers: {} });
    expect(failurePolicyOf(gate!)).toBe("rollback");
    expect(failurePolicyOf(after!)).toBe("ignore");
  });

  it("refuses the tester header's secret over plain HTTP to another host", () => {
    const bad = hooksSchema.safeParse([
      { name: "a", at: "afterDeploy", url: "http://ci.example.com/x", sendTesterHeader: true },
    ]);
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual([0, "url"]);
    expect(bad.error!.issues[0]!.message).toMatch(/https:\/\/ URL or a loopback one/);
    for (const url of [
      "https://ci.example.com/x",
      "http://127.0.0.1:8/x",
      "http://[::1]:8/x",
      "http://localhost/x",
    ])
      expect(isHttpsOrLoopback(url)).toBe(true);
    expect(isHttpsOrLoopback("http://10.0.0.1/x")).toBe(false);
  });

  it("rejects a blocking policy where the outcome is already reached, steps off step points, duplicate names", () => {
    const r = hooksSchema.safeParse([
      { name: "a", at: "onRollback", url: "http://127.0.0.1:9/", failurePolicy: "rollback" },
      { name: "b", at: "afterDeploy", url: "http://127.0.0.1:9/", steps: [1] },
      { name: "c", at: "sometime", url: "ftp://x" },
    ]);
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join("."));
    expect(paths).toEqual(["0.failurePolicy", "1.steps", "2.at", "2.url"]);
    const dup = hooksSchema.safeParse([
      { name: "a", at: "onRollback", url: "http://127.0.0.1:9/" },
      { name: "a", at: "preRollout", url: "http://127.0.0.1:9/" },
    ]);
    expect(dup.error!.issues.map((i) => i.path.join("."))).toEqual(["1.name"]);
  });

  it("selects the hooks of a point, step hooks by step number (1-based) or all", () => {
    const hooks = parse([
      { name: "every", at: "beforeStep", url: "http://127.0.0.1:9/" },
      { name: "second", at: "beforeStep", url: "http://127.0.0.1:9/", steps: [2] },
      { name: "after", at: "afterStep", url: "http://127.0.0.1:9/", steps: "all" },
      { name: "gate", at: "confirmPromotion", url: "http://127.0.0.1:9/" },
    ]);
    expect(hooksAt(hooks, "beforeStep", 0).map((h) => h.name)).toEqual(["every"]);
    expect(hooksAt(hooks, "beforeStep", 1).map((h) => h.name)).toEqual(["every", "second"]);
    expect(hooksAt(hooks, "afterStep", 5).map((h) => h.name)).toEqual(["after"]);
    expect(hooksAt(hooks, "confirmPromotion").map((h) => h.name)).toEqual(["gate"]);
    expect(hooksAt(hooks, "preRollout")).toEqual([]);
  });

  it("builds the documented body; the tester header's value only when asked", () => {
    const [plain, withSecret] = parse([
      { name: "plain", at: "beforeStep", url: "http://127.0.0.1:9/" },
      { name: "secret", at: "afterDeploy", url: "http://127.0.0.1:9/", sendTesterHeader: true },
    ]);
    const body = hookBody(plain!, { ...ctx, step: { index: 2, description: "setWeight 50" } });
    expect(body).toEqual({
      hook: "plain",
      at: "beforeStep",
      releaseId: ctx.releaseId,
      stage: "local",
      service: "checkout",
      artifact: ctx.artifact,
      candidateSlot: "green",
      stableSlot: "blue",
      step: { index: 2, number: 3, description: "setWeight 50" },
      weights: { blue: 100, green: 0 },
      endpoint: "http://127.0.0.1:1/",
      testerHeader: { name: "x-slipway-canary" },
    });
    expect(JSON.stringify(body)).not.toContain(ctx.testerHeader!.value);
    expect(hookBody(withSecret!, ctx).testerHeader).toEqual(ctx.testerHeader);
  });

  it("resolves {fromEnv} headers, refuses a missing variable by key, and redacts", () => {
    const r = resolveHeaders(
      { Authorization: { fromEnv: "TOKEN" }, "X-Team": "payments" },
      { TOKEN: "s3cr3t-token" },
      "k",
    );
    expect(r).toEqual({
      headers: { Authorization: "s3cr3t-token", "X-Team": "payments" },
      secrets: ["s3cr3t-token"],
    });
    expect(() =>
      resolveHeaders({ Authorization: { fromEnv: "NOPE" } }, {}, "slipway:canary.hooks[0]"),
    ).toThrow(
      /slipway:canary\.hooks\[0\]\.headers\.Authorization: environment variable NOPE is not set/,
    );
    expect(() => resolveHeaders({ A: { fromEnv: "NOPE" } }, {}, "k")).toThrow(MissingSecretError);
    expect(redact("Bearer s3cr3t-token in s3cr3t-token", ["s3cr3t-token"])).toBe(
      "Bearer [redacted] in [redacted]",
    );
  });

  it("refuses a header value with CR, LF or another control character, by key, before any call", () => {
    for (const bad of ["a\r\nX-Injected: 1", "line\nbreak", "nul\u0000", "bell\u0007"]) {
      expect(() => resolveHeaders({ "X-Team": bad }, {}, "slipway:canary.hooks[2]")).toThrow(
        /slipway:canary\.hooks\[2\]\.headers\.X-Team: the value contains a line break or control character; allowed: printable/,
      );
      // From the environment: named by its variable, the (secret) value never shown.
      let message = "";
      try {
        resolveHeaders({ Authorization: { fromEnv: "TOKEN" } }, { TOKEN: bad }, "k");
      } catch (err) {
        expect(err).toBeInstanceOf(HeaderError);
        message = (err as Error).message;
      }
      expect(message).toMatch(
        /k\.headers\.Authorization: environment variable TOKEN holds a line break/,
      );
      expect(message).not.toContain(bad);
    }
    // A tab is a legal header character.
    expect(resolveHeaders({ "X-Team": "a\tb" }, {}, "k").headers).toEqual({ "X-Team": "a\tb" });
    // The stack file's literal values are refused by the config schema, naming the path.
    const parsed = hooksSchema.safeParse([
      { name: "h", at: "afterDeploy", url: "http://127.0.0.1:1/", headers: { "X-A": "x\ny" } },
    ]);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.path).toEqual([0, "headers", "X-A"]);
  });

  it("redacts the whole response before cutting it to an excerpt: no prefix of a secret near the cut", async () => {
    const secret = "tester-secret-value-123";
    // The secret starts 10 bytes before the 300-byte cut: cut first, its first 10 bytes would stay.
    const body = "x".repeat(290) + secret + "y".repeat(50);
    const server = createServer((_req, res) => res.writeHead(500).end(body));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const result = await callJson({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        method: "POST",
        headers: {},
        body: {},
        timeoutSeconds: 5,
        retries: 0,
        redact: (text) => redact(text, [secret]),
      });
      const excerpt = result.attempts[0]!.excerpt!;
      expect(excerpt).toHaveLength(300);
      expect(excerpt.endsWith("x[redacted]")).toBe(true);
      expect(excerpt).not.toContain(secret.slice(0, 10));
    } finally {
      server.close();
    }
  });
});

describe("hook calls against a real HTTP server", () => {
  let server: WebhookServer;
  beforeAll(async () => {
    server = await webhookServer();
  });
  afterAll(() => server.close());

  const runner = (hooks: unknown[], env: Record<string, string> = {}) => {
    const entries: HookLogEntry[] = [];
    const r = new HookRunner({
      hooks: parse(hooks),
      env,
      record: (e) => entries.push(e),
      backoffMs: () => 1,
    });
    return { r, entries };
  };

  it("a 2xx passes; the call and its result are logged; secrets from the environment are not", async () => {
    server.on("/ok", [204]);
    const { r, entries } = runner(
      [
        {
          name: "ok",
          at: "afterDeploy",
          url: server.url("/ok"),
          headers: { Authorization: { fromEnv: "HOOK_TOKEN" } },
        },
      ],
      { HOOK_TOKEN: "env-secret-abc" },
    );
    const before = server.received.length;
    expect(await r.run("afterDeploy", ctx)).toEqual({ action: "continue" });
    const got = server.received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]!.headers.authorization).toBe("env-secret-abc");
    expect(got[0]!.headers["x-slipway-hook"]).toBe("ok");
    expect(got[0]!.body).toMatchObject({
      hook: "ok",
      at: "afterDeploy",
      releaseId: ctx.releaseId,
      testerHeader: { name: "x-slipway-canary" },
    });
    expect(entries.map((e) => e.event)).toEqual(["hook.called", "hook.passed"]);
    expect(JSON.stringify(entries)).not.toContain("env-secret-abc");
    expect(JSON.stringify(entries)).not.toContain(ctx.testerHeader!.value);
  });

  it("retries are counted; after them the failure policy decides", async () => {
    server.on("/flaky", [500, 503, 200]);
    const ok = runner([{ name: "flaky", at: "beforeStep", url: server.url("/flaky"), retries: 2 }]);
    expect(
      await ok.r.run("beforeStep", { ...ctx, step: { index: 0, description: "setWeight 10" } }),
    ).toEqual({ action: "continue" });
    const attempts = (ok.entries.at(-1)!.figures as any).attempts;
    expect(attempts.map((a: any) => a.status)).toEqual([500, 503, 200]);

    server.on("/down", [500]);
    const pause = runner([
      {
        name: "gate",
        at: "confirmPromotion",
        url: server.url("/down"),
        retries: 1,
        failurePolicy: "pause",
      },
    ]);
    const decision = await pause.r.run("confirmPromotion", ctx);
    expect(decision).toMatchObject({ action: "pause", hook: "gate" });
    expect((decision as any).reason).toBe("hook gate at confirmPromotion failed: 500, 500");
    expect(pause.entries.at(-1)).toMatchObject({ event: "hook.failed", verdict: "fail" });
  });

  it("a failing hook with policy ignore is logged and the release goes on; the first blocking failure stops the rest", async () => {
    server.on("/down2", [500]);
    server.on("/never", [200]);
    const { r, entries } = runner([
      { name: "soft", at: "afterDeploy", url: server.url("/down2"), failurePolicy: "ignore" },
      { name: "hard", at: "afterDeploy", url: server.url("/down2") },
      { name: "later", at: "afterDeploy", url: server.url("/never") },
    ]);
    const decision = await r.run("afterDeploy", ctx);
    expect(decision).toMatchObject({ action: "rollback", hook: "hard" });
    expect(
      entries.filter((e) => e.event === "hook.failed").map((e) => (e.figures as any).hook),
    ).toEqual(["soft", "hard"]);
    expect(entries.find((e) => e.event === "hook.failed")!.reason).toMatch(/ignored/);
    expect(server.received.some((q) => q.path === "/never")).toBe(false);
  });

  it("a hanging hook times out, once per attempt", async () => {
    server.on("/hang", "hang");
    const { r, entries } = runner([
      {
        name: "slow",
        at: "confirmPromotion",
        url: server.url("/hang"),
        timeoutSeconds: 0.3,
        retries: 1,
      },
    ]);
    const decision = await r.run("confirmPromotion", ctx);
    expect(decision).toMatchObject({
      action: "rollback",
      reason:
        "hook slow at confirmPromotion failed: no response within 0.3s, no response within 0.3s",
    });
    const attempts = (entries.at(-1)!.figures as any).attempts;
    expect(attempts.map((a: any) => a.timedOut)).toEqual([true, true]);
  });

  it("a response echoing a secret is redacted in the log", async () => {
    server.on("/echo", [500]);
    const { r, entries } = runner(
      [{ name: "echo", at: "afterDeploy", url: server.url("/echo"), sendTesterHeader: true }],
      {},
    );
    await r.run("afterDeploy", ctx);
    // The server got the value (loopback, sendTesterHeader) but the log never holds it.
    expect(server.received.at(-1)!.body.testerHeader.value).toBe(ctx.testerHeader!.value);
    expect(JSON.stringify(entries)).not.toContain(ctx.testerHeader!.value);
  });

  it("preflight names the hook and variable of a missing {fromEnv}", () => {
    const { r } = runner([
      {
        name: "a",
        at: "afterDeploy",
        url: server.url("/ok"),
        headers: { Authorization: { fromEnv: "MISSING_TOKEN_X" } },
      },
    ]);
    expect(() => r.preflight()).toThrow(
      /slipway:canary\.hooks\[0\]\.headers\.Authorization: environment variable MISSING_TOKEN_X/,
    );
  });
});
