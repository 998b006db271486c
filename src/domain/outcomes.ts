/**
 * Every command's exit codes, and how a pipeline command ends: the one table of outcomes
 * (README, "Exit codes").
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
   * This runner lost the stage's lease mid-release (it expired and another runner took it over,
   * or the release store stopped answering): it landed no further update and appended nothing;
   * the release stays in progress for whoever holds the lease now.
   */
  leaseLost: 7,
  /**
   * Interrupted by a signal (SIGINT or SIGTERM; 128 + SIGINT), after stopping at a safe point:
   * the update in flight landed or was cancelled by the engine, the record appended, the lease released.
   */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** How a pipeline command (release, promote, rollback) ended. */
export type PipelineOutcome =
  | "promoted"
  | "rolledBack"
  | "paused"
  | "failed"
  | "refused"
  | "error"
  | "interrupted"
  | "leaseLost";

/**
 * How the state machine ends a release: every pipeline outcome but `error` (a failure that is
 * not a verdict) and `leaseLost` (the runner, not the release, stopped: release.ts decides it).
 * `refused`: a preRollout hook stopped the release before anything changed.
 */
export type Outcome = Exclude<PipelineOutcome, "error" | "leaseLost">;

/**
 * The phases a release record (`slipway:release`, echoed in the stack's outputs) can carry.
 * `paused` and `failed` are never written: no version of the machine wrote them (a paused
 * release keeps phase `canary`; a rollback that could not land leaves the phase where it was).
 * They stay because the record's schema reads every stack file and stack output through this
 * list (src/config/schema.ts, src/contract/outputs.ts): narrowing it would make a record that
 * names them unreadable rather than settled, and the machine still treats `paused` as mid-canary.
 */
export const RELEASE_PHASES = [
  "deploying",
  "canary",
  "paused",
  "promoted",
  "completed",
  "rolledBack",
  "failed",
] as const;
export type ReleasePhase = (typeof RELEASE_PHASES)[number];

interface OutcomeRow {
  /**
   * The release-log record that closes a release with this outcome. `error` has none: a
   * failure that is not a verdict leaves the release open, to be resumed or rolled back.
   */
  closingEvent?: `release.${string}`;
  /**
   * The release is over: nothing resumes it (`--resume` has nothing to continue, no unlanded
   * release is left to deploy). `paused` and `interrupted` leave it to `--resume`; `error`
   * writes no record.
   */
  ends?: true;
  /** The phase the stack's release record settles in when a release ends this way. */
  settledPhase?: ReleasePhase;
  exitCode: ExitCode;
  /**
   * The notification that announces it (src/notify) and the log record that sends it: a
   * promotion is announced when traffic flips (`release.promoted`), before the old slot is
   * scaled down and the release closes.
   */
  notify?: { kind: string; on: `release.${string}` };
  /** What people read: reports and summaries. */
  word: string;
}

export const OUTCOMES = {
  promoted: {
    closingEvent: "release.completed",
    ends: true,
    settledPhase: "completed",
    exitCode: ExitCode.ok,
    notify: { kind: "promoted", on: "release.promoted" },
    word: "promoted",
  },
  rolledBack: {
    closingEvent: "release.rolledBack",
    ends: true,
    settledPhase: "rolledBack",
    exitCode: ExitCode.rolledBack,
    notify: { kind: "rolledBack", on: "release.rolledBack" },
    word: "rolled back",
  },
  paused: {
    closingEvent: "release.paused",
    exitCode: ExitCode.paused,
    notify: { kind: "paused", on: "release.paused" },
    word: "paused",
  },
  failed: {
    closingEvent: "release.failed",
    // The rollback itself could not land; the machine's verdict is final (announced, exit 1).
    // A stack still mid-canary is finished by `--resume` or `slipway rollback` from the stack's
    // phase, not from the log; a release whose deploy never landed is not deployed again.
    ends: true,
    // Never written (see RELEASE_PHASES); a record that carries it is settled.
    settledPhase: "failed",
    exitCode: ExitCode.error,
    notify: { kind: "failed", on: "release.failed" },
    word: "failed",
  },
  refused: {
    closingEvent: "release.refused",
    // Refused before anything landed: there is nothing to resume.
    ends: true,
    exitCode: ExitCode.refused,
    word: "refused",
  },
  error: { exitCode: ExitCode.error, word: "error" },
  interrupted: {
    closingEvent: "release.interrupted",
    exitCode: ExitCode.interrupted,
    word: "interrupted",
  },
  // No closing record: a runner that lost the lease appends nothing; the release is left to
  // the runner that holds it now (or to `--resume` once that one is gone).
  leaseLost: { exitCode: ExitCode.leaseLost, word: "lease lost" },
} as const satisfies Record<PipelineOutcome, OutcomeRow>;

/** Exit code of `release` and `promote`, and the code every pipeline report carries. */
export const pipelineExitCode = (outcome: PipelineOutcome): ExitCode => OUTCOMES[outcome].exitCode;

const ALL = Object.keys(OUTCOMES) as PipelineOutcome[];

/** The outcome whose release closes with log event `event`, if any. */
export const outcomeClosedBy = (event: string): PipelineOutcome | undefined =>
  ALL.find((o) => (OUTCOMES[o] as OutcomeRow).closingEvent === event);

/** A notification an outcome sends: its kind (src/notify) and the log event that sends it. */
export type OutcomeNotice = Extract<
  (typeof OUTCOMES)[PipelineOutcome],
  { notify: unknown }
>["notify"];

/** The notification log event `event` sends for an outcome, if it sends one. */
export const outcomeNotice = (event: string): OutcomeNotice | undefined =>
  ALL.map((o) => (OUTCOMES[o] as OutcomeRow).notify).find((n) => n?.on === event) as
    OutcomeNotice | undefined;

/**
 * "Ended", once: the log records that close a release (the closing events of the outcomes that
 * end one) and the phases the stack's record settles in (after which a new release may start).
 */
export const CLOSING_EVENTS: readonly string[] = ALL.flatMap((o) => {
  const row = OUTCOMES[o] as OutcomeRow;
  return row.ends && row.closingEvent ? [row.closingEvent] : [];
});

export const SETTLED_PHASES: readonly ReleasePhase[] = ALL.flatMap((o) => {
  const phase = (OUTCOMES[o] as OutcomeRow).settledPhase;
  return phase ? [phase] : [];
});

/** Whether log event `event` closes a release (see CLOSING_EVENTS). */
export const closesRelease = (event: string): boolean => CLOSING_EVENTS.includes(event);

/** The log event that records a release whose stack record settled in `phase`, if it settled. */
export const closingEventOfPhase = (phase: ReleasePhase): string | undefined =>
  ALL.map((o) => OUTCOMES[o] as OutcomeRow).find((row) => row.settledPhase === phase)?.closingEvent;
