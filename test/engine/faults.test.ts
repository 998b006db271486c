import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { engineLocks } from "../../src/pipeline/engineLock";
import { ReleaseLog } from "../../src/pipeline/log";
import { rollback, status } from "../../src/pipeline/operations";
import { release } from "../../src/pipeline/release";
import { REPO, scratchProject, type ScratchProject } from "./support/project";

/**
 * Issue 12: a release survives interruption and drift, on the real engine.
 * A release runs in its own process group (the CLI, as a pipeline runs it) and
 * is hit at a deterministic point: "during an update" is when the engine's lock
 * file for the stack exists (the update holds it), "during a pause" is the
 * pipeline's `wait` event. Then `--resume` or `rollback`, and the checks: exit
 * code, traffic on a known-good slot, no lease or engine lock left, no
 * successful update repeated, the log verifying and agreeing with the outputs.
 */
const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

describe("faults on the real engine", () => {
  let project: ScratchProject;
  let child: ChildProcess | undefined;
  const base = () => ({
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: project.env,
  });
  const log = () => ReleaseLog.forStage(project.logDir, "local");
  const plan = (steps: unknown[]) =>
    project.editStack("local", (c) => {
      c["slipway:canary"] = { steps, scaleDownDelaySeconds: 0, progressDeadlineSeconds: 900 };
    });

  beforeAll(() => {
    project = scratchProject();
    process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
  });
  afterAll(() => project?.cleanup());
  afterEach(async () => {
    if (child?.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    const s = await status(base()).catch(() => undefined);
    if (s?.release?.active) await rollback({ ...base(), reason: "test cleanup" });
  });

  /** The CLI in its own process group, with --json events collected. */
  function start(args: string[]) {
    const proc = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(REPO, "src", "cli", "main.ts"),
        ...args,
        "--json",
        "--no-plan-check",
      ],
      {
        cwd: project.dir,
        env: { ...process.env, ...project.env, SLIPWAY_LOG_DIR: project.logDir },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      },
    );
    child = proc;
    let out = "";
    proc.stdout!.on("data", (d) => (out += d));
    proc.stderr!.on("data", () => {});
    const exited = new Promise<number | null>((r) =>
      proc.once("exit", (code, sig) => r(code ?? (sig ? -1 : null))),
    );
    return { proc, out: () => out, exited };
  }
  const waitFor = async (what: string, predicate: () => boolean, ms = 240_000) => {
    const end = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stackLocked = () => engineLocks(project.backendUrl, "local").length > 0;
  /** The update whose message contains `text` has started and holds the engine's lock. */
  const duringUpdate = (run: ReturnType<typeof start>, text: string) =>
    waitFor(`update "${text}" holding the lock`, () => {
      const started = run
        .out()
        .split("\n")
        .some((l) => l.includes('"phase":"started"') && l.includes(text));
      return started && stackLocked();
    });

  async function assertSettled(id: string, expectStable: "blue" | "green") {
    const s = await status(base());
    expect(s.release?.active ?? false).toBe(false);
    expect(s.outputs!.stableSlot).toBe(expectStable);
    expect(s.outputs!.weights[expectStable]).toBe(100);
    expect(existsSync(join(project.logDir, "local.lock"))).toBe(false);
    expect(engineLocks(project.backendUrl, "local")).toEqual([]);
    expect(s.logProblems).toEqual([]);
    const records = log().forRelease(id);
    // No successful update repeated: each transition landed at most once (setWeight per position).
    const landed = records
      .filter((r) => r.event === "update.succeeded")
      .map((r) => `${(r.figures as any).transition}${r.step ? `@${r.step.index}` : ""}`);
    expect(new Set(landed).size).toBe(landed.length);
    return { s, records, landed };
  }

  it("SIGINT during the deploy update: the update lands or is cancelled, exit 130, the record, no lease or lock; rollback lands", async () => {
    plan([{ setWeight: 30 }, { pause: { duration: 1 } }]);
    // Before the first update the stack file says which slot is stable.
    const stableBefore: "blue" | "green" =
      (await status(base())).outputs?.stableSlot ??
      project.readStack("local")["slipway:traffic"].stable;
    const run = start([
      "release",
      "--stage",
      "local",
      "--image",
      digest("b"),
      "--version",
      "3.0.0",
    ]);
    await duringUpdate(run, "deploy");
    process.kill(-run.proc.pid!, "SIGINT");
    expect(await run.exited).toBe(130);
    expect(existsSync(join(project.logDir, "local.lock"))).toBe(false);
    expect(engineLocks(project.backendUrl, "local")).toEqual([]);
    const id = log()
      .readAll()
      .filter((r) => r.event === "release.started")
      .at(-1)!.releaseId;
    expect(log().forRelease(id).at(-1)!.event).toBe("release.interrupted");
    expect(log().forRelease(id).at(-1)!.reason).toMatch(/slipway release --stage local --resume/);
    const s = await status(base());
    if (s.release?.id === id) {
      // The deploy landed before the stop: roll it back.
      expect((await rollback(base())).outcome).toBe("rolledBack");
    }
    // Either way traffic is on the known-good slot and nothing is left held.
    await assertSettled(s.release?.id ?? id, stableBefore);
  });

  it("SIGINT during a pause stops at once (exit 130); --resume does not serve the pause again", async () => {
    plan([{ setWeight: 30 }, { pause: { duration: 1 } }, { setWeight: 60 }]);
    // Before the first update the stack file says which slot is stable.
    const stableBefore: "blue" | "green" =
      (await status(base())).outputs?.stableSlot ??
      project.readStack("local")["slipway:traffic"].stable;
    const run = start([
      "release",
      "--stage",
      "local",
      "--image",
      digest("c"),
      "--version",
      "4.0.0",
    ]);
    await waitFor(
      "the pause",
      () => run.out().includes('"type":"wait"') && run.out().includes("pause"),
    );
    // The 1 s pause may already be over: what matters is a clean stop and a resume that continues.
    process.kill(-run.proc.pid!, "SIGINT");
    const code = await run.exited;
    expect([0, 130]).toContain(code);
    const id = (await status(base())).release!.id;
    if (code === 130) {
      const pauses = () =>
        log()
          .forRelease(id)
          .filter((r) => r.event === "pause.started").length;
      const before = pauses();
      const resumed = await release({ ...base(), resume: true });
      expect(resumed.outcome).toBe("promoted");
      expect(pauses()).toBeLessThanOrEqual(before + 1);
    }
    // Promoted (at once, or by the resume): the release's slot is stable now.
    await assertSettled(id, stableBefore === "blue" ? "green" : "blue");
  });

  it("weights edited during a pause (blue 0 / green 100) are caught before the next step and rolled back", async () => {
    plan([{ setWeight: 10 }, { pause: { duration: 2 } }, { setWeight: 50 }]);
    const rendered = join(project.dir, ".slipway", "rendered", "local");
    const routeFile = () => findRoute(rendered);
    const result = await release({
      ...base(),
      image: digest("d"),
      version: "5.0.0",
      sleep: async () => {
        // Someone edits the live route while the release pauses.
        const file = routeFile();
        const text = readFileSync(file, "utf8");
        writeFileSync(
          file,
          text.replace(/weight: 90/, "weight: 0").replace(/weight: 10/, "weight: 100"),
        );
      },
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /weights drifted (during step 2: pause 2s|before step 3): expected blue (90|10) \/ green (10|90), found blue (0|100) \/ green (100|0)/,
    );
    const drifted = log()
      .forRelease(result.releaseId!)
      .find((r) => r.event === "weights.drifted")!;
    expect(drifted.figures).toMatchObject({
      when: expect.stringMatching(/during step 2|before step 3/),
    });
    const landed = log()
      .forRelease(result.releaseId!)
      .filter((r) => r.event === "update.succeeded")
      .map((r) => (r.figures as any).transition);
    expect(landed).toEqual(["deploy", "setWeight", "rollback"]);
  });
});

function findRoute(dir: string): string {
  const walk = (d: string): string | undefined => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (/\.ya?ml$/.test(f) && /kind: HTTPRoute/.test(readFileSync(p, "utf8"))) return p;
    }
    return undefined;
  };
  const found = walk(dir);
  if (!found) throw new Error(`no rendered HTTPRoute under ${dir}`);
  return found;
}
