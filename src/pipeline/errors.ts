/**
 * The pipeline's typed errors. Callers match them with `instanceof` and read
 * their fields, never their message text.
 */

/** Refused before any change: bad input, a gate not met, the stage busy (exit code 6). */
export class RefusedError extends Error {
  override name = "RefusedError";
}

/** Who holds a stage's lease: written into the lock file by `StageLease.acquire`. */
export interface LeaseHolder {
  pid: number;
  host: string;
  what: string;
  since: string;
}

/** Another pipeline holds the stage's lease. */
export class PipelineBusyError extends RefusedError {
  override name = "PipelineBusyError";
  constructor(
    readonly stage: string,
    readonly lockFile: string,
    /** Undefined when the lock file could not be read (being written, or not JSON). */
    readonly holder: LeaseHolder | undefined,
  ) {
    super(
      `stage ${stage} is busy: ${describeHolder(lockFile, holder)}. ` +
        "Nothing was changed. Wait for it, or see `slipway status`.",
    );
  }

  /** "release 1.2.0 by pid 4242 on host since …", or the lock file when the holder is unknown. */
  get heldBy(): string {
    return describeHolder(this.lockFile, this.holder);
  }
}

function describeHolder(lockFile: string, holder: LeaseHolder | undefined): string {
  return holder
    ? `${holder.what} by pid ${holder.pid} on ${holder.host} since ${holder.since}`
    : `lock ${lockFile}`;
}

/** The engine's own stack lock is held by another update. */
export class StackLockedError extends Error {
  override name = "StackLockedError";
}

/** A stage name with no `Pulumi.<stage>.yaml` in the project. */
export class UnknownStageError extends RefusedError {
  override name = "UnknownStageError";
  constructor(
    readonly stage: string,
    readonly stages: readonly string[],
  ) {
    super(`unknown stage ${stage}; stages: ${stages.join(", ")}`);
  }
}

/** A release id that no stage's release log mentions. */
export class UnknownReleaseError extends RefusedError {
  override name = "UnknownReleaseError";
  constructor(readonly releaseId: string) {
    super(`unknown release ${releaseId}: no stage's release log mentions it`);
  }
}

/** The weights read-back cannot find the routing resource (or a slot's share in it). */
export class RoutingNotFoundError extends Error {
  override name = "RoutingNotFoundError";
  constructor(
    /** `outputs.routing.id`: HTTPRoute `namespace/name`, or the listener rule's ARN. */
    readonly routingId: string,
    readonly detail: string,
  ) {
    super(`routing ${routingId}: ${detail}`);
  }
}
