import { describe, expect, it } from "vitest";
import {
  ExitCode,
  OUTCOMES,
  outcomeClosedBy,
  outcomeNotice,
  pipelineExitCode,
  type PipelineOutcome,
} from "../../../src/domain";
import { rollbackExitCode } from "../../../src/cli/exitCodes";
import { eventFromRecord } from "../../../src/notify";
import { LOG_EVENTS, type LogRecord } from "../../../src/pipeline/log";
import { releaseFacts } from "../../../src/rehearsal/report";

const ALL = Object.keys(OUTCOMES) as PipelineOutcome[];

let seq = 0;
const rec = (event: string, extra: Partial<LogRecord> = {}): LogRecord =>
  ({
    seq: ++seq,
    at: "2026-12-01T10:00:00.000Z",
    stage: "local",
    releaseId: "r-20261201-100000-ab12",
    actor: "ci@host",
    event,
    ...extra,
  }) as LogRecord;

describe("the one table of outcomes (src/domain/outcomes.ts)", () => {
  it("gives every pipeline outcome the exit code the README's table lists", () => {
    expect(Object.fromEntries(ALL.map((o) => [o, pipelineExitCode(o)]))).toEqual({
      promoted: 0,
      rolledBack: 3,
      paused: 4,
      failed: 1,
      refused: 6,
      error: 1,
      interrupted: 130,
      leaseLost: 7,
    });
    // `slipway rollback` asked for a rollback: one that landed is a success.
    expect(rollbackExitCode("rolledBack")).toBe(ExitCode.ok);
    expect(rollbackExitCode("refused")).toBe(ExitCode.refused);
    expect(rollbackExitCode("leaseLost")).toBe(ExitCode.leaseLost);
  });

  it("closes each release the machine ends with its own log event, and `error` with none", () => {
    const closing = ALL.map((o) => [o, (OUTCOMES[o] as { closingEvent?: string }).closingEvent]);
    expect(Object.fromEntries(closing)).toEqual({
      promoted: "release.completed",
      rolledBack: "release.rolledBack",
      paused: "release.paused",
      failed: "release.failed",
      refused: "release.refused",
      error: undefined,
      interrupted: "release.interrupted",
      // A runner that lost the stage's lease appends nothing, not even a closing record.
      leaseLost: undefined,
    });
    for (const [outcome, event] of closing) {
      if (event === undefined) continue;
      expect(LOG_EVENTS).toContain(event);
      expect(outcomeClosedBy(event!)).toBe(outcome);
    }
    expect(outcomeClosedBy("release.promoted")).toBeUndefined();
  });

  it("announces an outcome by the notification the table names, from the record it names", () => {
    const ctx = { service: "checkout", version: "1.1.0" };
    for (const outcome of ALL) {
      const notify = (OUTCOMES[outcome] as { notify?: { kind: string; on: string } }).notify;
      if (!notify) continue;
      expect(outcomeNotice(notify.on)).toEqual(notify);
      expect(eventFromRecord(rec(notify.on), ctx)?.kind).toBe(notify.kind);
    }
    // A promotion is announced when traffic flips, not again when the release closes; a refusal
    // and an interruption are not announced.
    for (const event of ["release.completed", "release.refused", "release.interrupted"])
      expect(eventFromRecord(rec(event), ctx)).toBeUndefined();
  });

  it("names the outcome in a rehearsal's report with the table's word", () => {
    const words = [
      "release.completed",
      "release.rolledBack",
      "release.paused",
      "release.failed",
    ].map((end) => releaseFacts([rec("release.started"), rec(end)]).outcome);
    expect(words).toEqual(["promoted", "rolled back", "paused", "failed"]);
    expect(releaseFacts([rec("release.started")]).outcome).toBe("unfinished");
  });
});
