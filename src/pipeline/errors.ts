/**
 * The pipeline's typed errors. Callers match them with `instanceof` and read
 * their fields, never their message text.
 */

/** Refused before any change: bad input, a gate not met, the stage busy (exit code 6). */
export class RefusedError extends Error {
  override name = "RefusedError";
}

/**
 * Who holds a stage's lease: written into the lease by `StageLease.acquire` or the S3 release
 * store. Leases written before runner ids and expiries existed name only pid, host, what and since.
 */
export interface LeaseHolder {
  pid: number;
  host: string;
  what: string;
  since: string;
  /** Unique per process (SLIPWAY_RUNNER_ID sets it): two runners on one host tell apart. */
  runnerId?: string;
  /** The CI job that runs the holder, when its environment names one. */
  ciJobUrl?: string;
  /** Counts takeovers of this stage's lease: a holder that lost its lease sees a newer one. */
  generation?: number;
  /** Past it, any runner may take the lease over; none means held until its process is gone. */
  expiresAt?: string;
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
      `stage ${stage} is busy: ${describeHolder(lockFile, holder)}${holder ? ` (lease ${lockFile})` : ""}. ` +
        "Nothing was changed. Wait for it, or see `slipway status`.",
    );
  }

  /** "release 1.2.0 by pid 4242 on host since …", or the lock file when the holder is unknown. */
  get heldBy(): string {
    return describeHolder(this.lockFile, this.holder);
  }
}

function describeHolder(lockFile: string, holder: LeaseHolder | undefined): string {
  if (!holder) return `lock ${lockFile}`;
  const runner = holder.runnerId
    ? ` (runner ${holder.runnerId}${holder.ciJobUrl ? `, ${holder.ciJobUrl}` : ""})`
    : "";
  const left = holder.expiresAt ? Math.ceil((Date.parse(holder.expiresAt) - Date.now()) / 1000) : 0;
  const expiry = holder.expiresAt
    ? `; its lease expires at ${holder.expiresAt}${left > 0 ? ` (in ${left} s)` : ""}`
    : "";
  return `${holder.what} by pid ${holder.pid} on ${holder.host}${runner} since ${holder.since}${expiry}`;
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
    /** True when the API could not be asked at all (nothing is known of the route). */
    readonly unreachable = false,
  ) {
    super(`routing ${routingId}: ${detail}`);
  }
}

/**
 * The live route is not the one the stack declared, beyond its weights: a rule, match, filter,
 * parentRef or backendRef was added, removed or changed outside the stack (kubectl edit, another
 * tool). `weights` are the shares the live route gives the slots; `differences` say, in words,
 * what differs. The release answers it as drift (readBack.ts, release.ts).
 */
export class RouteDriftedError extends Error {
  override name = "RouteDriftedError";
  constructor(
    readonly routingId: string,
    readonly weights: { blue: number; green: number },
    readonly differences: string[],
  ) {
    super(`routing ${routingId} differs from the stack: ${differences.join("; ")}`);
  }
}

/**
 * What serves does not match the stack (src/pipeline/serving.ts): each problem in words a
 * person can act on. The machine answers it: no promotion, no scale-down.
 */
export class NotServingError extends Error {
  override name = "NotServingError";
  constructor(
    readonly when: string,
    readonly problems: string[],
  ) {
    super(`not serving ${when}: ${problems.join("; ")}`);
  }
}

/**
 * Someone edited the people-owned config of the stack file (or Pulumi.yaml's defaults) while a
 * release runs: the update that would apply it is refused before it starts. Only the release's
 * rollback, which changes the routing resource alone, still runs.
 */
export class ConfigChangedError extends Error {
  override name = "ConfigChangedError";
  constructor(
    /** Config leaves added, removed or changed since the release started (`slipway:service.env`). */
    readonly keys: string[],
    readonly file: string,
    readonly update: string,
  ) {
    super(
      `${file} changed during the release (${keys.join(", ")}): ${update} refused, nothing was applied; ` +
        "a release applies only the config it started with. Undo the edit to go on, or roll back; release the edit afterwards",
    );
  }
}
