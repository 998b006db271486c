import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { userInfo, hostname } from "node:os";
import { z } from "zod";
import { APPEND_LOCK_POLL_MS, APPEND_LOCK_WAIT_MS } from "../defaults";
import { SLOTS, type Wait } from "../domain";
import { privateDir } from "../files";
import { RefusedError } from "./errors";

/**
 * The release log: one JSON line per decision, appended and fsynced before the
 * pipeline acts on it, never rewritten. It is what `history` shows and what
 * `promote` and `rollback` consult (which artifact passed, what was known-good).
 *
 * It is evidence, so it is read strictly: every line must be a record of the
 * schema below, and records are hash-chained. Each record's `prev` is the
 * SHA-256 of the previous record's line exactly as written (its canonical bytes:
 * the writer's JSON serialization); the first record chains to a genesis value
 * derived from the stage name. An edited, deleted or inserted line breaks the
 * chain at that point and is reported with its line number. The chain is
 * tamper-evident, not signed: someone who can write the file can also recompute
 * every hash after an edit, and cutting records off the end leaves a valid
 * chain. That is why promotion gates also check the source stack's own outputs.
 */
export const LOG_EVENTS = [
  "release.started",
  "artifact.verified",
  "update.started",
  "update.succeeded",
  "update.failed",
  /** An update refused before it started: the stack file's people-owned config changed mid-release. */
  "config.changed",
  "weights.verified",
  "weights.drifted",
  "serving.failed",
  "alarm.fired",
  "smoke.passed",
  "smoke.failed",
  "pause.started",
  "pause.ended",
  "approval.awaited",
  "approval.recorded",
  "analysis.measured",
  "analysis.passed",
  "analysis.failed",
  "analysis.inconclusive",
  "release.promoted",
  "release.scaledDown",
  "release.completed",
  "release.rolledBack",
  "release.failed",
  "release.paused",
  "release.refused",
  "release.resumed",
  "release.interrupted",
  "promotion.gated",
  "lock.cleared",
  "step.completed",
  "hook.called",
  "hook.passed",
  "hook.failed",
  "notification.delivered",
  "notification.failed",
] as const;

export type LogEvent = (typeof LOG_EVENTS)[number];

const HASH = /^sha256:[0-9a-f]{64}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const weightSchema = z.number().finite().min(0).max(1000);

/** One record as it must be on disk. Unknown extra fields are kept (they are covered by the chain). */
export const logRecordSchema = z
  .object({
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    at: z
      .string()
      .regex(ISO_TIME, "an ISO 8601 time")
      .refine((s) => !Number.isNaN(Date.parse(s)), "a real date and time"),
    stage: z.string().min(1).max(63),
    releaseId: z.string().min(1).max(200),
    event: z.enum(LOG_EVENTS),
    actor: z.string().max(500),
    step: z
      .object({
        index: z.number().int().min(0).max(10_000),
        description: z.string().max(1000),
      })
      .optional(),
    artifact: z
      .object({
        image: z.string().max(2000),
        digest: z.string().max(200),
        version: z.string().max(200),
        revision: z.string().max(200).optional(),
      })
      .optional(),
    weights: z.object({ blue: weightSchema, green: weightSchema }).optional(),
    verdict: z.enum(["pass", "fail", "inconclusive"]).optional(),
    figures: z.record(z.string(), z.unknown()).optional(),
    reason: z.string().max(20_000).optional(),
    /** The unterminated bytes a crash mid-write left at the end, discarded by this append. */
    tornTail: z.string().max(2000).optional(),
    prev: z.string().regex(HASH, "sha256:<64 hex>"),
  })
  .passthrough();

export interface LogRecord {
  seq: number;
  at: string;
  stage: string;
  releaseId: string;
  event: LogEvent;
  /** Who acted: the pipeline's user and host, or the approver. */
  actor: string;
  /** Index in the step plan and its description, when the record is about a step. */
  step?: { index: number; description: string };
  artifact?: { image: string; digest: string; version: string; revision?: string };
  weights?: { blue: number; green: number };
  verdict?: "pass" | "fail" | "inconclusive";
  /** The figures behind a decision: statistics, change summaries, durations. */
  figures?: Record<string, unknown>;
  reason?: string;
  tornTail?: string;
  /** SHA-256 of the previous record's line (or the stage's genesis value). */
  prev: string;
}

const stepIndex = z.number().int().min(0);
const waitSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("stepPause"), step: stepIndex, seconds: z.number() }),
  z.object({ kind: z.literal("scaleDownDelay"), slot: z.enum(SLOTS), seconds: z.number() }),
]);
/**
 * The typed wait of a `pause.started` / `pause.ended` record (`figures.pause`); undefined for
 * a record written before waits were typed, which only its `reason` (the label) names.
 */
export function waitOf(record: LogRecord): Wait | undefined {
  const parsed = waitSchema.safeParse(record.figures?.pause);
  return parsed.success ? parsed.data : undefined;
}

