import type { LogRecord } from "../pipeline/log";
import type { NotifyKind } from "./spec";
import { outcomeNotice } from "../domain";

/**
 * Release events, derived from release log records: the log is where every
 * decision is written first, so a notification can never tell of something
 * the log does not hold. Pure.
 */
export interface NotifyEvent {
  /** Stable across retries and resumes: at most one delivery per id and webhook. */
  id: string;
  kind: NotifyKind;
  at: string;
  stage: string;
  releaseId: string;
  service: string;
  version?: string;
  /** One line for people. */
  summary: string;
  step?: { index: number; number: number; description: string };
  weights?: { blue: number; green: number };
  verdict?: string;
  reason?: string;
}

export interface EventContext {
  service: string;
  version?: string;
}

/** The event a log record announces, if any. */
export function eventFromRecord(record: LogRecord, ctx: EventContext): NotifyEvent | undefined {
  const kind = kindOf(record);
  if (!kind) return undefined;
  const who = `${ctx.service}${ctx.version ? ` ${ctx.version}` : ""} (${record.releaseId})`;
  const step = record.step
    ? {
        index: record.step.index,
        number: record.step.index + 1,
        description: record.step.description,
      }
    : undefined;
  const weights = record.weights
    ? `blue ${record.weights.blue}% / green ${record.weights.green}%`
    : "";
  const why = record.reason ? `: ${record.reason}` : "";
  const summary = (() => {
    switch (kind) {
      case "started":
        return `${who}: release started on ${record.stage}`;
      case "stepDone":
        return `${who}: step ${step?.number} done (${step?.description}) on ${record.stage}${weights ? `, ${weights}` : ""}`;
      case "analysis":
        return `${who}: analysis at step ${step?.number ?? "?"} on ${record.stage}: ${record.verdict}${why}`;
      case "paused":
        return `${who}: paused on ${record.stage}${why}`;
      case "promoted":
        return `${who}: promoted on ${record.stage}${weights ? `, ${weights}` : ""}`;
      case "rolledBack":
        return `${who}: rolled back on ${record.stage}${why}`;
      case "failed":
        return `${who}: FAILED on ${record.stage}${why}`;
      case "drift":
        return `${who}: weights drifted on ${record.stage}: found ${weights}`;
    }
  })();
  // Once-only events are keyed by kind (a resumed release does not announce them again);
  // a step by its index; verdicts, pauses, failures and drift by the record that holds them.
  const discriminator =
    kind === "started" || kind === "promoted" || kind === "rolledBack"
      ? ""
      : kind === "stepDone"
        ? `:${step?.index}`
        : `:${record.seq}`;
  return {
    id: `${record.stage}/${record.releaseId}/${kind}${discriminator}`,
    kind,
    at: record.at,
    stage: record.stage,
    releaseId: record.releaseId,
    service: ctx.service,
    ...(ctx.version ? { version: ctx.version } : {}),
    summary,
    ...(step ? { step } : {}),
    ...(record.weights ? { weights: record.weights } : {}),
    ...(record.verdict ? { verdict: record.verdict } : {}),
    ...(record.reason ? { reason: record.reason } : {}),
  };
}

function kindOf(record: LogRecord): NotifyKind | undefined {
  const notice = outcomeNotice(record.event);
  if (notice) return notice.kind;
  switch (record.event) {
    case "release.started":
      return "started";
    case "step.completed":
      return "stepDone";
    case "analysis.passed":
    case "analysis.failed":
    case "analysis.inconclusive":
      return "analysis";
    case "weights.drifted":
      return "drift";
    default:
      return undefined;
  }
}
