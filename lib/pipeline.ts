// `slipway/pipeline`: the Automation API entry points behind `slipway release`, `plan`,
// `rollback`, `promote`, `approve`, `status` and `history`, for a CI job that calls them
// from code instead of the command line. Each returns a report; none exits the process.
export {
  release,
  type MetricsSource,
  type ReleaseOptions,
  type ReleaseReport,
} from "../src/pipeline/release";
export {
  approve,
  history,
  promote,
  rollback,
  status,
  summarize,
  type PromoteArgs,
  type ReleaseSummary,
  type StageArgs,
  type StageStatus,
} from "../src/pipeline/operations";
export {
  formatPlan,
  previewPlan,
  type PlanOptions,
  type PlanReport,
} from "../src/releasePlan/preview";
export {
  ConfigChangedError,
  NotServingError,
  PipelineBusyError,
  RefusedError,
  RouteDriftedError,
  RoutingNotFoundError,
  StackLockedError,
  UnknownReleaseError,
  UnknownStageError,
  type LeaseHolder,
} from "../src/pipeline/errors";
export { listStages, readStageConfig } from "../src/pipeline/stackFile";
export type { LogProblem, LogRecord } from "../src/pipeline/log";
export {
  ExitCode,
  pipelineExitCode,
  type PipelineEvent,
  type PipelineOutcome,
  type Reporter,
} from "../src/domain";
