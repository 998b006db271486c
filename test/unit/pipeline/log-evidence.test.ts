import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  genesisOf,
  hashLine,
  LogBrokenError,
  ReleaseLog,
  verifyLogText,
} from "../../../src/pipeline/log";
import { RefusedError } from "../../../src/pipeline/errors";
import { approve, history, rollback } from "../../../src/pipeline/operations";
import { release } from "../../../src/pipeline/release";
import { ROOT } from "../support/harness";

/** Observation 4 of issue 12: bad lines are reported by line number, never dropped, never a crash. */

function freshLog(records = 3): ReleaseLog {
  const log = ReleaseLog.forStage(mkdtempSync(join(tmpdir(), "slipway-evidence-")), "staging");
  for (let i = 0; i < records; i++)
    log.append({ stage: "staging", releaseId: "r-1", event: "update.succeeded", reason: `u${i}` });
  return log;
}

const lines = (log: ReleaseLog) => readFileSync(log.path, "utf8").split("\n").slice(0, -1);
const rewrite = (log: ReleaseLog, ls: string[]) => writeFileSync(log.path, ls.join("\n") + "\n");

describe("release log as evidence", () => {
  it("chains every record to the one before, the first to the stage's genesis", () => {
    const log = freshLog(3);
    const [a, b, c] = lines(log).map((l) => JSON.parse(l));
    expect(a.prev).toBe(genesisOf("staging"));
    expect(b.prev).toBe(hashLine(lines(log)[0]!));
    expect(c.prev).toBe(hashLine(lines(log)[1]!));
    expect(log.verify().problems).toEqual([]);
    expect(log.readAll().map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  it.each([
    ["null", "null"],
    ["42", "42"],
    ['{"seq":"abc"}', '{"seq":"abc"}'],
    ['{"seq":1e308}', '{"seq":1e308}'],
    ["garbage", "not json at all"],
  ])("reports a %s line by its number instead of crashing or dropping it", (_name, bad) => {
    const log = freshLog(2);
    rewrite(log, [lines(log)[0]!, bad, lines(log)[1]!]);
    const reading = log.verify();
    expect(reading.problems.map((p) => p.line)).toEqual([2]);
    expect(reading.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(() => log.readAll()).toThrow(LogBrokenError);
    expect(() => log.readAll()).toThrow(/line 2: not (JSON|a release record)/);
    expect(() => log.readAll()).toThrow(/mv .*staging\.jsonl .*staging\.jsonl\.broken/);
    // A broken log is never chained onto.
    expect(() =>
      log.append({ stage: "staging", releaseId: "r-1", event: "release.completed" }),
    ).toThrow(LogBrokenError);
  });

  it("detects an edited record at the line after it", () => {
    const log = freshLog(3);
    const ls = lines(log);
    ls[1] = ls[1]!.replace('"u1"', '"u1, edited"');
    rewrite(log, ls);
    expect(log.verify().problems).toEqual([
      { line: 3, problem: expect.stringMatching(/does not chain to the record on line 2/) },
    ]);
  });

  it("detects a deleted and an inserted record", () => {
    const deleted = freshLog(3);
    const ls = lines(deleted);
    rewrite(deleted, [ls[0]!, ls[2]!]);
    expect(deleted.verify().problems.map((p) => p.line)).toEqual([2]);

    const inserted = freshLog(2);
    const [first, second] = lines(inserted);
    const forged = { ...JSON.parse(second!), seq: 2, reason: "forged" };
    rewrite(inserted, [first!, JSON.stringify(forged), second!]);
    expect(inserted.verify().problems.map((p) => p.line)).toEqual([3]);
  });

  it("refuses a log copied from another stage and records of another stage", () => {
    const staging = freshLog(1);
    const text = readFileSync(staging.path, "utf8");
    expect(verifyLogText(text, "prod").problems[0]!.problem).toMatch(
      /record of stage "staging" in the log of stage prod/,
    );
  });

  it("takes a torn last line (a crash mid-write) as no record, and keeps its bytes in the next", () => {
    const log = freshLog(3);
    appendFileSync(log.path, '{"seq": 4, "event": "upd');
    expect(log.verify()).toMatchObject({ problems: [], tornTail: { line: 4 } });
    const next = log.append({ stage: "staging", releaseId: "r-2", event: "release.started" });
    expect(next.seq).toBe(4);
    expect(next.tornTail).toBe('{"seq": 4, "event": "upd');
    expect(log.verify()).toEqual({ records: expect.any(Array), problems: [] });
    expect(log.readAll()).toHaveLength(4);
  });

  it("appends on a line of its own when the last record's newline was removed, chained to it", () => {
    const log = freshLog(2);
    writeFileSync(log.path, readFileSync(log.path, "utf8").replace(/\n$/, ""));
    expect(log.verify()).toMatchObject({ problems: [] });
    const next = log.append({ stage: "staging", releaseId: "r-2", event: "release.started" });
    expect(next.seq).toBe(3);
    expect(next.prev).toBe(hashLine(lines(log)[1]!));
    expect(lines(log)).toHaveLength(3);
    expect(log.verify().problems).toEqual([]);
    expect(log.readAll().map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  it("validates dates and fields of a record that parses", () => {
    const log = freshLog(1);
    const rec = JSON.parse(lines(log)[0]!);
    for (const bad of [
      { ...rec, at: "2026-13-45T00:00:00Z" },
      { ...rec, event: "made.up" },
      { ...rec, weights: { blue: -1, green: 101 } },
      { ...rec, prev: "sha256:66" },
    ]) {
      const reading = verifyLogText(JSON.stringify(bad) + "\n", "staging");
      expect(reading.problems).toHaveLength(1);
      expect(reading.problems[0]!.problem).toMatch(/not a release record/);
    }
  });
});

describe("commands on a broken log say which line and how to recover, and change nothing", () => {
  const setup = () => {
    const logDir = mkdtempSync(join(tmpdir(), "slipway-broken-"));
    const log = ReleaseLog.forStage(logDir, "local");
    log.append({ stage: "local", releaseId: "r-1", event: "release.started" });
    appendFileSync(log.path, "null\n");
    return {
      logDir,
      projectDir: ROOT,
      backendUrl: "file:///nonexistent-backend-never-used",
      stage: "local",
    };
  };
  const broken = /local\.jsonl does not verify: line 2: not a release record.*mv /;

  it("release and rollback refuse (exit 6) before the lease and any stack", async () => {
    const args = setup();
    const released = await release({ ...args, image: `r@sha256:${"a".repeat(64)}`, version: "1" });
    expect(released).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(released.reason).toMatch(broken);
    const rolled = await rollback(args);
    expect(rolled).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(rolled.reason).toMatch(broken);
  });

  it("approve refuses with the log's message; history returns the valid records and the problem", async () => {
    const args = setup();
    await expect(approve({ ...args, release: "r-1" })).rejects.toThrow(RefusedError);
    await expect(approve({ ...args, release: "r-1" })).rejects.toThrow(broken);
    const h = await history(args);
    expect(h.records.map((r) => r.event)).toEqual(["release.started"]);
    expect(h.problems).toEqual([
      { line: 2, problem: expect.stringMatching(/not a release record/) },
    ]);
  });
});
