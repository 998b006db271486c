/**
 * Every command's outcomes and exit codes: the one table (README, "Exit codes").
 * It imports nothing, so the pipeline (which stamps its reports with the code)
 * and every command can use it without an import circle.
 */
export const ExitCode = {
  /** Promoted (release, promote), rolled back as asked (rollback), verified, analyze pass. */
  ok: 0,
  /** Something failed that is not a verdict (e.g. the rollback itself could not land). */
  error: 1,
  /** Bad flags or flag files. */
  usage: 2,
  /** Rolled back (release, promote), or analyze verdict fail. */
  rolledBack: 3,
  /** Waiting for `slipway approve` (or an inconclusive analysis needs a person). */
  paused: 4,
  /** analyze verdict inconclusive. */
  inconclusive: 5,
  /** Refused before any change: bad input, gates not met, stage busy, unsigned artifact. */
  refused: 6,
  /**
   * Interrupted by a signal (SIGINT or SIGTERM; 128 + SIGINT), after stopping at a safe point:
   * the update in flight landed or was cancelled by the engine, the record appended, the lease released.
   */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** How a pipeline command (release, promote, rollback) ended. */
export type PipelineOutcome =
  "promoted" | "rolledBack" | "paused" | "failed" | "refused" | "error" | "interrupted";

const PIPELINE_EXIT: Record<PipelineOutcome, ExitCode> = {
  promoted: ExitCode.ok,
  rolledBack: ExitCode.rolledBack,
  paused: ExitCode.paused,
  failed: ExitCode.error,
  refused: ExitCode.refused,
  error: ExitCode.error,
  interrupted: ExitCode.interrupted,
};

/** Exit code of `release` and `promote`, and the code every pipeline report carries. */
export const pipelineExitCode = (outcome: PipelineOutcome): ExitCode => PIPELINE_EXIT[outcome];

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
