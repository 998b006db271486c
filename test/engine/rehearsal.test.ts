import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Runtime } from "../../src/config/schema";
import { ReleaseLog } from "../../src/pipeline/log";
import type { PipelineEvent } from "../../src/domain";
import { descendants } from "../../src/processes";
import { QUICK, QUICK_ONE_STEP } from "../../src/rehearsal/profile";
import { describeServerErrors } from "../../src/rehearsal/load";
import { RehearsalAborted, rehearse } from "../../src/rehearsal/rehearse";
import type { RehearsalResult } from "../../src/rehearsal/result";
import { formatSummary } from "../../src/rehearsal/summary";
import { clusterStatus } from "../../src/cluster";
import { REPO } from "./support/project";

/**
 * `npm start` end to end, with the quick profile (shorter analyses, more load):
 * the real build script, the local cluster (started by the rehearsal unless it
 * runs, and stopped if it started it), the real engine applying a scratch local
 * stage to it, slot processes following the live Deployments on their
 * Services' ClusterIPs, load through Traefik (which splits it by the
 * HTTPRoute), and a real Prometheus (Debian package, installed by
 * scripts/install-test-servers.sh) that the analysis reads. Nothing is scripted.
 *
 * Go and then Rust in one rehearsal, on one cluster session: Go with the whole
 * plan (20%, analysis, 50%, analysis), Rust with its first step only (20%,
 * analysis), which still promotes a good Rust release and rolls a bad one back
 * on the cluster at one update and one analysis less. The interruption case
 * runs Go.
 */

const runtimes: Runtime[] = ["go", "rust"];
/** The canary weights each runtime's plan holds, for a release promoted. */
const plannedWeights: Record<Runtime, number[]> = { go: [20, 50], rust: [20] };
// Per test process, so that two test runs in one checkout never share a stage; kept on failure.
const outDir = join(REPO, ".slipway", "test", `rehearsal-${process.pid}`);

/** Processes below this one that the rehearsal starts: slot binaries, Prometheus, the engine. */
const leftovers = () =>
  descendants(process.pid)
    .map((pid) => {
      try {
        return { pid, argv0: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]! };
      } catch {
        return undefined;
      }
    })
    .filter(
      (p): p is { pid: number; argv0: string } =>
        !!p && /blobs\/sha256|prometheus|pulumi/.test(p.argv0),
    );

