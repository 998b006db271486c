import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CORRUPT_LEASE_AFTER_MS } from "../defaults";
import { privateDir } from "../files";
import { PipelineBusyError, RefusedError, type LeaseHolder } from "./errors";
import { processAlive, withAppendLock } from "./log";
import { writeFileWhole } from "../files";

/**
 * Where a pipeline finds its project, backend, release log and lock. The local
 * stage works with no settings at all: a file backend and log under
 * `<project>/.slipway/`.
 */
export interface PipelineContext {
  projectDir: string;
  backendUrl: string;
  logDir: string;
  env: Record<string, string>;
}

export interface ContextOptions {
  projectDir?: string;
  backendUrl?: string;
  logDir?: string;
  stage: string;
}

/** The directory holding Pulumi.yaml: the option, else the nearest one up from the working directory. */
export function findProjectDir(start = process.cwd()): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, "Pulumi.yaml"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no Pulumi.yaml in ${start} or above; pass --project-dir`);
    dir = parent;
  }
}

/**
 * Stage names become file names (`Pulumi.<stage>.yaml`, `<stage>.jsonl`, `<stage>.lock`)
 * and stack names: a DNS-label-like name keeps every path inside the project.
 */
export const STAGE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class BadStageNameError extends RefusedError {
  override name = "BadStageNameError";
  constructor(readonly stage: string) {
    super(
      `--stage ${JSON.stringify(stage.length > 80 ? `${stage.slice(0, 80)}…` : stage)}: not a stage name; allowed: 1 to 63 lowercase letters, digits and "-", starting and ending with a letter or digit`,
    );
  }
}

export function checkStageName(stage: string): string {
  if (typeof stage !== "string" || !STAGE_NAME.test(stage)) throw new BadStageNameError(stage);
  return stage;
}

export function resolveContext(options: ContextOptions): PipelineContext {
  checkStageName(options.stage);
  const projectDir = resolve(options.projectDir ?? findProjectDir());
  const backendUrl =
    options.backendUrl ??
    process.env.PULUMI_BACKEND_URL ??
    `file://${join(projectDir, ".slipway", "state")}`;
  if (backendUrl.startsWith("file://")) privateDir(fileURLToPath(backendUrl));
  // Next to a file backend's state by default, so every pipeline using that backend shares one log.
  const logDir =
    options.logDir ??
    process.env.SLIPWAY_LOG_DIR ??
    (backendUrl.startsWith("file://")
      ? join(fileURLToPath(backendUrl), ".slipway-releases")
      : join(projectDir, ".slipway", "releases"));
  const env: Record<string, string> = {};
  if (
    process.env.PULUMI_CONFIG_PASSPHRASE === undefined &&
    process.env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined
  ) {
    // Only the local stage gets a built-in passphrase; it guards nothing but rendered manifests.
    if (options.stage === "local") env.PULUMI_CONFIG_PASSPHRASE = "slipway-local";
  }
  return { projectDir, backendUrl, logDir, env };
}

/** What a lease says beyond pid, host, what and since (the release store's runners set these). */
export interface LeaseTerms {
  runnerId?: string;
  ciJobUrl?: string;
  /** With a TTL the lease carries an expiry: past it, a runner on any host takes it over. */
  ttlMs?: number;
}

/**
 * One pipeline per stage at a time. The engine's own stack lock covers a single
 * update; this lease covers a whole release (pauses and analyses included).
 * A lease whose process is gone (same host), or whose expiry has passed, is taken over.
 * Leases written without an expiry (no TTL) are held until their process is gone.
 */
export class StageLease {
  private constructor(
    readonly path: string,
    /** What this lease wrote; renewals change only `expiresAt`. */
    private held: LeaseHolder,
  ) {}

  get holder(): LeaseHolder {
    return this.held;
  }

  static acquire(logDir: string, stage: string, what: string, terms: LeaseTerms = {}): StageLease {
    privateDir(logDir);
    const path = join(logDir, `${stage}.lock`);
    let generation = 1;
    for (let attempt = 0; attempt < 3; attempt++) {
      const since = new Date();
      const mine: LeaseHolder = {
        pid: process.pid,
        host: hostname(),
        ...(terms.runnerId !== undefined ? { runnerId: terms.runnerId } : {}),
        ...(terms.ciJobUrl !== undefined ? { ciJobUrl: terms.ciJobUrl } : {}),
        what,
        since: since.toISOString(),
        generation,
        ...(terms.ttlMs !== undefined
          ? { expiresAt: new Date(since.getTime() + terms.ttlMs).toISOString() }
          : {}),
      };
      try {
        const fd = openSync(path, "wx", 0o600);
        writeSync(fd, JSON.stringify(mine));
        closeSync(fd);
        return new StageLease(path, mine);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const text = safeText(path);
        const holder = readHolder(path);
        if (holder && leaseIsStale(holder)) {
          // Under the mutex, and only the very lease judged stale: a racer's fresh one stays.
          withLeaseMutex(path, () => {
            if (safeText(path) === text) unlinkSync(path);
          });
          generation = (holder.generation ?? 0) + 1;
          continue;
        }
        // A lease is written in one call right after it is created: one that still names no
        // holder after a moment was cut short (disk full, crash) or edited, and names no one to wait for.
        if (!holder && leaseAgeMs(path) > CORRUPT_LEASE_AFTER_MS)
          throw new LeaseCorruptError(stage, path, safeText(path));
        throw new PipelineBusyError(stage, path, holder);
      }
    }
    throw new PipelineBusyError(stage, path, readHolder(path));
  }

