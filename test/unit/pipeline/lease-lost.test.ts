import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ExitCode } from "../../../src/domain";
import { ReleaseLog } from "../../../src/pipeline/log";
import { release } from "../../../src/pipeline/release";
import { FileStore } from "../../../src/store/fileStore";
import { LEASE_TTL_ENV } from "../../../src/store/ttl";
import { localProject, RenderedStack } from "../support/localStack";

/**
 * Issue 22, point 4: a release whose lease another runner took over lands no further update,
 * appends nothing once it knows, and ends `leaseLost` (exit 7) saying who holds the stage now.
 * The file store, an engine stand-in (the program rendered with mocks) and a fake clock.
 */
const STAGE = "local";
const image = `registry.local/checkout@sha256:${"c".repeat(64)}`;

/** One pause between two steps: the takeover happens in it. */
const project = () =>
  localProject([{ setWeight: 10 }, { pause: { duration: "5s" } }, { setWeight: 50 }]);

/** What a runner that took the stage over (after this one's lease expired) writes into the lease. */
function takeOver(logDir: string) {
  const path = join(logDir, `${STAGE}.lock`);
  const mine = JSON.parse(readFileSync(path, "utf8")) as { generation: number };
  writeFileSync(
    path,
    JSON.stringify({
      pid: 4242,
      host: "runner-b-host",
      runnerId: "runner-b",
      what: "release --resume",
      since: new Date().toISOString(),
      generation: mine.generation + 1,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    }),
  );
}

async function releaseTakenOverInItsPause(waitInPauseMs: number) {
  const { dir, logDir } = project();
  const stack = await RenderedStack.deployed(dir, STAGE);
  let clock = Date.now();
  let recordsAtTakeover: number | undefined;
  const log = ReleaseLog.forStage(logDir, STAGE);
  const report = await release({
    stage: STAGE,
    projectDir: dir,
    backendUrl: `file://${join(dir, "state")}`,
    logDir,
    image,
    version: "2.0.0",
    openStack: async () => stack,
    weightsReadBack: stack.readBack,
    now: () => clock,
    sleep: async (ms) => {
      if (recordsAtTakeover === undefined) {
        takeOver(logDir);
        recordsAtTakeover = log.readAll().length;
        // Real time: the heartbeat runs on it.
        await new Promise((r) => setTimeout(r, waitInPauseMs));
      }
      clock += ms;
    },
  });
  const records = log.readAll();
  return { report, stack, records, after: records.slice(recordsAtTakeover), logDir };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("a release whose lease was taken over", () => {
  it("is stopped by the fence before its next update: exit 7, no update, no closing record", async () => {
    const run = await releaseTakenOverInItsPause(0);
    expect(run.report.outcome, run.report.reason).toBe("leaseLost");
    expect(run.report.exitCode).toBe(ExitCode.leaseLost);
    expect(run.report.reason).toMatch(
      /lost the lease of stage local \(generation 1, .*\): now held by release --resume by pid 4242 on runner-b-host \(runner runner-b\), generation 2/,
    );
    expect(run.report.reason).toMatch(/slipway release --stage local --resume/);
    // The deploy and the 10% step landed before the takeover; the 50% step never ran.
    expect(run.stack.updates).toHaveLength(2);
    expect(run.stack.updates[1]).toMatch(/10/);
    // Until the fence it could not know (the heartbeat had not beaten yet): the pause ended and
    // the look before the next step was recorded. From the fence on, nothing: no update record,
    // no closing record (not even release.interrupted).
    const after = run.after.map((r) => r.event);
    expect(after[0]).toBe("pause.ended");
    expect(after.filter((e) => /^(update|release)\./.test(e))).toEqual([]);
    expect(run.records.at(-1)!.event).not.toMatch(/^release\./);
    // The lease is the other runner's still: this one gave up nothing that was not its own.
    const lease = await new FileStore(run.logDir).readLease(STAGE);
    expect(lease?.holder?.runnerId).toBe("runner-b");
  });

  it("is stopped by its heartbeat in the pause, appending nothing more", async () => {
    vi.stubEnv(LEASE_TTL_ENV, "5"); // heartbeat every 1.25 s
    const started = Date.now();
    const run = await releaseTakenOverInItsPause(5_000);
    expect(run.report.outcome, run.report.reason).toBe("leaseLost");
    expect(run.report.exitCode).toBe(7);
    expect(run.stack.updates).toHaveLength(2);
    // The heartbeat's renewal found the takeover and ended the wait early: no pause.ended either.
    expect(run.after).toEqual([]);
    expect(Date.now() - started).toBeLessThan(4_900);
  });
});
