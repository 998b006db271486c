import type { ReleaseRecord } from "../config/schema";
import { waitOf, type LogRecord } from "./log";
import { describeStep } from "./plan";
import { SETTLED_PHASES, type PlanStep } from "../domain";

/**
 * Where a release in progress stands for a person reading `status`: running
 * (a live process holds the stage's lease), paused (it ended waiting for someone),
 * or interrupted (no one holds it and it did not pause: killed, or stopped by a
 * signal), what it is doing now, and the exact commands that continue it. Pure.
 */
export interface ReleaseCondition {
  condition: "running" | "paused" | "interrupted" | "settled";
  /** The step in progress, from the log: a pause or an analysis. */
  doing?: string;
  /** The next step of the plan after the one in progress. */
  next?: string;
  /** What to run: continue or go back. */
  commands: string[];
}

export function releaseCondition(args: {
  stage: string;
  release: ReleaseRecord;
  /** This release's records, oldest first. */
  records: LogRecord[];
  plan: PlanStep[];
  leaseHeldByLiveProcess: boolean;
  deadEngineLocks: number;
}): ReleaseCondition {
  const { stage, release, records, plan } = args;
  if (SETTLED_PHASES.includes(release.phase)) return { condition: "settled", commands: [] };
  const lastUpdate = records.map((r) => r.event).lastIndexOf("update.succeeded");
  const since = records.slice(lastUpdate + 1);
  // The step in progress: the latest step a record names since the last update.
  let current: number | undefined;
  let doing: string | undefined;
  for (const r of since) {
    if (r.event === "pause.started") {
      const wait = waitOf(r);
      // A record written before waits were typed names its step only in its label.
      const index = wait
        ? wait.kind === "stepPause"
          ? wait.step
          : -1
        : Number(/^step (\d+):/.exec(r.reason ?? "")?.[1]) - 1;
      if (Number.isInteger(index) && index >= 0) current = index;
      doing = r.reason;
    } else if (r.event === "pause.ended") doing = undefined;
    else if (r.event === "analysis.measured" && r.step) {
      current = r.step.index;
      doing = `analysis of step ${r.step.index + 1} (${r.step.description}), measurement ${Number((r.figures as any)?.measurement ?? 0) + 1}`;
    } else if (
      (r.event === "analysis.passed" ||
        r.event === "analysis.failed" ||
        r.event === "analysis.inconclusive") &&
      r.step
    ) {
      current = r.step.index;
      doing = undefined;
    }
  }
  const nextIndex = release.phase === "canary" ? (current ?? release.position - 1) + 1 : undefined;
  const next =
    nextIndex === undefined
      ? release.phase === "promoted"
        ? `scale down ${release.previous.slot}`
        : undefined
      : plan[nextIndex]
        ? `step ${nextIndex + 1}: ${describeStep(plan[nextIndex]!)}`
        : "promote";
  const resume = `slipway release --stage ${stage} --resume`;
  const back = `slipway rollback --stage ${stage}`;
  if (args.leaseHeldByLiveProcess)
    return {
      condition: "running",
      ...(doing ? { doing } : {}),
      ...(next ? { next } : {}),
      commands: [],
    };
  // A rollback that did not land is what continues, whichever command: say so, not the next step.
  const cutShort = rollbackCutShort(records);
  if (cutShort !== undefined && (release.phase === "canary" || release.phase === "paused"))
    return {
      condition: "interrupted",
      doing: `a rollback that did not land: ${cutShort}`,
      next: `finish the rollback (${release.candidateSlot} to weight 0, one update); no step runs again`,
      commands: [resume, back],
    };
  const last = records.at(-1);
  if (last?.event === "release.paused")
    return {
      condition: "paused",
      ...(next ? { next } : {}),
      commands: [`slipway approve --stage ${stage} --release ${release.id}`, resume, back],
    };
  return {
    condition: "interrupted",
    ...(doing ? { doing: `${doing} (cut short)` } : {}),
    ...(next ? { next } : {}),
    commands: [resume, back],
  };
}

/**
 * The reason of a rollback whose update started and never landed (killed, or every attempt
 * failed), from a release's records; undefined when none is under way. Pure.
 */
export function rollbackCutShort(records: LogRecord[]): string | undefined {
  const i = records.map((r) => r.event).lastIndexOf("update.started");
  if (i < 0 || records[i]!.figures?.transition !== "rollback") return undefined;
  if (records.slice(i + 1).some((r) => r.event === "update.succeeded")) return undefined;
  return records[i]!.reason ?? "a rollback cut short";
}
