import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MetricInputs } from "../../src/analysis/run";
import { ReleaseLog } from "../../src/pipeline/log";
import { approve, promote, rollback, status } from "../../src/pipeline/operations";
import { release, type MetricsSource } from "../../src/pipeline/release";
import type { PipelineEvent } from "../../src/domain";
import { renderedManifests, renderedRouteWeights } from "../../src/pipeline/readBack";
import { StageStack } from "../../src/pipeline/stack";
import { REPO, scratchProject, toKubernetesRender, type ScratchProject } from "./support/project";

/**
 * The pipeline end to end on the real engine (local stage, file backend,
 * Kubernetes provider rendering manifests). Metrics come from a scripted
 * source here; the Prometheus path is exercised by the provider tier and the
 * rehearsal, and one test below points at an unreachable Prometheus.
 */

const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

/** Healthy traffic for both slots, or a candidate with `errorRatio` errors. */
function scripted(candidateErrorRatio: number): MetricsSource {
  return () => async () => {
    const total = 20_000;
    const latency = (shift: number) => Array.from({ length: 200 }, (_, i) => 20 + (i % 10) + shift);
    const inputs: MetricInputs = {
      errors: {
        baseline: { bad: 100, total: 100_000 },
        canary: { bad: Math.round(candidateErrorRatio * total), total },
      },
      latency: { baseline: latency(0), canary: latency(candidateErrorRatio > 0.05 ? 40 : 0) },
    };
    return inputs;
  };
}

function fastPlan(
  project: ScratchProject,
  stage: string,
  steps: unknown[],
  extra: Record<string, unknown> = {},
) {
  project.editStack(stage, (c) => {
    c["slipway:canary"] = {
      steps,
      analysis: { count: 2, interval: 1, minSamples: 100 },
      scaleDownDelaySeconds: 0,
      progressDeadlineSeconds: 600,
      ...extra,
    };
  });
}

const ANALYSED = [{ setWeight: 10 }, { analysis: {} }, { setWeight: 50 }, { analysis: {} }];

function collect() {
  const events: PipelineEvent[] = [];
  return { events, report: (e: PipelineEvent) => events.push(e) };
}

const updatesOf = (log: ReleaseLog, releaseId: string) =>
  log.forRelease(releaseId).filter((r) => r.event === "update.succeeded");

