import { SETTLED_PHASES, type ReleaseRecord } from "../config/schema";
import type { LogRecord } from "./log";
import { describeStep, type PlanStep } from "./plan";

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
      const index = Number(/^step (\d+):/.exec(r.reason ?? "")?.[1]) - 1;
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
