import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MetricInputs } from "../../src/analysis/run";
import { ReleaseLog } from "../../src/pipeline/log";
import { rollback, status } from "../../src/pipeline/operations";
import { release, type MetricsSource } from "../../src/pipeline/release";
import { webhookServer, type WebhookServer } from "../unit/support/webhooks";
import { scratchProject, type ScratchProject } from "./support/project";

/**
 * Hooks and notifications in releases on the real engine (local stage, file
 * backend), against a real HTTP server on loopback.
 */
const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const HOOK_TOKEN = "hook-token-from-env-7f3a";
const CHAT_TOKEN = "chat-token-from-env-91bc";

const healthy: MetricsSource = () => async () => {
  const latency = Array.from({ length: 200 }, (_, i) => 20 + (i % 10));
  const inputs: MetricInputs = {
    errors: { baseline: { bad: 100, total: 100_000 }, canary: { bad: 20, total: 20_000 } },
    latency: { baseline: latency, canary: latency },
  };
  return inputs;
};

describe("release hooks and notifications on the real engine", () => {
  let project: ScratchProject;
  let server: WebhookServer;
  let log: ReleaseLog;
  const base = () => ({
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: {
      ...project.env,
      SLIPWAY_TEST_HOOK_TOKEN: HOOK_TOKEN,
      SLIPWAY_TEST_CHAT_TOKEN: CHAT_TOKEN,
    },
  });
  const configure = (hooks: unknown[], webhooks: unknown[] = []) =>
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [{ setWeight: 50 }, { analysis: {} }],
        analysis: { count: 1, interval: 1, minSamples: 100 },
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 600,
        hooks,
      };
      c["slipway:notifications"] = { webhooks };
    });
  const hook = (name: string, at: string, extra: Record<string, unknown> = {}) => ({
    name,
    at,
    url: server.url(`/hooks/${name}`),
    timeoutSeconds: 2,
    ...extra,
  });

  beforeAll(async () => {
    project = scratchProject("hooks");
    process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
    log = ReleaseLog.forStage(project.logDir, "local");
    server = await webhookServer();
  });
  afterAll(async () => {
    await server?.close();
    project?.cleanup();
  });
  afterEach(async () => {
    const s = await status(base()).catch(() => undefined);
    if (s?.release?.active) await rollback({ ...base(), reason: "test cleanup" });
  });

  it("calls each hook point with the documented body, notifies each event once, keeps env secrets out of the log", async () => {
    configure(
      [
        hook("pre", "preRollout", {
          headers: { Authorization: { fromEnv: "SLIPWAY_TEST_HOOK_TOKEN" } },
        }),
        hook("acceptance", "afterDeploy", { sendTesterHeader: true }),
        hook("before", "beforeStep", { steps: [1] }),
        hook("after", "afterStep"),
        hook("confirm", "confirmPromotion"),
        hook("post", "postRollout"),
      ],
      [
        {
          name: "all",
          url: server.url("/notify/all"),
          headers: { Authorization: { fromEnv: "SLIPWAY_TEST_CHAT_TOKEN" } },
        },
        { name: "chat", url: server.url("/notify/slack"), format: "slack", events: ["promoted"] },
      ],
    );
    const result = await release({
      ...base(),
      image: digest("2"),
      version: "1.1.0",
      metrics: healthy,
    });
    expect(result.outcome).toBe("promoted");
    const hooks = server.received.filter((r) => r.path.startsWith("/hooks/"));
    expect(
      hooks.map((r) => `${r.body.hook}@${r.body.at}${r.body.step ? ` ${r.body.step.number}` : ""}`),
    ).toEqual([
      "pre@preRollout",
      "acceptance@afterDeploy",
      "before@beforeStep 1",
      "after@afterStep 1",
      "after@afterStep 2",
      "confirm@confirmPromotion",
      "post@postRollout",
    ]);
    const outputs = (await status(base())).outputs!;
    const pre = hooks[0]!;
    expect(pre.headers.authorization).toBe(HOOK_TOKEN);
    expect(pre.body).toEqual({
      hook: "pre",
      at: "preRollout",
      releaseId: result.releaseId,
      stage: "local",
      service: "checkout",
      artifact: { image: digest("2"), digest: `sha256:${"2".repeat(64)}`, version: "1.1.0" },
      candidateSlot: "green",
      stableSlot: "blue",
      step: null,
      weights: { blue: 100, green: 0 },
      endpoint: outputs.endpoint,
      testerHeader: { name: "x-slipway-canary" },
    });
    // Only the hook that asked for it (on loopback) got the tester header's value.
    const acceptance = hooks[1]!.body;
    expect(acceptance.testerHeader.value).toMatch(/.{16,}/);
    expect(hooks.filter((h) => h.body.testerHeader.value !== undefined)).toHaveLength(1);
    expect(hooks.find((h) => h.body.hook === "after")!.body.weights).toEqual({
      blue: 50,
      green: 50,
    });
    expect(hooks.at(-1)!.body).toMatchObject({
      stableSlot: "green",
      weights: { blue: 0, green: 100 },
    });

    const notes = server.received.filter((r) => r.path === "/notify/all");
    expect(notes.map((n) => n.body.kind)).toEqual([
      "started",
      "stepDone",
      "analysis",
      "stepDone",
      "promoted",
    ]);
    expect(new Set(notes.map((n) => n.body.id)).size).toBe(notes.length);
    const slack = server.received.filter((r) => r.path === "/notify/slack");
    expect(slack).toHaveLength(1);
    expect(slack[0]!.body.text).toMatch(/checkout 1\.1\.0 .* promoted on local/);

    const records = log.forRelease(result.releaseId!);
    expect(records.filter((r) => r.event === "hook.passed")).toHaveLength(7);
    expect(records.filter((r) => r.event === "hook.called")).toHaveLength(7);
    expect(records.filter((r) => r.event === "notification.delivered")).toHaveLength(6);
    const text = readFileSync(log.path, "utf8");
    expect(text).not.toContain(HOOK_TOKEN);
    expect(text).not.toContain(CHAT_TOKEN);
    expect(text).not.toContain(acceptance.testerHeader.value);
  });

  it("a failing confirmPromotion rolls back per its policy, after its retries; a 500 from a notification endpoint changes nothing", async () => {
    server.on("/hooks/confirm-rb", [500]);
    server.on("/notify/broken", [500]);
    configure(
      [hook("confirm-rb", "confirmPromotion", { retries: 2 }), hook("tell", "onRollback")],
      [{ name: "broken", url: server.url("/notify/broken"), retries: 1 }],
    );
    const before = server.received.length;
    const result = await release({
      ...base(),
      image: digest("3"),
      version: "1.2.0",
      metrics: healthy,
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.exitCode).toBe(3);
    expect(result.reason).toBe("hook confirm-rb at confirmPromotion failed: 500, 500, 500");
    const got = server.received.slice(before);
    expect(got.filter((r) => r.path === "/hooks/confirm-rb")).toHaveLength(3);
    expect(got.filter((r) => r.path === "/hooks/tell").map((r) => r.body.reason)).toEqual([
      result.reason,
    ]);
    const records = log.forRelease(result.releaseId!);
    const updates = records
      .filter((r) => r.event === "update.succeeded")
      .map((r) => (r.figures as any).transition);
    expect(updates).toEqual(["deploy", "setWeight", "rollback"]);
    // Every notification failed (two attempts each) and the release went its way regardless.
    const failed = records.filter((r) => r.event === "notification.failed");
    expect(failed.length).toBeGreaterThanOrEqual(4);
    expect(failed.every((r) => (r.figures as any).attempts.length === 2)).toBe(true);
    expect(records.filter((r) => r.event === "notification.delivered")).toHaveLength(0);
  });

  it("a failing confirmPromotion with policy pause pauses (exit 4); a hanging hook times out", async () => {
    server.on("/hooks/confirm-hang", "hang");
    configure([
      hook("confirm-hang", "confirmPromotion", { timeoutSeconds: 1, failurePolicy: "pause" }),
    ]);
    const result = await release({
      ...base(),
      image: digest("4"),
      version: "1.3.0",
      metrics: healthy,
    });
    expect(result.outcome).toBe("paused");
    expect(result.exitCode).toBe(4);
    expect(result.reason).toMatch(
      /hook confirm-hang at confirmPromotion failed: no response within 1s; waiting for `slipway approve`/,
    );
    const failed = log.forRelease(result.releaseId!).find((r) => r.event === "hook.failed")!;
    expect((failed.figures as any).attempts).toEqual([expect.objectContaining({ timedOut: true })]);
    const s = await status(base());
    expect(s.release!.active).toBe(true);
    expect(s.outputs!.weights).toEqual({ blue: 50, green: 50 });
  });

  it("a missing {fromEnv} variable refuses the release before any update, naming the key", async () => {
    configure([
      hook("pre", "preRollout", {
        headers: { Authorization: { fromEnv: "SLIPWAY_TEST_UNSET_VAR" } },
      }),
    ]);
    const result = await release({
      ...base(),
      image: digest("5"),
      version: "1.4.0",
      metrics: healthy,
    });
    expect(result.outcome).toBe("refused");
    expect(result.exitCode).toBe(6);
    expect(result.reason).toMatch(
      /slipway:canary\.hooks\[0\]\.headers\.Authorization: environment variable SLIPWAY_TEST_UNSET_VAR is not set/,
    );
  });
});