describe("pipeline on the real engine", () => {
  let project: ScratchProject;
  let log: ReleaseLog;
  const base = () => ({
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: project.env,
  });

  beforeAll(() => {
    project = scratchProject();
    process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
    log = ReleaseLog.forStage(project.logDir, "local");
  });
  afterAll(() => project?.cleanup());
  // A failed test must not leave a release in progress for the next one.
  afterEach(async () => {
    const s = await status(base()).catch(() => undefined);
    if (s?.release?.active) await rollback({ ...base(), reason: "test cleanup" });
  });

  it("a good release promotes: one update per transition, each step verified, old slot scaled down", async () => {
    fastPlan(project, "local", ANALYSED);
    const { events, report } = collect();
    const result = await release({
      ...base(),
      image: digest("2"),
      version: "1.1.0",
      revision: "abc123",
      metrics: scripted(0.001),
      report,
    });
    expect(result.outcome).toBe("promoted");
    expect(result.exitCode).toBe(0);
    const updates = updatesOf(log, result.releaseId!);
    expect(updates.map((u) => (u.figures as any).transition)).toEqual([
      "deploy",
      "setWeight",
      "setWeight",
      "promote",
      "scaleDown",
    ]);
    // Each canary step changed exactly the routing rule.
    for (const u of updates.filter((u) => (u.figures as any).transition === "setWeight")) {
      expect((u.figures as any).changes).toEqual(expect.objectContaining({ update: 1 }));
      expect((u.figures as any).changes.create ?? 0).toBe(0);
    }
    expect(events.filter((e) => e.type === "weights").every((e) => (e as any).verified)).toBe(true);
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 0,
      green: 100,
    });
    const s = await status(base());
    expect(s.outputs!.stableSlot).toBe("green");
    expect(s.outputs!.releases.green.image).toBe(digest("2"));
    expect(s.outputs!.releases.blue.replicas).toBe(0);
    expect(s.release!.phase).toBe("completed");
    const records = log.forRelease(result.releaseId!);
    expect(records[0]!.event).toBe("release.started");
    expect(records.at(-1)!.event).toBe("release.completed");
    expect(records.filter((r) => r.event === "analysis.passed")).toHaveLength(2);
  });

  it("a bad release rolls back with exactly one update that touches one resource", async () => {
    fastPlan(project, "local", ANALYSED);
    const result = await release({
      ...base(),
      image: digest("3"),
      version: "1.2.0",
      metrics: scripted(0.2),
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.exitCode).toBe(3);
    const updates = updatesOf(log, result.releaseId!);
    expect(updates.map((u) => (u.figures as any).transition)).toEqual([
      "deploy",
      "setWeight",
      "rollback",
    ]);
    const rollbackUpdate = updates.at(-1)!;
    expect(
      Object.entries((rollbackUpdate.figures as any).changes).filter(
        ([k, v]) => k !== "same" && (v as number) > 0,
      ),
    ).toEqual([["update", 1]]);
    // Green became stable with the first release; the bad candidate went to blue and has no traffic again.
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 0,
      green: 100,
    });
    const failed = log.forRelease(result.releaseId!).find((r) => r.event === "analysis.failed")!;
    expect(failed.verdict).toBe("fail");
    expect(failed.figures).toHaveProperty("metrics");
    expect((await status(base())).outputs!.stableSlot).toBe("green");
  });

  it("refuses bad input before any update: tag-only image, unknown stage, weights out of order", async () => {
    const before = await (await StageStack.open({ ...base() })).stack.exportStack();
    const tagOnly = await release({
      ...base(),
      image: "registry.local/checkout:1.3",
      version: "1.3.0",
    });
    expect(tagOnly.outcome).toBe("refused");
    expect(tagOnly.reason).toMatch(/--image.*not pinned by digest/);
    const unknown = await release({ ...base(), stage: "qa", image: digest("4"), version: "1.3.0" });
    expect(unknown.reason).toMatch(/--stage qa: no stack file.*stages in .*: local, prod, staging/);
    fastPlan(project, "local", [{ setWeight: 50 }, { setWeight: 20 }]);
    const outOfOrder = await release({ ...base(), image: digest("4"), version: "1.3.0" });
    expect(outOfOrder.reason).toMatch(
      /slipway:canary.steps\[1\].setWeight: got 20; weights must rise step by step/,
    );
    const after = await (await StageStack.open({ ...base() })).stack.exportStack();
    expect(after.deployment.resources).toEqual(before.deployment.resources);
  });

  it("rollback mid-canary is one update to weight 0", async () => {
    fastPlan(project, "local", [{ setWeight: 30 }, { pause: {} }]);
    const paused = await release({ ...base(), image: digest("5"), version: "1.4.0" });
    expect(paused.outcome).toBe("paused");
    expect(paused.exitCode).toBe(4);
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 30,
      green: 70,
    });
    const rb = await rollback({ ...base(), reason: "test mid-canary" });
    expect(rb.outcome).toBe("rolledBack");
    const updates = updatesOf(log, paused.releaseId!);
    expect(updates.map((u) => (u.figures as any).transition ?? "manual")).toEqual([
      "deploy",
      "setWeight",
      "rollback",
    ]);
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 0,
      green: 100,
    });
  });

  it("an env edit in the stack file during a pause is refused: the step and the rollback change the route only, the stable slot is untouched", async () => {
    fastPlan(project, "local", [{ setWeight: 10 }, { pause: { duration: 2 } }, { setWeight: 50 }]);
    const stable = (await status(base())).outputs!.stableSlot;
    const deploymentOf = (slot: string) =>
      renderedManifests(project.renderDir("local")).find(
        (m) => m?.kind === "Deployment" && String(m?.metadata?.name).endsWith(`-${slot}`),
      );
    const stableBefore = deploymentOf(stable);
    expect(stableBefore).toBeDefined();
    let edited = false;
    try {
      const result = await release({
        ...base(),
        image: digest("e"),
        version: "1.9.0",
        // The first pause: someone edits the service's environment in the stack file.
        sleep: async (ms) => {
          if (!edited) {
            edited = true;
            project.editStack("local", (c) => {
              c["slipway:service"].env = { ...c["slipway:service"].env, GREETING: "mid-canary" };
            });
          }
          await new Promise((r) => setTimeout(r, ms));
        },
      });
      expect(edited).toBe(true);
      expect(result.outcome).toBe("rolledBack");
      expect(result.exitCode).toBe(3);
      expect(result.reason).toMatch(/slipway:service\.env\.GREETING/);
      const updates = updatesOf(log, result.releaseId!);
      expect(updates.map((u) => (u.figures as any).transition)).toEqual([
        "deploy",
        "setWeight",
        "rollback",
      ]);
      // The step before the edit and the rollback over it: the route, and nothing else.
      for (const u of updates.slice(1)) {
        const changes = (u.figures as any).changes as Record<string, number>;
        expect(Object.entries(changes).filter(([op]) => op !== "same")).toEqual([["update", 1]]);
      }
      const refused = log.forRelease(result.releaseId!).filter((r) => r.event === "config.changed");
      expect(refused).toHaveLength(1);
      expect(refused[0]!.figures).toMatchObject({
        keys: ["slipway:service.env.GREETING"],
        transition: "setWeight",
      });
      expect(refused[0]!.reason).toContain("Pulumi.local.yaml");
      // The stable slot's Deployment was never updated; no object carries the edit.
      expect(deploymentOf(stable)).toEqual(stableBefore);
      expect(JSON.stringify(renderedManifests(project.renderDir("local")))).not.toContain(
        "mid-canary",
      );
      expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual(
        stable === "blue" ? { blue: 100, green: 0 } : { blue: 0, green: 100 },
      );
    } finally {
      project.editStack("local", (c) => {
        delete c["slipway:service"].env.GREETING;
      });
    }
  });

  it("rollback after promotion while the old slot runs flips back in one update", async () => {
    fastPlan(project, "local", [{ setWeight: 50 }], { scaleDownDelaySeconds: 3600 });
    // Promote but stop before the (long) scale-down: the sleep of the delay ends the run.
    const controller = new AbortController();
    const result = await release({
      ...base(),
      image: digest("6"),
      version: "1.5.0",
      sleep: async (ms) => {
        if (ms >= 3_000_000) throw new Error("stop before scale-down (test)");
      },
    }).catch((e) => e);
    void controller;
    expect(result.outcome === "promoted" || result.outcome === "error").toBe(true);
    let s = await status(base());
    expect(s.release!.phase).toBe("promoted");
    expect(s.outputs!.stableSlot).toBe("blue");
    expect(s.outputs!.releases.green.replicas).toBeGreaterThan(0);
    const rb = await rollback({ ...base(), reason: "regression seen after promotion" });
    expect(rb.outcome).toBe("rolledBack");
    expect(updatesOf(log, s.release!.id).at(-1)!.reason).toBeUndefined();
    s = await status(base());
    expect(s.outputs!.stableSlot).toBe("green");
    expect(s.outputs!.releases.green.image).toBe(digest("2"));
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 0,
      green: 100,
    });
  });

  it("rollback later restores the previous known-good release into the idle slot, then flips", async () => {
    fastPlan(project, "local", [{ setWeight: 50 }]);
    const done = await release({ ...base(), image: digest("7"), version: "1.6.0" });
    expect(done.outcome).toBe("promoted");
    let s = await status(base());
    expect(s.outputs!.stableSlot).toBe("blue");
    expect(s.outputs!.releases.green.replicas).toBe(0);
    const rb = await rollback({ ...base(), reason: "late regression" });
    expect(rb.outcome).toBe("rolledBack");
    s = await status(base());
    expect(s.outputs!.stableSlot).toBe("green");
    expect(s.outputs!.releases.green.image).toBe(digest("2"));
    expect(s.outputs!.releases.green.replicas).toBe(2);
    const last = log
      .forRelease(done.releaseId!)
      .filter((r) => r.event === "update.succeeded")
      .slice(-2);
    expect(last.map((r) => r.reason ?? "")).toHaveLength(2);
  });

  it("a stack update that fails mid-step leaves traffic on stable and a complete log", async () => {
    fastPlan(project, "local", [
      { setWeight: 10 },
      { analysis: {} },
      { setWeight: 60 },
      { analysis: {} },
    ]);
    const manifestDir = () =>
      readdirSync(project.renderDir("local"))
        .map((d) => join(project.renderDir("local"), d))
        .find((d) => d.endsWith("manifest"))!;
    let sabotaged: string | undefined;
    const report = (e: PipelineEvent) => {
      // Break the renderer's output directory right before the second weight change…
      if (e.type === "update" && e.phase === "started" && e.message.includes("setWeight 60")) {
        sabotaged = manifestDir();
        renameSync(sabotaged, `${sabotaged}.moved`);
        writeFileSync(sabotaged, "not a directory");
      }
      // …and repair it once the failure is seen, so the rollback can land.
      if (e.type === "update" && e.phase === "failed" && sabotaged) {
        rmSync(sabotaged);
        renameSync(`${sabotaged}.moved`, sabotaged);
        sabotaged = undefined;
      }
    };
    const result = await release({
      ...base(),
      image: digest("8"),
      version: "1.7.0",
      metrics: scripted(0.001),
      report,
    });
    expect(result.outcome, result.reason).toBe("rolledBack");
    expect(result.reason).toMatch(/stack update failed/);
    const records = log.forRelease(result.releaseId!);
    expect(records.map((r) => r.event)).toContain("update.failed");
    expect(records.at(-1)!.event).toBe("release.rolledBack");
    const s = await status(base());
    const onStable =
      s.outputs!.stableSlot === "blue" ? { blue: 100, green: 0 } : { blue: 0, green: 100 };
    expect(s.outputs!.weights).toEqual(onStable);
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual(onStable);
    expect(s.release!.phase).toBe("rolledBack");
  });

  it("an unreachable metrics source never promotes: rollback after the consecutive-error limit", async () => {
    fastPlan(project, "local", [{ setWeight: 10 }, { analysis: {} }]);
    project.editStack(
      "local",
      (c) => (c["slipway:canary"].analysis = { count: 3, interval: 1, consecutiveErrorLimit: 1 }),
    );
    const result = await release({
      ...base(),
      image: digest("9"),
      version: "1.8.0",
      prometheusUrl: "http://127.0.0.1:9",
    });
    expect(result.outcome).toBe("rolledBack");
    const measured = log
      .forRelease(result.releaseId!)
      .filter((r) => r.event === "analysis.measured");
    expect(measured.length).toBe(2);
    expect(measured.every((m) => (m.figures as any).error)).toBe(true);
    const s = await status(base());
    expect(s.outputs!.weights[s.outputs!.candidateSlot]).toBe(0);
  });

  describe("with a release running in another process", () => {
    let child: ChildProcess | undefined;
    afterAll(() => child?.kill("SIGKILL"));

    const startChild = (args: string[]) =>
      // One process (node with the tsx loader), so SIGKILL really kills the pipeline.
      spawn(process.execPath, ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), ...args], {
        cwd: project.dir,
        env: { ...process.env, ...project.env, SLIPWAY_LOG_DIR: project.logDir },
        stdio: ["ignore", "pipe", "pipe"],
      });

    const waitFor = async (predicate: () => boolean, ms = 180_000) => {
      const end = Date.now() + ms;
      while (!predicate()) {
        if (Date.now() > end) throw new Error("timed out waiting");
        await new Promise((r) => setTimeout(r, 250));
      }
    };

    it("a concurrent run is refused and changes nothing; a killed run resumes without repeating an update", async () => {
      // A pause the child is killed in; the deadline must outlast the plan (the config refuses one that does not).
      fastPlan(
        project,
        "local",
        [
          { setWeight: 10 },
          { pause: { duration: 600 } },
          { setWeight: 40 },
          { pause: { duration: 1 } },
        ],
        { progressDeadlineSeconds: 1200 },
      );
      child = startChild([
        "release",
        "--stage",
        "local",
        "--image",
        digest("a"),
        "--version",
        "2.0.0",
        "--json",
        "--log-dir",
        project.logDir,
      ]);
      let out = "";
      let err = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (err += d));
      // What the child said, when it never gets to its pause.
      await waitFor(() => out.includes('"type":"wait"')).catch((e: Error) => {
        throw new Error(`${e.message}; stdout: ${out.slice(-3000)}; stderr: ${err.slice(-3000)}`);
      });

      const before = await (await StageStack.open({ ...base() })).stack.exportStack();
      const second = await release({ ...base(), image: digest("b"), version: "2.0.1" });
      expect(second.outcome).toBe("refused");
      expect(second.reason).toMatch(/stage local is busy: release 2.0.0 by pid \d+/);
      expect(
        (await (await StageStack.open({ ...base() })).stack.exportStack()).deployment.resources,
      ).toEqual(before.deployment.resources);

      child.kill("SIGKILL");
      await new Promise((r) => child!.once("exit", r));
      const s = await status(base());
      expect(s.release!.active).toBe(true);
      expect(s.release!.phase).toBe("canary");
      expect(s.release!.position).toBe(1);
      const id = s.release!.id;
      const updatesBefore = updatesOf(log, id).length;

      fastPlan(project, "local", [
        { setWeight: 10 },
        { pause: { duration: 1 } },
        { setWeight: 40 },
        { pause: { duration: 1 } },
      ]);
      const resumed = await release({ ...base(), resume: true });
      expect(resumed.outcome).toBe("promoted");
      const transitions = updatesOf(log, id).map((u) => (u.figures as any).transition);
      expect(transitions).toEqual(["deploy", "setWeight", "setWeight", "promote", "scaleDown"]);
      expect(updatesOf(log, id).length).toBe(updatesBefore + 3);
      expect(log.forRelease(id).map((r) => r.event)).toContain("release.resumed");
    });
  });

  describe("promotion across stages", () => {
    beforeAll(() => {
      for (const stage of ["staging", "prod"]) project.editStack(stage, toKubernetesRender(stage));
      project.editStack(
        "prod",
        (c) =>
          (c["slipway:promotion"] = { from: "staging", soakSeconds: 3600, requireApproval: true }),
      );
      for (const stage of ["staging", "prod"]) fastPlan(project, stage, [{ setWeight: 50 }]);
    });
    const at = (stage: string) => ({ ...base(), stage });

    it("carries the same digest to prod after soak and approval, and refuses what never passed staging", async () => {
      const neverPassed = await promote({ ...base(), from: "staging", to: "prod" });
      expect(neverPassed.outcome).toBe("refused");
      expect(neverPassed.reason).toMatch(/stage staging has never been deployed/);

      const staged = await release({ ...at("staging"), image: digest("c"), version: "3.0.0" });
      expect(staged.outcome).toBe("promoted");

      const wrong = await promote({ ...base(), from: "staging", to: "prod", image: digest("d") });
      expect(wrong.reason).toMatch(/is not the stable release of staging/);

      const soaking = await promote({ ...base(), from: "staging", to: "prod" });
      expect(soaking.reason).toMatch(
        /prod requires 3600s \(slipway:promotion.soakSeconds\), \d+s to go/,
      );
      // An hour later (the clock is the pipeline's to inject).
      const later = () => Date.now() + 3601_000;
      const unapproved = await promote({ ...base(), from: "staging", to: "prod", now: later });
      expect(unapproved.reason).toMatch(
        /prod requires approval.*slipway approve --stage prod --release r-/,
      );

      await expect(approve({ ...at("prod"), release: "r-unknown" })).rejects.toThrow(
        /unknown release r-unknown/,
      );
      await approve({
        ...at("prod"),
        release: staged.releaseId!,
        actor: "release-manager@example.com",
      });
      const promoted = await promote({ ...base(), from: "staging", to: "prod", now: later });
      expect(promoted.outcome).toBe("promoted");
      const prod = await status(at("prod"));
      expect(prod.outputs!.releases[prod.outputs!.stableSlot].image).toBe(digest("c"));
      const prodStarted = ReleaseLog.forStage(project.logDir, "prod").forRelease(
        promoted.releaseId!,
      )[0]!;
      expect(prodStarted.artifact!.digest).toBe(`sha256:${"c".repeat(64)}`);
    });
  });
});
