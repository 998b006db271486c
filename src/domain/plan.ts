/**
 * Step plans: the stage's `slipway:canary.steps`, or a preset named after the CodeDeploy
 * configurations people already know. Promotion after the last step is implicit (it is the
 * state machine's `promote` transition, not a step).
 */

/** A step as the stage config writes it (`slipway:canary.steps`; src/config/schema.ts checks it). */
export type ConfigStep =
  | { setWeight: number }
  | { pause: { duration?: number | string; untilApproved?: boolean } }
  | { analysis: { count?: number; interval?: number | string } };

/** A step as the state machine runs it: durations in seconds, the pause's approval decided. */
export type PlanStep =
  | { kind: "setWeight"; weight: number }
  | { kind: "pause"; seconds?: number; untilApproved: boolean }
  | { kind: "analysis"; count?: number; intervalSeconds?: number };

export const PRESETS = [
  "Canary10Percent5Minutes",
  "Linear10PercentEvery1Minute",
  "BlueGreenImmediate",
] as const;
export type Preset = (typeof PRESETS)[number];

/** The plan of a stage whose config names neither a preset nor steps. */
export const DEFAULT_PRESET: Preset = "Canary10Percent5Minutes";

export const PRESET_PLANS: Record<Preset, ConfigStep[]> = {
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
