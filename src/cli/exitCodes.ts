import { ExitCode, pipelineExitCode, type PipelineOutcome } from "../domain";

/**
 * The exit codes of the commands whose outcomes are not a release's: `rollback` and `analyze`.
 * Every code and every release outcome is in src/domain/outcomes.ts (README, "Exit codes").
 */

/** `slipway rollback`: a rollback that landed is what was asked for. */
export const rollbackExitCode = (outcome: PipelineOutcome): ExitCode =>
  outcome === "rolledBack" ? ExitCode.ok : pipelineExitCode(outcome);

/** How `slipway analyze` ended: the judge's verdict, or input it could not judge. */
export type AnalyzeOutcome = "pass" | "fail" | "inconclusive" | "badInput";

const ANALYZE_EXIT: Record<AnalyzeOutcome, ExitCode> = {
  pass: ExitCode.ok,
  fail: ExitCode.rolledBack,
  inconclusive: ExitCode.inconclusive,
  badInput: ExitCode.usage,
};

export const analyzeExitCode = (outcome: AnalyzeOutcome): ExitCode => ANALYZE_EXIT[outcome];
