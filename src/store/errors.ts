/**
 * The release store's typed errors. Like the pipeline's, callers match them with
 * `instanceof` and read their fields; every message names the store by its redacted URL.
 */
import { PipelineBusyError, RefusedError, type LeaseHolder } from "../pipeline/errors";
import { LogBrokenError, type LogProblem, type LogRecord } from "../pipeline/log";

/** A store URL, a store setting or the store/backend pairing is refused before anything is touched. */
export class StoreConfigError extends RefusedError {
  override name = "StoreConfigError";
}

/**
 * The store did not answer (refused connection, timeout, TLS mismatch, 5xx after retries).
 * Nothing can be known about the lease or the log while it lasts.
 */
export class StoreUnreachableError extends Error {
  override name = "StoreUnreachableError";
  constructor(
    /** The store's URL with any credentials redacted. */
    readonly url: string,
    readonly operation: string,
    readonly detail: string,
  ) {
    super(
      `release store ${url} is unreachable (${operation}: ${detail}). Nothing was changed by this request; ` +
        "check the endpoint, the network, and that the server runs.",
    );
  }
}

/** The store answered but refused the request (credentials, permissions, missing bucket, bad request). */
export class StoreAccessError extends Error {
  override name = "StoreAccessError";
  constructor(
    readonly url: string,
    readonly operation: string,
    readonly key: string,
    /** The S3 error code (AccessDenied, NoSuchBucket, …) or the SDK's error name. */
    readonly code: string,
    readonly status: number | undefined,
    hint: string,
  ) {
    super(
      `release store ${url} refused ${operation} of ${key}: ${code}${status ? ` (HTTP ${status})` : ""}. ${hint}`,
    );
  }
}

/**
 * This runner no longer holds the stage's lease: it expired and another runner took it over, it
 * was released, or it is gone. The runner must land no further update and append nothing.
 */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
  constructor(
    readonly stage: string,
    /** Where the lease lives (lease file or object URL). */
    readonly where: string,
    /** The generation this runner held. */
    readonly generation: number,
    /** Who holds it now, when anyone does. */
    readonly current: LeaseHolder | undefined,
  ) {
    super(
      `lost the lease of stage ${stage} (generation ${generation}, ${where}): ` +
        (current
          ? `now held by ${current.what} by pid ${current.pid} on ${current.host}` +
            `${current.runnerId ? ` (runner ${current.runnerId})` : ""}, generation ${current.generation ?? "?"}`
          : "it is no longer there") +
        ". This runner lands no further update and appends nothing.",
    );
  }
}

/** The lease object holds no lease (edited by hand): nothing says whom to wait for or when it expires. */
export class StoreLeaseCorruptError extends PipelineBusyError {
  override name = "StoreLeaseCorruptError";
  constructor(stage: string, where: string, content: string) {
    super(stage, where, undefined);
    this.message =
      `stage ${stage}'s lease ${where} is not a lease (${JSON.stringify(content.slice(0, 60))}), so it names no holder to wait for. ` +
      `Nothing was changed. If no slipway runner works on stage ${stage}, delete that object.`;
  }
}

/** Two writers raced for one log position and the other won: this one wrote nothing. */
export class LogPositionTakenError extends Error {
  override name = "LogPositionTakenError";
  constructor(
    readonly stage: string,
    readonly seq: number,
    readonly where: string,
    /** The record the other runner wrote there, when it could be read back. */
    readonly winner: LogRecord | undefined,
  ) {
    super(
      `another runner wrote record ${seq} of stage ${stage}'s release log first (${where}` +
        (winner
          ? `: ${winner.event} of ${winner.releaseId} by ${winner.actor} at ${winner.at}`
          : "") +
        "). This runner appended nothing and stops; another runner is driving this stage.",
    );
  }
}

/** An object-per-record log that does not verify: the problems name the objects. */
export class StoreLogBrokenError extends LogBrokenError {
  override name = "StoreLogBrokenError";
  constructor(where: string, stage: string, problems: LogProblem[]) {
    super(where, stage, problems);
    const shown = problems
      .slice(0, 5)
      .map((p) => `${p.where ?? `record ${p.line}`}: ${p.problem}`)
      .join("; ");
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : "";
    this.message =
      `release log ${where} does not verify: ${shown}${more}. Nothing was changed. ` +
      "The log is evidence and slipway never rewrites it: copy its objects elsewhere for review and " +
      `delete them from ${where}, then rerun to start a new log; where stage ${stage} stands is in its stack ` +
      `(slipway status --stage ${stage}), and a new log holds no completed release to promote until one completes.`;
  }
}

/** `migrateFileLog` refused: the file log does not verify, or the S3 log is not empty. */
export class MigrationRefusedError extends RefusedError {
  override name = "MigrationRefusedError";
}
