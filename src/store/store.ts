/**
 * The release store: everything the pipeline keeps outside the stack (the stage's lease and its
 * release log), behind one async interface with two implementations: FileStore (today's files
 * under the log directory) and S3Store (any S3-compatible store with conditional writes).
 * docs/release-store.md describes the URL forms, the lease and fencing.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { LeaseHolder } from "../pipeline/errors";
import type {
  LogBrokenError,
  LogProblem,
  LogReading,
  LogRecord,
  NewLogRecord,
} from "../pipeline/log";
import { StoreConfigError, LeaseLostError } from "./errors";
import { HEARTBEAT_FRACTION } from "../defaults";
import { leaseTtlMs } from "./ttl";

export interface ReleaseStore {
  /** The store's URL with any credentials redacted: safe to print and log. */
  describe(): string;
  /**
   * Takes the stage's lease for `ttlMs` (default: `leaseTtlMs()`), or throws PipelineBusyError
   * naming the holder (host, runner id, pid, since, expiry) while another runner holds it unexpired.
   */
  acquireLease(stage: string, holder: NewHolder, options?: { ttlMs?: number }): Promise<Lease>;
  /** Who holds the stage's lease, and whether it still counts; undefined when none does. */
  readLease(stage: string): Promise<LeaseState | undefined>;
  /** The stage's release log. */
  log(stage: string): StoreLog;
  /** Lets go of connections (S3's client); the store is not used after. */
  close(): void;
}

/** What a runner says about itself when it takes a lease; host and pid are always this process's. */
export interface NewHolder {
  /** What the lease is for: "release 1.2.0", "rollback". */
  what: string;
  runnerId: string;
  ciJobUrl?: string;
}

export interface LeaseState {
  /** Undefined when the lease is there but unreadable (then it counts as live). */
  holder: LeaseHolder | undefined;
  /** Held and unexpired (for a lease without an expiry: its process runs, or runs elsewhere). */
  live: boolean;
  where: string;
}

export interface Lease {
  readonly stage: string;
  /** The lease as last written by this runner (generation and expiry included). */
  readonly holder: LeaseHolder;
  /** Counts takeovers of the stage's lease; a runner that lost it holds a smaller one. */
  readonly generation: number;
  readonly expiresAt: Date;
  readonly ttlMs: number;
  /**
   * The holder whose expired lease this one replaced (not one that was given up): a runner that
   * died or stopped. Its leftovers (an engine lock on a shared backend) are this runner's to clear.
   */
  readonly takenOverFrom?: LeaseHolder;
  /**
   * Proves this runner still holds the lease and extends it by its TTL: the fencing check
   * before every stack update and log append. Throws LeaseLostError when another runner took
   * it over or it was released, StoreUnreachableError when the store does not answer.
   */
  renew(): Promise<void>;
  /** Gives the lease up if it is still this runner's; one another runner took over stays theirs. */
  release(): Promise<void>;
  /** Renews every `intervalMs` (default TTL × HEARTBEAT_FRACTION) until stopped or lost. */
  startHeartbeat(options: HeartbeatOptions): Heartbeat;
}

export interface HeartbeatOptions {
  intervalMs?: number;
  /** Wait after a failed renewal before the next try (default: a third of the interval). */
  retryDelayMs?: number;
  /**
   * Called once when the lease is lost: taken over (LeaseLostError), or renewals failed until
   * less than one interval of it was left (the last error). The heartbeat has stopped by then.
   */
  onLost: (err: Error) => void;
}

export interface Heartbeat {
  /** Stops renewing; resolves once a renewal under way has finished. */
  stop(): Promise<void>;
}

export interface StoreLog {
  readonly stage: string;
  /** The log's location (file path, or the URL of its objects' prefix). */
  readonly where: string;
  /** Every record checked (hash chain, schema, order): records and problems, never a throw for bad content. */
  read(): Promise<LogReading>;
  /**
   * Appends one record chained to the last; refused (LogBrokenError) when the log does not
   * verify. S3: LogPositionTakenError when another runner wrote that position first.
   */
  append(record: NewLogRecord): Promise<LogRecord>;
  /** Called with every record this log appends, once it is stored. */
  onAppend(listener: (record: LogRecord) => void): void;
  /**
   * Runs (and awaits) `check` before every append of this log object; an append it throws from
   * writes nothing. A release fences its own appends with it: once its lease is lost, no record.
   */
  beforeAppend(check: () => void | Promise<void>): void;
  /** The refusal for a log that does not verify, saying how to recover in this store. */
  broken(problems: LogProblem[]): LogBrokenError;
}

/** Every record, oldest first; throws LogBrokenError (naming where) unless the whole log verifies. */
export async function verifiedRecords(log: StoreLog): Promise<LogRecord[]> {
  const reading = await log.read();
  if (reading.problems.length > 0) throw log.broken(reading.problems);
  return reading.records;
}

