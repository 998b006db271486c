import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { userInfo, hostname } from "node:os";

/**
 * The release log: one JSON line per decision, appended and fsynced before the
 * pipeline acts on it, never rewritten. It is what `history` shows and what
 * `promote` and `rollback` consult (which artifact passed, what was known-good).
 */
export type LogEvent =
  | "release.started"
  | "artifact.verified"
  | "update.started"
  | "update.succeeded"
  | "update.failed"
  | "weights.verified"
  | "weights.drifted"
  | "smoke.passed"
  | "smoke.failed"
  | "pause.started"
  | "pause.ended"
  | "approval.awaited"
  | "approval.recorded"
  | "analysis.measured"
  | "analysis.passed"
  | "analysis.failed"
  | "analysis.inconclusive"
  | "release.promoted"
  | "release.scaledDown"
  | "release.completed"
  | "release.rolledBack"
  | "release.failed"
  | "release.paused"
  | "release.resumed"
  | "promotion.gated";

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

export class ReleaseLog {
  private seq: number;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    const existing = this.readAll();
    this.seq = existing.length > 0 ? existing[existing.length - 1]!.seq : 0;
  }

  static forStage(dir: string, stage: string): ReleaseLog {
    return new ReleaseLog(join(dir, `${stage}.jsonl`));
  }

  append(
    record: Omit<LogRecord, "seq" | "at" | "actor"> & { actor?: string; at?: string },
  ): LogRecord {
    const full: LogRecord = {
      seq: ++this.seq,
      at: record.at ?? new Date().toISOString(),
      actor: record.actor ?? defaultActor(),
      ...record,
    } as LogRecord;
    // After a crash mid-write the file may end in a torn line: start on a fresh one.
    const fd = openSync(this.path, "a+");
    try {
      const size = fstatSync(fd).size;
      const last = Buffer.alloc(1);
      const tornTail = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      writeSync(fd, (tornTail ? "\n" : "") + JSON.stringify(full) + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return full;
  }

  /** Every record, oldest first. A torn last line (crash mid-write) is skipped, never fatal. */
  readAll(): LogRecord[] {
    if (!existsSync(this.path)) return [];
    const records: LogRecord[] = [];
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line) as LogRecord);
      } catch {
        // A partial line can only be the last one written before a crash.
      }
    }
    return records;
  }

  forRelease(releaseId: string): LogRecord[] {
    return this.readAll().filter((r) => r.releaseId === releaseId);
  }
}