export type NewLogRecord = Omit<LogRecord, "seq" | "at" | "actor" | "prev" | "tornTail"> & {
  actor?: string;
  at?: string;
};

/** A line that is not a valid, chained record. */
export interface LogProblem {
  line: number;
  problem: string;
  /** The object holding the line, for stores that keep one record per object (S3). */
  where?: string;
}

export interface LogReading {
  /** The valid records, oldest first. */
  records: LogRecord[];
  /** Every line that is not a valid chained record; empty when the log verifies. */
  problems: LogProblem[];
  /** An unterminated last line (a crash mid-write): not a record, not a problem; the next append discards it. */
  tornTail?: { line: number; text: string };
}

export const defaultActor = (): string =>
  process.env.SLIPWAY_ACTOR ?? `${safeUser()}@${hostname()}`;

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

export const hashLine = (line: string): string =>
  `sha256:${createHash("sha256").update(line, "utf8").digest("hex")}`;

/** What the first record of a stage's log chains to: a log copied from another stage does not verify. */
export const genesisOf = (stage: string): string => hashLine(`slipway release log v1: ${stage}`);

/** The log does not verify; nothing was changed. The message names the lines and how to recover. */
export class LogBrokenError extends RefusedError {
  override name = "LogBrokenError";
  constructor(
    readonly path: string,
    readonly stage: string,
    readonly problems: LogProblem[],
  ) {
    super(brokenLogMessage(path, stage, problems));
  }
}

export function brokenLogMessage(path: string, stage: string, problems: LogProblem[]): string {
  const shown = problems
    .slice(0, 5)
    .map((p) => `${p.where ?? `line ${p.line}`}: ${p.problem}`)
    .join("; ");
  const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : "";
  return (
    `release log ${path} does not verify: ${shown}${more}. Nothing was changed. ` +
    `The log is evidence and slipway never rewrites it: keep it for review ` +
    `(mv ${path} ${path}.broken), then rerun to start a new log; ` +
    `where stage ${stage} stands is in its stack (slipway status --stage ${stage}), ` +
    `and a new log holds no completed release to promote until one completes.`
  );
}

/** Reads and verifies the text of a stage's log. Pure. */
export function verifyLogText(text: string, stage: string): LogReading {
  const records: LogRecord[] = [];
  const problems: LogProblem[] = [];
  let tornTail: LogReading["tornTail"];
  const lines = text === "" ? [] : text.split("\n");
  const terminated = text.endsWith("\n");
  let prevHash = genesisOf(stage);
  let prevLine = 0;
  let prevSeq = 0;
  lines.forEach((line, i) => {
    const n = i + 1;
    const last = i === lines.length - 1;
    if (last && terminated) return; // the empty string after the final newline
    if (line.trim() === "") {
      problems.push({ line: n, problem: "empty line" });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (last && !terminated) {
        tornTail = { line: n, text: line };
        return;
      }
      problems.push({ line: n, problem: `not JSON: ${preview(line)}` });
      return;
    }
    const parsed = logRecordSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.length > 0 ? issue.path.join(".") : "the line";
      problems.push({
        line: n,
        problem: `not a release record (${where}: ${issue.message}): ${preview(line)}`,
      });
      return;
    }
    const record = parsed.data as LogRecord;
    if (record.stage !== stage) {
      problems.push({
        line: n,
        problem: `record of stage ${JSON.stringify(record.stage)} in the log of stage ${stage}`,
      });
      return;
    }
    if (record.prev !== prevHash) {
      problems.push({
        line: n,
        problem:
          prevLine === 0
            ? "does not chain to the start of the log: records before it were deleted, or it was copied from another log"
            : `does not chain to the record on line ${prevLine} (seq ${prevSeq}): a record was edited, deleted or inserted there`,
      });
    } else if (record.seq !== prevSeq + 1) {
      problems.push({
        line: n,
        problem: `seq ${record.seq} after seq ${prevSeq}; expected ${prevSeq + 1}`,
      });
    }
    records.push(record);
    prevHash = hashLine(line);
    prevLine = n;
    prevSeq = record.seq;
  });
  return { records, problems, ...(tornTail ? { tornTail } : {}) };
}

function preview(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
}

export class ReleaseLog {
  private readonly listeners: ((record: LogRecord) => void)[] = [];

  constructor(
    readonly path: string,
    readonly stage: string,
  ) {
    privateDir(dirname(path));
  }

  /** Called with every record this log appends, after it is on disk (notifications hear releases here). */
  onAppend(listener: (record: LogRecord) => void): void {
    this.listeners.push(listener);
  }

  static forStage(dir: string, stage: string): ReleaseLog {
    return new ReleaseLog(join(dir, `${stage}.jsonl`), stage);
  }

  /** Every line checked: the valid records and the problems, never a throw for bad content. */
  verify(): LogReading {
    if (!existsSync(this.path)) return { records: [], problems: [] };
    return verifyLogText(readFileSync(this.path, "utf8"), this.stage);
  }

