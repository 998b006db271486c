import type { CanaryConfig, Step } from "../config/schema";
import { parseDurationSeconds } from "../analysis/spec";

/**
 * Step plans: the stage's `slipway:canary.steps`, or a preset named after the
 * CodeDeploy configurations people already know. Promotion after the last step
 * is implicit (it is the state machine's `promote` transition, not a step).
 */
export type PlanStep =
  | { kind: "setWeight"; weight: number }
  | { kind: "pause"; seconds?: number; untilApproved: boolean }
  | { kind: "analysis"; count?: number; intervalSeconds?: number };

export const PRESET_PLANS: Record<NonNullable<CanaryConfig["preset"]>, Step[]> = {
  // 10% for 5 minutes (analysed throughout), then the rest at once.
  Canary10Percent5Minutes: [{ setWeight: 10 }, { analysis: { count: 5, interval: "1m" } }],
  // +10% every minute (analysed each minute) until 90%, then the rest.
  Linear10PercentEvery1Minute: [10, 20, 30, 40, 50, 60, 70, 80, 90].flatMap((w) => [
    { setWeight: w },
    { analysis: { count: 1, interval: "1m" } },
  ]),
  // No canary: smoke-check through the tester header, then flip.
  BlueGreenImmediate: [],
};

export function planSteps(canary: Pick<CanaryConfig, "preset" | "steps">): PlanStep[] {
  const steps = canary.steps ?? PRESET_PLANS[canary.preset ?? "Canary10Percent5Minutes"];
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
      return step.untilApproved ? "pause until approved" : `pause ${step.seconds}s`;
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
