import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { canaryState, digestImage } from "../support/canary";
import type { PlanStep } from "../../../src/domain";
import { ConfigChangedError } from "../../../src/pipeline/errors";
import { FileStore } from "../../../src/store/fileStore";
import { releaseRecords } from "../../../src/store/store";
import {
  runMachine,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import type { UpdatableStack } from "../../../src/pipeline/stack";
import {
  changedConfigKeys,
  fingerprintConfig,
  stackFilePath,
  stageConfigFingerprint,
  writeStageState,
  YAML_WRITE,
} from "../../../src/pipeline/stackFile";
import { applyUpdate, configGuard } from "../../../src/pipeline/update";
import { ROOT } from "../support/harness";

/**
 * Issue 25, point 6: the people-owned config of a stack file is fingerprinted when a release
 * starts; an update over an edited one is refused (naming the keys), except the rollback,
 * which the engine limits to the routing resource.
 */
const image = digestImage;

const CONFIG = {
  "slipway:platform": "kubernetes",
  "slipway:service": { name: "checkout", env: { LOG_FORMAT: "json" }, replicas: 2 },
  "slipway:slots": { blue: { image: image("a"), version: "1.0.0" } },
  "slipway:traffic": { stable: "blue", canaryWeight: 0, headerRoute: { name: "x-canary" } },
  "slipway:release": { id: "r-1" },
  "slipway:testerToken": { secure: "v1:abc" },
  "kubernetes:context": "local",
};

describe("the people-owned config fingerprint", () => {
  const before = fingerprintConfig(CONFIG);
  const after = (change: (c: any) => void) => {
    const copy = structuredClone(CONFIG) as any;
    change(copy);
    return changedConfigKeys(before, fingerprintConfig(copy));
  };

  it("ignores what the pipeline writes (slots, release, tester token, stable slot and weight) and what only it reads (the canary plan, promotion gates, notifications, artifact policy)", async () => {
    expect(
      after((c) => {
        c["slipway:slots"].blue.image = image("b");
        c["slipway:release"] = { id: "r-2", phase: "canary" };
        c["slipway:testerToken"] = { secure: "v1:other" };
        c["slipway:traffic"].stable = "green";
        c["slipway:traffic"].canaryWeight = 50;
        c["slipway:canary"] = { steps: [{ setWeight: 10 }, { pause: { duration: 1 } }] };
        c["slipway:promotion"] = { requireApproval: true };
        c["slipway:notifications"] = { webhooks: [] };
        c["slipway:artifacts"] = { requireSignature: true };
      }),
    ).toEqual([]);
    expect(Object.keys(before).some((k) => /slots|release|testerToken|canaryWeight/.test(k))).toBe(
      false,
    );
  });

  it("names each edited leaf people own: service env, the header route, another provider's key", async () => {
    expect(after((c) => (c["slipway:service"].env.LOG_FORMAT = "text"))).toEqual([
      "slipway:service.env.LOG_FORMAT",
    ]);
    expect(after((c) => (c["slipway:service"].env.DEBUG = "1"))).toEqual([
      "slipway:service.env.DEBUG",
    ]);
    expect(after((c) => (c["slipway:traffic"].headerRoute.name = "x-tester"))).toEqual([
      "slipway:traffic.headerRoute.name",
    ]);
    expect(after((c) => (c["kubernetes:context"] = "prod"))).toEqual(["kubernetes:context"]);
    expect(after((c) => delete c["slipway:platform"])).toEqual(["slipway:platform"]);
    expect(after((c) => (c["slipway:flags"] = { beta: { enabled: true } }))).toEqual([
      "slipway:flags.beta.enabled",
    ]);
  });

  it("records digests, not values (the log is world-readable)", async () => {
    expect(JSON.stringify(before)).not.toContain("json");
    expect(Object.values(before).every((v) => /^[0-9a-f]{16}$/.test(v))).toBe(true);
  });

  it("of a project: the pipeline's own stack-file writes never count, a person's edit does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-guard-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    copyFileSync(join(ROOT, "Pulumi.local.yaml"), join(dir, "Pulumi.local.yaml"));
    const started = stageConfigFingerprint(dir, "local");
    writeStageState(stackFilePath(dir, "local"), {
      ...state(),
      canaryWeight: 30,
      slots: { ...state().slots, green: { image: image("b"), version: "2.0.0", replicas: 2 } },
    });
    expect(changedConfigKeys(started, stageConfigFingerprint(dir, "local"))).toEqual([]);
    editEnv(dir);
    expect(changedConfigKeys(started, stageConfigFingerprint(dir, "local"))).toEqual([
      "slipway:service.env.GREETING",
    ]);
  });
});