  /** Throws LogBrokenError (naming the lines) unless the whole log verifies. */
  assertVerified(): LogReading {
    const reading = this.verify();
    if (reading.problems.length > 0)
      throw new LogBrokenError(this.path, this.stage, reading.problems);
    return reading;
  }

  /** Every record, oldest first; throws LogBrokenError when the log does not verify. */
  readAll(): LogRecord[] {
    return this.assertVerified().records;
  }

  forRelease(releaseId: string): LogRecord[] {
    return this.readAll().filter((r) => r.releaseId === releaseId);
  }

  /**
   * Appends one record chained to the last one, under a short append lock (the
   * pipeline, `approve` and `promote` may write the same log). An append to a log
   * that does not verify is refused: chaining onto a broken log would bless it.
   */
  append(record: NewLogRecord): LogRecord {
    const full = this.write(record);
    for (const listener of this.listeners) {
      try {
        listener(full);
      } catch {
        // A listener's problem is not the log's.
      }
    }
    return full;
  }

  private write(record: NewLogRecord): LogRecord {
    return withAppendLock(`${this.path}.append-lock`, () => {
      const fd = openSync(this.path, "a+", 0o600);
      try {
        const text = readFd(fd);
        const reading = verifyLogText(text, this.stage);
        if (reading.problems.length > 0)
          throw new LogBrokenError(this.path, this.stage, reading.problems);
        const tail = reading.records.at(-1);
        const { record: full, line } = chainRecord(
          this.stage,
          record,
          tail ? { seq: tail.seq, line: lastRecordLine(text, reading) } : undefined,
          reading.tornTail?.text,
        );
        if (reading.tornTail) {
          // A crash mid-write left bytes that never became a record; they are kept in this record instead.
          ftruncateSync(
            fd,
            Buffer.byteLength(text, "utf8") - Buffer.byteLength(reading.tornTail.text, "utf8"),
          );
        }
        // A last record whose newline was removed (by hand, or a copy that dropped it) still
        // verifies; the new record must start on a line of its own, not join it.
        const unterminated = text !== "" && !text.endsWith("\n") && !reading.tornTail;
        writeSync(fd, (unterminated ? "\n" : "") + line + "\n");
        fsyncSync(fd);
        return full;
      } finally {
        closeSync(fd);
      }
    });
  }
}

/**
 * The record that follows `tail` (the last record's seq and its line exactly as written; undefined
 * for the first record) and the line to write for it. Pure: every store chains records this way.
 */
export function chainRecord(
  stage: string,
  record: NewLogRecord,
  tail: { seq: number; line: string } | undefined,
  tornTail?: string,
): { record: LogRecord; line: string } {
  const { actor, at, ...rest } = record;
  const full: LogRecord = {
    seq: (tail?.seq ?? 0) + 1,
    at: at ?? new Date().toISOString(),
    actor: actor ?? defaultActor(),
    ...rest,
    ...(tornTail !== undefined ? { tornTail: tornTail.slice(0, 2000) } : {}),
    prev: tail === undefined ? genesisOf(stage) : hashLine(tail.line),
  };
  const line = JSON.stringify(full);
  const check = logRecordSchema.safeParse(JSON.parse(line));
  if (!check.success)
    throw new Error(
      `release log: refusing to write an invalid record: ${check.error.issues[0]!.path.join(".")}: ${check.error.issues[0]!.message}`,
    );
  return { record: full, line };
}

function readFd(fd: number): string {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let read = 0;
  while (read < size) {
    const n = readSync(fd, buf, read, size - read, read);
    if (n === 0) break;
    read += n;
  }
  return buf.subarray(0, read).toString("utf8");
}

function lastRecordLine(text: string, reading: LogReading): string {
  const lines = text.split("\n");
  // The last record is the last line (before the final newline, if it has one), or the
  // one before a torn tail.
  const index = reading.tornTail
    ? reading.tornTail.line - 2
    : text.endsWith("\n")
      ? lines.length - 2
      : lines.length - 1;
  return lines[index]!;
}

/**
 * Runs `body` while holding a short lock file at `path` (created exclusively, holding this pid),
 * waiting up to 10 s for another holder; a lock left by a process that is gone is removed.
 */
export function withAppendLock<T>(path: string, body: () => T): T {
  const started = Date.now();
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(safeRead(path));
      if (Number.isInteger(holder) && holder > 0 && !processAlive(holder)) {
        try {
          unlinkSync(path);
        } catch {
          // Another writer removed it first.
        }
        continue;
      }
      if (Date.now() - started > APPEND_LOCK_WAIT_MS)
        throw new Error(
          `release log append lock ${path} held by pid ${holder || "unknown"} for over ${APPEND_LOCK_WAIT_MS / 1000}s; if no slipway runs, remove it`,
          { cause: err },
        );
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, APPEND_LOCK_POLL_MS);
    }
  }
  try {
    return body();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // Gone already.
    }
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
