import { PutObjectCommand } from "@aws-sdk/client-s3";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogRecord } from "../../src/pipeline/log";
import { verifiedRecords } from "../../src/store/store";
import { storeFromUrl } from "../../src/store/url";
import { startS3, type S3Server } from "../support/s3Server";
import { REPO, scratchProject, type ScratchProject } from "./support/project";
import { spawnGroup, type GroupRun } from "./support/spawn";

/**
 * Issue 22: two CI runners, one stage. Each runner is a checkout of its own (a scratch copy of
 * the project) running the real CLI in processes of its own, with a runner id of its own; both
 * use one Pulumi backend on a real S3 server (moto, loopback) and, derived from it, one release
 * store in the same bucket. The stage renders its manifests into one directory both runners
 * write: the "cluster" they share. Nothing here is in-process: what one runner knows, the other
 * learns only from the bucket.
 */
const CLI = join(REPO, "src", "cli", "main.ts");
const BUCKET = "slipway-ci";
/**
 * Long enough that a status and a refused resume fit inside a killed runner's lease on a busy
 * machine; the tests wait for the expiry the bucket shows, not for a fixed time.
 */
const TTL_SECONDS = 40;
/** The plan's updates, each landed exactly once, in order. */
const EACH_UPDATE_ONCE = ["deploy", "setWeight@0", "setWeight@2", "promote", "scaleDown"];
const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

type Run = GroupRun;