  /**
   * Extends the expiry by `ttlMs` from now, only while the lease file is still this one
   * (same pid, host, runner, generation and since). Returns the renewed holder, or undefined
   * when the lease is gone or another runner holds it.
   */
  renew(ttlMs: number): LeaseHolder | undefined {
    return withLeaseMutex(this.path, () => {
      if (!this.isMine(readHolder(this.path))) return undefined;
      const renewed = { ...this.held, expiresAt: new Date(Date.now() + ttlMs).toISOString() };
      writeFileWhole(this.path, JSON.stringify(renewed));
      this.held = renewed;
      return renewed;
    });
  }

  /** Removes the lease if it is still this one; a lease another runner took over stays. */
  release(): void {
    try {
      withLeaseMutex(this.path, () => {
        if (this.isMine(readHolder(this.path))) unlinkSync(this.path);
      });
    } catch {
      // Already gone.
    }
  }

  private isMine(found: LeaseHolder | undefined): boolean {
    const h = this.held;
    return (
      found !== undefined &&
      found.pid === h.pid &&
      found.host === h.host &&
      found.runnerId === h.runnerId &&
      found.generation === h.generation &&
      found.since === h.since
    );
  }
}

/** Held by a process gone from this host, or past its expiry. */
function leaseIsStale(holder: LeaseHolder, now = Date.now()): boolean {
  if (holder.expiresAt !== undefined && Date.parse(holder.expiresAt) <= now) return true;
  return holder.host === hostname() && !processAlive(holder.pid);
}

/** Takeover, renewal and release of one lease file run one at a time. */
function withLeaseMutex<T>(path: string, body: () => T): T {
  return withAppendLock(`${path}.mutex`, body);
}

/** The stage's lease file holds no holder (pid, host, what, since): nothing can say whether it is stale. */
export class LeaseCorruptError extends PipelineBusyError {
  override name = "LeaseCorruptError";
  constructor(stage: string, lockFile: string, content: string) {
    super(stage, lockFile, undefined);
    this.message =
      `stage ${stage}'s lease ${lockFile} is corrupted (${JSON.stringify(content.slice(0, 60))}), so it names no holder to wait for. ` +
      `Nothing was changed. If no slipway command is running on stage ${stage} (check with ps), remove it: rm ${lockFile}`;
  }
}

/** The holder a lease file names, or undefined when it is unreadable or not a lease. */
export function readHolder(path: string): LeaseHolder | undefined {
  try {
    return parseHolder(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** The holder a lease's text names, or undefined when it is not a lease. */
export function parseHolder(text: string): LeaseHolder | undefined {
  let h;
  try {
    h = JSON.parse(text);
  } catch {
    return undefined;
  }
  const ok =
    h !== null &&
    typeof h === "object" &&
    Number.isSafeInteger(h.pid) &&
    h.pid > 0 &&
    typeof h.host === "string" &&
    typeof h.what === "string" &&
    typeof h.since === "string" &&
    (h.runnerId === undefined || typeof h.runnerId === "string") &&
    (h.ciJobUrl === undefined || typeof h.ciJobUrl === "string") &&
    (h.generation === undefined || Number.isSafeInteger(h.generation)) &&
    (h.expiresAt === undefined ||
      (typeof h.expiresAt === "string" && !Number.isNaN(Date.parse(h.expiresAt))));
  return ok ? (h as LeaseHolder) : undefined;
}

function leaseAgeMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function safeText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code}`;
  }
}

/**
 * True while the stage's lease is held: by a live process on this host, or by any process on
 * another host until its expiry (a lease without one: for ever, as nothing here can tell).
 */
export function leaseHolderAlive(logDir: string, stage: string): boolean {
  const path = join(logDir, `${stage}.lock`);
  if (!existsSync(path)) return false;
  const holder = readHolder(path);
  if (!holder) return true; // unreadable: cannot say it is gone
  return !leaseIsStale(holder);
}
