import type { Slot } from "./slots";

/** Where a release hook runs, in release order (`slipway:canary.hooks[].at`). */
export const HOOK_POINTS = [
  "preRollout", // before the deploy update: nothing has changed yet
  "afterDeploy", // candidate up at weight 0: acceptance tests through the tester header
  "beforeStep", // before a step of the plan (steps: [n…] or all)
  "afterStep", // after a step of the plan completed
  "confirmPromotion", // gate before the promote update
  "postRollout", // after the promote update landed
  "onRollback", // after the rollback update landed
] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

/**
 * Why the state machine stopped a release to wait for a person (outcome `paused`), typed as
 * Argo Rollouts types its pause conditions, so that readers of the result and of the
 * `release.paused` record (its `figures.pause`) never parse the human `reason`. `step` is the
 * plan's step index, from 0.
 */
export type PauseReason =
  /** A `pause: {untilApproved: true}` step waits for `slipway approve`. */
  | { kind: "awaitingApproval"; step: number }
  /** The analysis of a step stayed inconclusive after its retries and nobody approved going on. */
  | { kind: "inconclusive"; step: number }
  /** A hook with failure policy `pause` failed at `point` (`step` at step points). */
  | { kind: "hook"; point: HookPoint; hook?: string; step?: number }
  /**
   * The weights read back differ from the stack's: before promotion with
   * `slipway:canary.onDrift: pause`; after it always (the scale-down is held).
   */
  | { kind: "drift"; afterPromotion: boolean }
  /**
   * The stack file's people-owned config changed during the release (`keys`, as
   * `slipway:service.env`): with `slipway:canary.onDrift: pause`, and always after promotion.
   */
  | { kind: "configChanged"; keys: string[]; afterPromotion: boolean };

/**
 * A timed wait the release serves (`pause.started` / `pause.ended`, its `figures.pause`): a
 * timed pause step, or the delay before the old slot is scaled down. A resumed release finds
 * the wait it already served by this, not by the label people read.
 */
export type Wait =
  | { kind: "stepPause"; step: number; seconds: number }
  | { kind: "scaleDownDelay"; slot: Slot; seconds: number };

/** Whether two waits are the same wait of one release (the seconds left may differ). */
export const sameWait = (a: Wait, b: Wait): boolean =>
  a.kind === "stepPause"
    ? b.kind === "stepPause" && a.step === b.step
    : b.kind === "scaleDownDelay" && a.slot === b.slot;