describe("two runners, one stage, one S3 bucket", () => {
  let s3: S3Server;
  let a: ScratchProject;
  let b: ScratchProject;
  let backendUrl: string;
  let shared: string;
  const running: Run[] = [];

  /** `pause` is the one pause of the plan, between a 20% and a 100% step. */
  const plan = (project: ScratchProject, pause: string) =>
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [{ setWeight: 20 }, { pause: { duration: pause } }, { setWeight: 100 }],
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 7200,
      };
    });

  /** One `slipway` command of runner `project` (as `id`), in a process group of its own. */
  function cli(
    project: ScratchProject,
    id: string,
    args: string[],
    extraEnv: Record<string, string> = {},
  ): Run {
    const run = spawnGroup(CLI, [...args, "--project-dir", project.dir], {
      cwd: project.dir,
      env: {
        ...process.env,
        ...project.env,
        ...s3.env,
        PULUMI_BACKEND_URL: backendUrl,
        SLIPWAY_RUNNER_ID: id,
        SLIPWAY_LEASE_TTL_SECONDS: String(TTL_SECONDS),
        ...extraEnv,
      },
    });
    running.push(run);
    return run;
  }
  const A = (...args: string[]) => cli(a, "runner-a", args);
  const B = (...args: string[]) => cli(b, "runner-b", args);
  const done = async (run: Run) => ({ code: await run.exited, out: run.out() });

  /** The stage's release log as the bucket holds it, verified (throws when it does not verify). */
  const records = async (): Promise<LogRecord[]> => {
    const store = storeFromUrl(undefined, { backendUrl, projectDir: a.dir, env: s3.env });
    try {
      return await verifiedRecords(store.log("local"));
    } finally {
      store.close();
    }
  };
  /** Polls `check` until it holds; fails at once, with its output, if `run` ends first. */
  const until = async (what: string, run: Run, check: () => Promise<boolean>) => {
    const end = Date.now() + 300_000;
    let last: unknown;
    while (Date.now() < end) {
      if (run.proc.exitCode !== null)
        throw new Error(`${what}: the runner exited ${run.proc.exitCode} first:\n${run.out()}`);
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what} (${String(last)}):\n${run.out()}`);
  };
  /** Waits until the stage's lease in the bucket is past its expiry (or given up). */
  const leaseExpired = async () => {
    const store = storeFromUrl(undefined, { backendUrl, projectDir: a.dir, env: s3.env });
    try {
      const end = Date.now() + (TTL_SECONDS + 30) * 1000;
      while (Date.now() < end) {
        if (!(await store.readLease("local"))?.live) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error("the stage's lease never expired");
    } finally {
      store.close();
    }
  };
  /** Runner A's release of `version`, once it is in its (long) pause. */
  const runnerAInItsPause = async (image: string, version: string) => {
    plan(a, "600s");
    const ra = A(
      "release",
      "--stage",
      "local",
      "--image",
      image,
      "--version",
      version,
      "--no-plan-check",
    );
    let releaseId = "";
    await until("runner A's pause", ra, async () => {
      releaseId = (await releaseOf(version))?.releaseId ?? "";
      return (await records()).some(
        (r) => r.event === "pause.started" && r.releaseId === releaseId,
      );
    });
    return { ra, releaseId };
  };
  /** The `release.started` record of the release of `version`, once there is one. */
  const releaseOf = async (version: string) =>
    (await records()).find((r) => r.event === "release.started" && r.artifact?.version === version);
  /** The planned updates that landed for one release, in order. */
  const landed = (all: LogRecord[], releaseId: string) =>
    all
      .filter((r) => r.releaseId === releaseId && r.event === "update.succeeded")
      .filter((r) => r.figures?.transition !== "restoreRoute")
      .map((r) => `${String(r.figures?.transition)}${r.step ? `@${r.step.index}` : ""}`);

  /**
   * The engine's language host and program outlive a SIGKILL of their runner's group (they run
   * in a group of their own); killed here, as a CI job's end would take them.
   */
  function strays(project: ScratchProject) {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        if (realpathSync(`/proc/${entry}/cwd`).startsWith(realpathSync(project.root)))
          process.kill(Number(entry), "SIGKILL");
      } catch {
        // Gone meanwhile, or not ours.
      }
    }
  }

  beforeAll(async () => {
    s3 = await startS3(BUCKET);
    // This process reads the bucket too (records()): the store's client takes the AWS chain.
    Object.assign(process.env, s3.env);
    backendUrl = s3.url("ci");
    a = scratchProject("runner-a");
    b = scratchProject("runner-b");
    shared = join(a.root, "cluster");
    mkdirSync(shared);
    for (const project of [a, b])
      project.editStack("local", (c) => {
        const { kubeconfig: _k, context: _c, ...kube } = c["slipway:kubernetes"] ?? {};
        c["slipway:kubernetes"] = { ...kube, renderYamlToDirectory: join(shared, "local") };
      });
    plan(a, "30s");
    plan(b, "30s");
  }, 120_000);

  afterAll(async () => {
    for (const run of running)
      if (run.proc.exitCode === null && run.proc.signalCode === null)
        try {
          process.kill(-run.proc.pid!, "SIGKILL");
        } catch {
          // Already gone.
        }
    for (const project of [a, b]) if (project) strays(project);
    a?.cleanup();
    b?.cleanup();
    await s3?.stop();
  });

  it("both start a release at once: exactly one proceeds, the other is refused naming the holder", async () => {
    const [ra, rb] = [
      A(
        "release",
        "--stage",
        "local",
        "--image",
        digest("7"),
        "--version",
        "1.1.0",
        "--no-plan-check",
      ),
      B(
        "release",
        "--stage",
        "local",
        "--image",
        digest("2"),
        "--version",
        "1.2.0",
        "--no-plan-check",
      ),
    ];
    const [da, db] = await Promise.all([done(ra), done(rb)]);
    const codes = [da.code, db.code].sort();
    expect(codes, `${da.out}\n---\n${db.out}`).toEqual([0, 6]);
    const [winner, loser] = da.code === 0 ? ["runner-a", db] : ["runner-b", da];
    expect(loser.out).toMatch(
      new RegExp(
        `stage local is busy: release 1\\.[12]\\.0 by pid \\d+ on .* \\(runner ${winner}\\) since .*; its lease expires at .* \\(in \\d+ s\\)`,
      ),
    );
    // The loser changed nothing: one release in the log, the winner's, promoted.
    const all = await records();
    const started = all.filter((r) => r.event === "release.started");
    expect(started).toHaveLength(1);
    expect(all.filter((r) => r.event === "release.completed")).toHaveLength(1);
    // The other runner reads the same log from its own checkout.
    const history = await done(
      (winner === "runner-a" ? B : A)("history", "--stage", "local", "--json"),
    );
    expect(history.code, history.out).toBe(0);
    const seen = history.out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as LogRecord);
    expect(seen.map((r) => r.seq)).toEqual(all.map((r) => r.seq));
  });

  it("a runner killed in a pause: the other waits out its lease, then resumes; each update lands once, one chain", async () => {
    const { ra, releaseId } = await runnerAInItsPause(digest("3"), "1.3.0");
    process.kill(-ra.proc.pid!, "SIGKILL");
    expect(await ra.exited).toBe(-1);
    strays(a);

    // B, before A's lease expires: status names the release and its holder; a resume is refused.
    const status = await done(B("status", "--stage", "local", "--json"));
    expect(status.code, status.out).toBe(0);
    const s = JSON.parse(status.out.split("\n").find((l) => l.startsWith("{"))!);
    expect(s.release).toMatchObject({ id: releaseId, active: true });
    expect(s.lease).toMatchObject({ live: true, holder: { runnerId: "runner-a" } });
    expect(s.condition.condition).toBe("running");
    const early = await done(B("release", "--stage", "local", "--resume", "--no-plan-check"));
    expect(early.code, early.out).toBe(6);
    expect(early.out).toMatch(
      /stage local is busy: release 1\.3\.0 .*\(runner runner-a\).*expires at .* \(in \d+ s\)/,
    );

    // After it expires: B resumes from where the stack's outputs say the release stands. B's
    // checkout holds the plan with a shorter pause: the plan is read again on resume.
    plan(b, "2s");
    await leaseExpired();
    const resumed = await done(B("release", "--stage", "local", "--resume", "--no-plan-check"));
    expect(resumed.code, resumed.out).toBe(0);
    const all = await records();
    expect(landed(all, releaseId)).toEqual(EACH_UPDATE_ONCE);
    expect(all.filter((r) => r.releaseId === releaseId).map((r) => r.event)).toContain(
      "release.completed",
    );
  });

  it("a runner stopped past its TTL: the other takes over; the stopped one, continued, lands nothing and exits 7", async () => {
    plan(b, "2s");
    const { ra, releaseId } = await runnerAInItsPause(digest("4"), "1.4.0");
    process.kill(-ra.proc.pid!, "SIGSTOP");
    try {
      await leaseExpired();
      const resumed = await done(B("release", "--stage", "local", "--resume", "--no-plan-check"));
      expect(resumed.code, resumed.out).toBe(0);
    } finally {
      process.kill(-ra.proc.pid!, "SIGCONT");
    }
    const before = await records();
    const stopped = await done(ra);
    expect(stopped.code, stopped.out).toBe(7);
    // Found by its heartbeat (the takeover: "now held by … runner-b") or first by its own clock
    // (its lease is past its expiry): which comes first on waking is timing; both stop it.
    expect(stopped.out).toMatch(/== LEASELOST .*(now held by .*runner-b|lease expired at)/);
    // Nothing of A's after the takeover: the log is as B left it, and it verifies.
    const after = await records();
    expect(after.map((r) => r.seq)).toEqual(before.map((r) => r.seq));
    expect(landed(after, releaseId)).toEqual(EACH_UPDATE_ONCE);
  });

  it("a runner killed during an update leaves the engine's lock in the bucket: shown by status, cleared by the next holder", async () => {
    plan(a, "2s");
    plan(b, "2s");
    const marker = join(a.root, "failpoint-during-setWeight");
    const ra = cli(
      a,
      "runner-a",
      [
        "release",
        "--stage",
        "local",
        "--image",
        digest("5"),
        "--version",
        "1.5.0",
        "--no-plan-check",
      ],
      { SLIPWAY_FAILPOINT: "during:setWeight", SLIPWAY_FAILPOINT_FILE: marker },
    );
    await until("runner A inside its first setWeight update", ra, async () => existsSync(marker));
    process.kill(-ra.proc.pid!, "SIGKILL");
    expect(await ra.exited).toBe(-1);
    strays(a);
    const releaseId = (await records())
      .filter((r) => r.event === "release.started")
      .at(-1)!.releaseId;

    const status = await done(B("status", "--stage", "local", "--json"));
    const s = JSON.parse(status.out.split("\n").find((l) => l.startsWith("{"))!);
    expect(s.engineLocks.length, status.out).toBeGreaterThan(0);
    expect(s.engineLocks[0].file).toMatch(
      new RegExp(`^s3://${BUCKET}/ci/\\.pulumi/locks/.*/local/[^/]+\\.json$`),
    );
    expect(s.engineLocks[0].dead).toBe(true);

    await leaseExpired();
    const resumed = await done(B("release", "--stage", "local", "--resume", "--no-plan-check"));
    expect(resumed.code, resumed.out).toBe(0);
    const all = await records();
    const own = all.filter((r) => r.releaseId === releaseId);
    expect(own.map((r) => r.event)).toContain("lock.cleared");
    expect(landed(all, releaseId)).toEqual(EACH_UPDATE_ONCE);
    const after = await done(B("status", "--stage", "local", "--json"));
    expect(JSON.parse(after.out.split("\n").find((l) => l.startsWith("{"))!).engineLocks).toEqual(
      [],
    );
  });

  it("both checkouts hold the tester token the stage serves, though only one generated it", () => {
    const token = (project: ScratchProject) =>
      execFileSync("pulumi", ["config", "get", "slipway:testerToken", "--stack", "local"], {
        cwd: project.dir,
        env: { ...process.env, ...project.env, ...s3.env, PULUMI_BACKEND_URL: backendUrl },
        encoding: "utf8",
      }).trim();
    const [ta, tb] = [token(a), token(b)];
    expect(ta.length).toBeGreaterThanOrEqual(24);
    expect(tb).toBe(ta);
  });

  it("promote on B reads A's evidence from the bucket; a record forged into the bucket is detected", async () => {
    for (const project of [a, b])
      project.addStage("staging", "local", (c) => {
        c["slipway:promotion"] = { from: "local", soakSeconds: 3600, requireApproval: false };
      });
    const gated = await done(B("promote", "--from", "local", "--to", "staging"));
    expect(gated.code, gated.out).toBe(6);
    // The gate read when the release promoted, from the records the two runners wrote.
    expect(gated.out).toMatch(/1\.5\.0 has soaked \d+s in local; staging requires 3600s/);

    const all = await records();
    const last = all.at(-1)!;
    const forged = {
      ...last,
      seq: last.seq + 1,
      event: "release.completed",
      prev: "sha256:forged",
    };
    await s3.admin.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        // The store's keys: <prefix>/.slipway/<project>/<stage>/log/<seq>.json (Pulumi.yaml's name).
        Key: `ci/.slipway/slipway/local/log/${String(last.seq + 1).padStart(12, "0")}.json`,
        Body: JSON.stringify(forged),
      }),
    );
    const refused = await done(A("promote", "--from", "local", "--to", "staging"));
    expect(refused.code, refused.out).toBe(6);
    expect(refused.out).toMatch(
      new RegExp(
        `release log s3://${BUCKET}/ci/\\.slipway/.*/local/log/ does not verify: .*${String(last.seq + 1).padStart(12, "0")}\\.json`,
      ),
    );
    const history = await done(B("history", "--stage", "local"));
    expect(history.code).toBe(6);
  });
});