describe("engine: the local release rehearsal (Go and Rust)", () => {
  let result: RehearsalResult;
  const events: PipelineEvent[] = [];
  let started = 0;
  /** Whether the local cluster ran before the rehearsal (then it is left running). */
  let clusterRanBefore = false;
  const clusterRunning = async () =>
    (await clusterStatus({ projectDir: REPO })).parts.filter((p) => p.running).map((p) => p.name);

  beforeAll(async () => {
    rmSync(outDir, { recursive: true, force: true });
    clusterRanBefore = (await clusterRunning()).length > 0;
    started = Date.now();
    result = await rehearse({
      repo: REPO,
      runtimes,
      profile: QUICK,
      profileFor: { rust: QUICK_ONE_STEP },
      outDir,
      report: (e) => events.push(e),
    });
    // The summary a person would see, for the test log.
    console.log(formatSummary(result, REPO));
    // Go and Rust: about 8 minutes here, more when the shared machine is busy.
  }, 1_200_000);

  const releasesOf = (runtime: Runtime) => result.releases.filter((r) => r.runtime === runtime);

  it("promotes the good release and rolls the bad one back, Go and Rust", () => {
    expect(result.error).toBeUndefined();
    expect(result.releases.map((r) => [r.runtime, r.version, r.result.outcome])).toEqual([
      ["go", "1.1.0", "promoted"],
      ["go", "1.2.0", "rolledBack"],
      ["rust", "1.1.0", "promoted"],
      ["rust", "1.2.0", "rolledBack"],
    ]);
    expect(result.ok).toBe(true);
  });

  it.each(runtimes)(
    "the good %s release: one update per transition, no analysis failed and every step passed on Prometheus data",
    (runtime) => {
      const good = releasesOf(runtime)[0]!.facts!;
      expect(good.updates.map((u) => u.transition)).toEqual([
        "deploy",
        ...plannedWeights[runtime].map(() => "setWeight"),
        "promote",
        "scaleDown",
      ]);
      for (const u of good.updates) {
        // Every transition is one in-place update: nothing created, replaced or deleted.
        expect(
          Object.fromEntries(
            Object.entries(u.changes ?? {}).filter(([k, v]) => k !== "same" && v > 0),
          ),
        ).toEqual({ update: 1 });
      }
      // What must hold: no analysis failed, and every step's analysis passed in the end. An
      // "inconclusive" before its pass (too little data when the machine is busy) is the judge
      // refusing to guess, followed by the machine's retry: correct behaviour, not a failure.
      const verdicts = good.analyses.map((a) => a.verdict);
      expect(verdicts).not.toContain("fail");
      expect(verdicts.filter((v) => v === "pass")).toHaveLength(plannedWeights[runtime].length);
      for (const a of good.analyses.filter((x) => x.verdict === "pass")) {
        const errors = a.metrics.find((m) => m.name === "errors");
        const latency = a.metrics.find((m) => m.name === "latency");
        // Real traffic counted by Prometheus, above minSamples on both sides.
        expect(errors.canary.n).toBeGreaterThanOrEqual(100);
        expect(errors.baseline.n).toBeGreaterThanOrEqual(100);
        expect(errors.canary.bad).toBe(0);
        expect(latency.canary.n).toBeGreaterThanOrEqual(10);
      }
      expect(good.updates.at(-2)!.weights).toEqual({ blue: 0, green: 100 });
    },
  );

  it.each(runtimes)(
    "the bad %s release: the analysis at 20% fails on errors and the rollback is one update",
    (runtime) => {
      const bad = releasesOf(runtime)[1]!.facts!;
      expect(bad.candidate).toBe("blue");
      expect(bad.updates.map((u) => u.transition)).toEqual(["deploy", "setWeight", "rollback"]);
      expect(bad.updates.at(-1)!.weights).toEqual({ blue: 0, green: 100 });
      // The step's analysis ends in "fail"; any analysis before it in that step (a retry on too
      // little data under load) was inconclusive, never a pass.
      expect(bad.analyses.at(-1)!.verdict).toBe("fail");
      expect(bad.analyses.slice(0, -1).map((a) => a.verdict)).toEqual(
        bad.analyses.slice(0, -1).map(() => "inconclusive"),
      );
      const errors = bad.analyses.at(-1)!.metrics.find((m) => m.name === "errors");
      expect(errors.verdict).toBe("fail");
      expect(errors.canary.rate).toBeGreaterThan(0.05);
      expect(errors.baseline.bad).toBe(0);
    },
  );

  it("Traefik split the load by the HTTPRoute: at each weight the services served the candidate its share within 3 points", () => {
    for (const r of result.releases) {
      // Every request through the Gateway was answered.
      expect(r.load!.total.failed).toBe(0);
      const canary = r.steps!.filter((s) => s.candidateWeight > 0 && s.candidateWeight < 100);
      expect(canary.map((s) => s.candidateWeight)).toEqual(
        r.expected === "promoted" ? plannedWeights[r.runtime] : [20],
      );
      for (const s of canary) {
        expect(s.verified).toBe(true);
        expect(s.requests.total).toBeGreaterThanOrEqual(1000);
        expect(Math.abs(s.candidateShare! - s.candidateWeight)).toBeLessThanOrEqual(3);
      }
    }
    // Only the faulty candidate answered 5xx, at about its injected ratio. The good release is
    // the first of its runtime: it creates the stage, and until the stage first serves its
    // answers are not the service's (Traefik's 404 before the route exists, counted apart; a 5xx
    // if the Gateway takes the new route a moment before the slot's process listens, since kwok
    // declares pods ready at once where a kubelet would wait for the readiness probe). Those are
    // bounded to a few seconds of load; from the first 2xx on, not one 5xx. (A stale HTTPRoute
    // of the runtime before, which Traefik keeps a moment after its deletion, is ruled out by
    // the rehearsal itself: no route may serve the host before a runtime's load starts.)
    for (const runtime of runtimes) {
      const [good, badRelease] = releasesOf(runtime);
      const l = good!.load!.total;
      const since = good!.load!.since ?? 0;
      const why = `${runtime} ${good!.version}: 5xx ${describeServerErrors(l, since)} after the release began; steps began at ${good!.steps!.map((s) => `${((s.startedAt - since) / 1000).toFixed(1)} s (${s.candidateWeight}%)`).join(", ")}`;
      expect(l.serverErrors - (l.serverErrorsBeforeServing ?? 0), why).toBe(0);
      expect(l.serverErrorsBeforeServing ?? 0, why).toBeLessThanOrEqual(QUICK.loadRate * 5);
      if (l.serverErrorsBeforeServing) console.log(`rehearsal: ${why}`);
      // The bad release starts on a stage that serves: its first answers are the stable's.
      expect(badRelease!.load!.total.serverErrorsBeforeServing ?? 0).toBe(0);
      const bad = badRelease!.steps!.find((s) => s.candidateWeight === 20)!;
      expect(bad.stableErrors).toBe(0);
      const ratio = bad.candidateErrors / bad.requests.candidate;
      expect(ratio).toBeGreaterThan(0.05);
      expect(ratio).toBeLessThan(0.3);
    }
  });

  it.each(runtimes)(
    "%s: the afterDeploy acceptance hook reached each candidate through the Gateway's header route; the sink got the release events",
    (runtime) => {
      const [good, bad] = releasesOf(runtime);
      // Traefik sent the tester header to the candidate, which answered as itself with the new version.
      expect(good!.acceptance!.map((c) => [c.slot, c.version, c.status, c.answered, c.ok])).toEqual(
        [["green", "1.1.0", 200, { slot: "green", version: "1.1.0" }, true]],
      );
      expect(bad!.acceptance!.map((c) => [c.slot, c.version, c.status, c.answered, c.ok])).toEqual([
        ["blue", "1.2.0", 200, { slot: "blue", version: "1.2.0" }, true],
      ]);
      const said = (r: typeof good) => r!.notifications!.map((m) => m.replace(/ \(.*?\)/, ""));
      expect(said(good)[0]).toMatch(/^checkout 1\.1\.0.*: release started on /);
      expect(said(good).at(-1)).toMatch(/promoted on .*blue 0% \/ green 100%/);
      expect(said(good).filter((m) => / analysis at step /.test(m))).toHaveLength(
        plannedWeights[runtime].length,
      );
      expect(said(bad).some((m) => / analysis at step .*: fail/.test(m))).toBe(true);
      expect(said(bad).at(-1)).toMatch(/rolled back on /);
      // The release report lists the hook's result and every delivery, from the release log.
      const report = readFileSync(good!.reportFile!, "utf8");
      expect(report).toContain("## Hooks and notifications");
      expect(report).toContain("- hook **acceptance** at afterDeploy: passed (200)");
      expect(report.match(/^- notification delivered to rehearsal-sink: /gm)?.length).toBe(
        good!.notifications!.length,
      );
      const summary = JSON.parse(readFileSync(join(outDir, "summary.json"), "utf8"));
      const i = result.releases.indexOf(good!);
      expect(summary.releases[i].acceptance).toEqual([
        { slot: "green", version: "1.1.0", status: 200, ok: true },
      ]);
      expect(summary.releases[i + 1].notifications).toEqual(bad!.notifications);
    },
  );

  it("summary.json: per release the outcome, per step the weight held and the share observed, with counts", () => {
    const summary = JSON.parse(readFileSync(join(outDir, "summary.json"), "utf8"));
    expect(summary).toMatchObject({ schemaVersion: 1, ok: true, mode: "cluster" });
    expect(summary.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.releases.map((r: any) => [r.runtime, r.version, r.outcome, r.ok])).toEqual([
      ["go", "1.1.0", "promoted", true],
      ["go", "1.2.0", "rolledBack", true],
      ["rust", "1.1.0", "promoted", true],
      ["rust", "1.2.0", "rolledBack", true],
    ]);
    const step = summary.releases[0].steps.find((s: any) => s.candidateWeight === 20);
    expect(step.requests.total).toBe(step.requests.candidate + step.requests.stable);
    expect(step.observedCandidateShare).toBeCloseTo(
      (100 * step.requests.candidate) / step.requests.total,
      1,
    );
  });

  it.each(runtimes)(
    "the %s slots ran the images the Deployments pinned: restarted into the idle slot for the next release",
    (runtime) => {
      const lines = events
        .filter((e): e is Extract<PipelineEvent, { type: "info" }> => e.type === "info")
        .map((e) => e.message);
      const slotLines = lines
        .filter(
          (l) => l.startsWith(`[${runtime}] `) && / slot (blue|green): (started|stopped)/.test(l),
        )
        .map((l) => l.replace(/^\[\w+\] /, "").replace(/ \(pid.*$/, ""));
      // Each on its Service's ClusterIP:port, from the cluster's loopback service range.
      const on = (s: string) => new RegExp(`^${s} on 127\\.100\\.\\d+\\.\\d+:80$`);
      expect(slotLines).toEqual([
        expect.stringMatching(on("slot blue: started 1.0.0")),
        expect.stringMatching(on("slot green: started 1.1.0")),
        "slot blue: stopped 1.0.0",
        expect.stringMatching(on("slot blue: started 1.2.0")),
        expect.stringMatching(/^slot (blue|green): stopped/),
        expect.stringMatching(/^slot (blue|green): stopped/),
      ]);
      expect(
        lines.some((l) => l.startsWith(`[${runtime}] `) && l.includes("FAULT_ERROR_RATIO=0.15")),
      ).toBe(true);
    },
  );

  it("writes a Markdown report and an SVG chart per release", () => {
    for (const r of result.releases) {
      const md = readFileSync(r.reportFile!, "utf8");
      const svg = readFileSync(r.chartFile!, "utf8");
      expect(md).toContain(`# Release ${r.result.releaseId}`);
      expect(md).toContain(
        `![traffic share, error ratio and p99 latency per slot over the release](${r.result.releaseId}.svg)`,
      );
      expect(md).toContain(r.expected === "promoted" ? "**promoted**" : "**rolled back**");
      expect(svg.startsWith("<svg")).toBe(true);
      expect(svg.trim().endsWith("</svg>")).toBe(true);
      // Curves from Prometheus for both slots, and the verdict badges.
      expect((svg.match(/<path d="M/g) ?? []).length).toBeGreaterThanOrEqual(6);
      if (r.expected === "promoted") {
        expect(svg).toMatch(/✓ analysis \d+: pass/);
        expect(svg).not.toContain("✗");
      } else {
        expect(svg).toMatch(/✗ analysis \d+: fail/);
      }
    }
    // The release log the reports came from is the pipeline's own, one per runtime's stage.
    for (const runtime of runtimes) {
      const log = ReleaseLog.forStage(join(outDir, runtime, "releases"), "local");
      expect(log.readAll().filter((r) => r.event === "release.started")).toHaveLength(2);
    }
  });

  it("stops everything it started, the local cluster too", async () => {
    expect(leftovers()).toEqual([]);
    if (!clusterRanBefore) expect(await clusterRunning()).toEqual([]);
    expect(JSON.parse(readFileSync(join(outDir, "pids.json"), "utf8"))).toEqual([]);
  });

  it("is interruptible: an abort mid-release stops the slots, Prometheus and the engine; one rehearsal per directory", async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const run = rehearse({
      repo: REPO,
      runtimes: ["go"],
      profile: QUICK,
      outDir,
      signal: controller.signal,
      report: (e) => {
        if (e.type === "info") seen.push(e.message);
        // Abort once traffic flows, while the engine deploys the candidate.
        if (e.type === "update" && e.phase === "started" && e.message.includes("deploy"))
          setTimeout(() => controller.abort(), 1000);
      },
    });
    // A second rehearsal in the same directory is refused while this one runs.
    await expect(
      rehearse({ repo: REPO, runtimes: ["go"], profile: QUICK, outDir }),
    ).rejects.toThrow(/another rehearsal is running/);
    await expect(run).rejects.toBeInstanceOf(RehearsalAborted);
    expect(seen.some((l) => l.includes("slot blue: started 1.0.0"))).toBe(true);
    expect(leftovers()).toEqual([]);
    if (!clusterRanBefore) expect(await clusterRunning()).toEqual([]);
    // A fresh run replaces the interrupted one's scratch stage: the next test run starts clean.
    expect(existsSync(join(outDir, "go", "project", "Pulumi.local.yaml"))).toBe(true);
  });

  afterAll(() => {
    console.log(`rehearsal test took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (result?.ok) rmSync(outDir, { recursive: true, force: true });
    else console.log(`kept for inspection: ${outDir}`);
  });
});
