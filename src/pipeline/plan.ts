import type { CanaryConfig } from "../config/schema";
import { parseDurationSeconds } from "../analysis/spec";
import { DEFAULT_PRESET, PRESET_PLANS, type PlanStep } from "../domain";

/** The steps the state machine runs for a stage's canary config (src/domain/plan.ts). */
export function planSteps(canary: Pick<CanaryConfig, "preset" | "steps">): PlanStep[] {
  const steps = canary.steps ?? PRESET_PLANS[canary.preset ?? DEFAULT_PRESET];
  return steps.map((step): PlanStep => {
    if ("setWeight" in step) return { kind: "setWeight", weight: step.setWeight };
    if ("pause" in step) {
      const seconds =
        step.pause.duration === undefined ? undefined : parseDurationSeconds(step.pause.duration);
      return {
        kind: "pause",
        seconds,
        untilApproved: step.pause.untilApproved ?? step.pause.duration === undefined,
      };
    }
    return {
      kind: "analysis",
      count: step.analysis.count,
      intervalSeconds:
        step.analysis.interval === undefined
          ? undefined
          : parseDurationSeconds(step.analysis.interval),
    };
  });
}

/** The plan in Argo's words, for logs and `status`. */
export function describeStep(step: PlanStep): string {
  switch (step.kind) {
    case "setWeight":
      return `setWeight ${step.weight}`;
    case "pause":
      return step.untilApproved ? "pause until approved" : `pause ${step.seconds ?? 0}s`;
    case "analysis":
      return `analysis${step.count ? ` x${step.count}` : ""}${step.intervalSeconds ? ` every ${step.intervalSeconds}s` : ""}`;
  }
}

/** Weight in force after running steps [0, position). */
export function weightAt(plan: PlanStep[], position: number): number {
  let weight = 0;
  for (const step of plan.slice(0, position)) if (step.kind === "setWeight") weight = step.weight;
  return weight;
}