/** The verified records of one release, oldest first; throws LogBrokenError as verifiedRecords does. */
export async function releaseRecords(log: StoreLog, releaseId: string): Promise<LogRecord[]> {
  return (await verifiedRecords(log)).filter((r) => r.releaseId === releaseId);
}

/** SLIPWAY_RUNNER_ID sets the runner id; else one is made once per process. */
export const RUNNER_ID_ENV = "SLIPWAY_RUNNER_ID";
const RUNNER_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
let processRunnerId: string | undefined;

/** The identity this process puts in a lease: runner id and CI job URL from the environment. */
export function runnerHolder(what: string, env: NodeJS.ProcessEnv = process.env): NewHolder {
  const given = env[RUNNER_ID_ENV];
  if (given !== undefined && !RUNNER_ID.test(given))
    throw new StoreConfigError(
      `${RUNNER_ID_ENV}=${JSON.stringify(given.slice(0, 140))}: not a runner id; allowed: 1 to 128 letters, digits and . _ : @ / -, starting with a letter or digit`,
    );
  processRunnerId ??= `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const ciJobUrl = ciJobUrlOf(env);
  return { what, runnerId: given ?? processRunnerId, ...(ciJobUrl ? { ciJobUrl } : {}) };
}

/**
 * Refuses (StoreConfigError) a bad SLIPWAY_RUNNER_ID or SLIPWAY_LEASE_TTL_SECONDS: what a command
 * that takes a lease checks before it reads or changes anything.
 */
export function checkLeaseSettings(env: NodeJS.ProcessEnv = process.env): void {
  runnerHolder("check", env);
  leaseTtlMs(env);
}

/** GitHub Actions' run URL or GitLab's job URL, when the environment names one. */
function ciJobUrlOf(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID)
    return `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
  return env.CI_JOB_URL || undefined;
}

/** The lease content a runner writes: this process's host and pid, the holder it gave, the terms. */
export function leaseContent(
  holder: NewHolder,
  generation: number,
  ttlMs: number,
  now = Date.now(),
): LeaseHolder {
  return {
    pid: process.pid,
    host: hostname(),
    runnerId: holder.runnerId,
    ...(holder.ciJobUrl ? { ciJobUrl: holder.ciJobUrl } : {}),
    what: holder.what,
    since: new Date(now).toISOString(),
    generation,
    expiresAt: new Date(now + ttlMs).toISOString(),
  };
}

/**
 * What both stores' leases share: renewals and the release run one at a time (a heartbeat's
 * renewal and a fencing check never race each other into a false "lost"), and the heartbeat.
 */
export abstract class HeldLease implements Lease {
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;
  /** Set when a heartbeat gave up: even if the store answers again, this runner fences itself off. */
  private givenUp = false;
  takenOverFrom?: LeaseHolder;

  protected constructor(
    readonly stage: string,
    readonly where: string,
    protected current: LeaseHolder,
    readonly ttlMs: number,
  ) {}

  get holder(): LeaseHolder {
    return this.current;
  }
  get generation(): number {
    return this.current.generation ?? 1;
  }
  get expiresAt(): Date {
    return new Date(this.current.expiresAt!);
  }

  /** Writes the renewed lease only if it is still this one; returns what it wrote. */
  protected abstract renewOnce(): Promise<LeaseHolder>;
  protected abstract releaseOnce(): Promise<void>;

  renew(): Promise<void> {
    return this.serial(async () => {
      if (this.released || this.givenUp)
        throw new LeaseLostError(this.stage, this.where, this.generation, undefined);
      this.current = await this.renewOnce();
    });
  }

  release(): Promise<void> {
    return this.serial(async () => {
      if (this.released) return;
      this.released = true;
      await this.releaseOnce();
    });
  }

  private serial<T>(body: () => Promise<T>): Promise<T> {
    const run = this.queue.then(body, body);
    this.queue = run.catch(() => undefined);
    return run;
  }

  startHeartbeat(options: HeartbeatOptions): Heartbeat {
    const intervalMs = options.intervalMs ?? Math.round(this.ttlMs * HEARTBEAT_FRACTION);
    const retryDelayMs = options.retryDelayMs ?? Math.round(intervalMs / 3);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const schedule = (ms: number) => {
      timer = setTimeout(() => {
        running = beat();
      }, ms);
      // A heartbeat alone never keeps the process alive; the release it guards does.
      timer.unref();
    };
    const lost = (err: Error) => {
      stopped = true;
      this.givenUp = true;
      options.onLost(err);
    };
    const beat = async () => {
      if (stopped) return;
      try {
        await this.renew();
        if (!stopped) schedule(intervalMs);
      } catch (err) {
        if (stopped) return;
        if (err instanceof LeaseLostError) return lost(err);
        // Retry while a retry still leaves one interval of the lease: give up before it can
        // expire under a runner that still believes it holds it.
        if (Date.now() + retryDelayMs > this.expiresAt.getTime() - intervalMs)
          return lost(err as Error);
        schedule(retryDelayMs);
      }
    };
    schedule(intervalMs);
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      },
    };
  }
}