function editEnv(dir: string) {
  const file = stackFilePath(dir, "local");
  const doc = parseDocument(readFileSync(file, "utf8"));
  doc.setIn(["config", "slipway:service", "env", "GREETING"], "hello");
  writeFileSync(file, doc.toString(YAML_WRITE));
}

const state = (): StageState => canaryState({ id: "r-guard", greenReplicas: 2 });

describe("applyUpdate over an edited stack file", () => {
  const routing = { kind: "HTTPRoute" as const, id: "checkout-local/checkout" };
  async function setup() {
    const dir = mkdtempSync(join(tmpdir(), "slipway-guard-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    copyFileSync(join(ROOT, "Pulumi.local.yaml"), join(dir, "Pulumi.local.yaml"));
    const log = new FileStore(dir).log("local");
    await log.append({
      stage: "local",
      releaseId: "r-guard",
      event: "release.started",
      figures: { config: stageConfigFingerprint(dir, "local") },
    });
    const ups: { message: string; only?: unknown; refresh?: boolean; also?: string[] }[] = [];
    const stack: UpdatableStack = {
      stage: "local",
      outputs: async () => undefined,
      testerHeader: async () => undefined,
      writeState: (s) => writeStageState(stackFilePath(dir, "local"), s),
      up: async (message, _kind, only, options) => {
        ups.push({
          message,
          only,
          refresh: options?.refresh,
          ...(options?.alsoDeployments ? { also: options.alsoDeployments } : {}),
        });
        return { changes: { update: 1 }, durationMs: 1 };
      },
    };
    const updater = {
      stack,
      log,
      report: () => {},
      releaseId: "r-guard",
      routing,
      refreshable: true,
      config: configGuard(dir, "local", await releaseRecords(log, "r-guard")),
    };
    return { dir, log, ups, updater };
  }
  const setWeight: Transition = { kind: "setWeight", weight: 50, position: 2 };

  it("limits a step and a rollback to the routing resource; a deploy, promote or scale-down is not", async () => {
    const { ups, updater } = await setup();
    const s = state();
    await applyUpdate(updater, s, { ...s, canaryWeight: 50 }, setWeight, "step");
    await applyUpdate(updater, s, s, { kind: "rollback", reason: "r" }, "rollback");
    await applyUpdate(updater, s, s, { kind: "promote", at: "now" }, "promote");
    expect(ups.map((u) => u.only)).toEqual([routing, routing, undefined]);
    // The rollback reads the route back first: it re-creates a deleted route and takes an
    // edited one back to what the stack declares (issue 25, points 3 and 4). A step and the
    // promotion do not: they change the route only, from the state the last read-back verified.
    expect(ups.map((u) => !!u.refresh)).toEqual([false, true, false]);
  });

  it("the deploy and the rollbacks after promotion read the whole stage back first; the others do not", async () => {
    const { ups, updater } = await setup();
    const s = state();
    const release = { image: s.slots.blue.image, version: s.slots.blue.version };
    const all: Transition[] = [
      { kind: "deploy", release: s.release!, replicas: 2 },
      setWeight,
      { kind: "promote", at: "now" },
      { kind: "scaleDown", slot: "blue" },
      { kind: "restore", slot: "blue", release },
      { kind: "flipBack", slot: "blue", reason: "r" },
    ];
    for (const t of all) await applyUpdate(updater, s, s, t, t.kind);
    expect(ups.map((u) => [u.message, !!u.refresh, u.only ? "route" : "whole"])).toEqual([
      ["deploy", true, "whole"],
      ["setWeight", false, "route"],
      ["promote", false, "whole"],
      ["scaleDown", false, "whole"],
      ["restore", true, "whole"],
      ["flipBack", true, "whole"],
    ]);
    // Not on a stage nothing can be read back from (render mode).
    ups.length = 0;
    await applyUpdate({ ...updater, refreshable: false }, s, s, all[0]!, "deploy");
    expect(ups.map((u) => !!u.refresh)).toEqual([false]);
  });

  it("refuses a step over an edited env before it starts, naming the key and the file; the rollback still runs", async () => {
    const { dir, log, ups, updater } = await setup();
    const s = state();
    editEnv(dir);
    const fileBefore = readFileSync(stackFilePath(dir, "local"), "utf8");
    const err = await applyUpdate(
      updater,
      s,
      { ...s, canaryWeight: 50 },
      setWeight,
      "step 2",
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigChangedError);
    expect(err.message).toContain("slipway:service.env.GREETING");
    expect(err.message).toContain(stackFilePath(dir, "local"));
    expect(ups).toEqual([]);
    // Nothing written: not the next state, not an update record.
    expect(readFileSync(stackFilePath(dir, "local"), "utf8")).toBe(fileBefore);
    const records = await releaseRecords(log, "r-guard");
    expect(records.map((r) => r.event)).toEqual(["release.started", "config.changed"]);
    expect(records[1]!.figures).toMatchObject({
      keys: ["slipway:service.env.GREETING"],
      transition: "setWeight",
    });
    await applyUpdate(
      updater,
      s,
      { ...s, canaryWeight: 0 },
      { kind: "rollback", reason: "r" },
      "rb",
    );
    expect(ups).toEqual([{ message: "rb", only: routing, refresh: true }]);
  });

  it("a rollback also re-applies the stable slot's Deployment, unless the config was edited", async () => {
    const { dir, ups, updater } = await setup();
    const withWorkload = {
      ...updater,
      slotWorkload: (slot: string) => `checkout-local/checkout-${slot}`,
    };
    const s = state();
    const rollback = { kind: "rollback" as const, reason: "r" };
    await applyUpdate(withWorkload, s, { ...s, canaryWeight: 0 }, rollback, "rb");
    // Traffic goes back to blue: blue's Deployment is read back and re-applied with the route.
    expect(ups.at(-1)).toEqual({
      message: "rb",
      only: routing,
      refresh: true,
      also: ["checkout-local/checkout-blue"],
    });
    // A step never repairs anything but the route.
    await applyUpdate(withWorkload, s, { ...s, canaryWeight: 50 }, setWeight, "step");
    expect(ups.at(-1)).toEqual({ message: "step", only: routing, refresh: undefined });
    // Over an edited config the rollback stays on the route: the edit must not ride along.
    editEnv(dir);
    await applyUpdate(withWorkload, s, { ...s, canaryWeight: 0 }, rollback, "rb2");
    expect(ups.at(-1)).toEqual({ message: "rb2", only: routing, refresh: true });
  });
});

describe("the machine answers an edited config as it answers drift", () => {
  const PLAN: PlanStep[] = [
    { kind: "setWeight", weight: 10 },
    { kind: "pause", seconds: 60, untilApproved: false },
    { kind: "setWeight", weight: 50 },
  ];
  function run(options: { onDrift?: "rollback" | "pause"; refuse: Transition["kind"] }) {
    const applied: Transition["kind"][] = [];
    const fx: Effects = {
      async apply(_next, t) {
        // The edit lands during the first pause: every later update of that kind is refused.
        if (t.kind === options.refuse && applied.includes("setWeight"))
          throw new ConfigChangedError(["slipway:service.env"], "Pulumi.local.yaml", t.kind);
        applied.push(t.kind);
      },
      async verify() {},
      async smoke() {
        return { ok: true, detail: "" };
      },
      async analyse() {
        return { verdict: "pass", reasons: [] };
      },
      async sleep() {},
      async approved() {
        return false;
      },
      note() {},
      now: () => 0,
    };
    const result = runMachine(
      {
        state: { ...state(), release: { ...state().release!, phase: "deploying", position: 0 } },
        plan: PLAN,
        fullReplicas: 2,
        smokeCheck: false,
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 3600,
        inconclusiveRetries: 1,
        ...(options.onDrift ? { onDrift: options.onDrift } : {}),
      },
      fx,
    );
    return { result, applied };
  }

  it("rolls back by default, naming the key", async () => {
    const { result, applied } = run({ refuse: "setWeight" });
    const r = await result;
    expect(r.outcome).toBe("rolledBack");
    expect(r.reason).toMatch(/slipway:service\.env/);
    expect(applied).toEqual(["deploy", "setWeight", "rollback"]);
  });

  it("pauses with onDrift pause, typed, and applies nothing more", async () => {
    const { result, applied } = run({ refuse: "setWeight", onDrift: "pause" });
    const r = await result;
    expect(r.outcome).toBe("paused");
    expect(r.pause).toEqual({
      kind: "configChanged",
      keys: ["slipway:service.env"],
      afterPromotion: false,
    });
    expect(applied).toEqual(["deploy", "setWeight"]);
  });

  it("after promotion holds the scale-down and pauses, never rolls back on its own", async () => {
    const { result, applied } = run({ refuse: "scaleDown" });
    const r = await result;
    expect(r.outcome).toBe("paused");
    expect(r.reason).toMatch(/scale-down is held/);
    expect(applied).toEqual(["deploy", "setWeight", "setWeight", "promote"]);
  });
});
