import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PipelineBusyError, RefusedError, type LeaseHolder } from "./errors";
import { processAlive } from "./log";

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
  if (backendUrl.startsWith("file://")) mkdirSync(fileURLToPath(backendUrl), { recursive: true });
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

/**
 * One pipeline per stage at a time. The engine's own stack lock covers a single
 * update; this lease covers a whole release (pauses and analyses included).
 * A lease whose process is gone (same host) is taken over.
 */
export class StageLease {
  private constructor(readonly path: string) {}

  static acquire(logDir: string, stage: string, what: string): StageLease {
    mkdirSync(logDir, { recursive: true });
    const path = join(logDir, `${stage}.lock`);
    const mine = JSON.stringify({
      pid: process.pid,
      host: hostname(),
      what,
      since: new Date().toISOString(),
    });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, "wx");
        writeSync(fd, mine);
        closeSync(fd);
        return new StageLease(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const holder = readHolder(path);
        if (holder && holder.host === hostname() && !processAlive(holder.pid)) {
          unlinkSync(path);
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

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}

const CORRUPT_LEASE_AFTER_MS = 5_000;

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
    const h = JSON.parse(readFileSync(path, "utf8"));
    const ok =
      h !== null &&
      typeof h === "object" &&
      Number.isSafeInteger(h.pid) &&
      h.pid > 0 &&
      typeof h.host === "string" &&
      typeof h.what === "string" &&
      typeof h.since === "string";
    return ok ? (h as LeaseHolder) : undefined;
  } catch {
    return undefined;
  }
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

/** True while a live process on this host (or any process on another host) holds the stage's lease. */
export function leaseHolderAlive(logDir: string, stage: string): boolean {
  const path = join(logDir, `${stage}.lock`);
  if (!existsSync(path)) return false;
  const holder = readHolder(path);
  if (!holder) return true; // unreadable: cannot say it is gone
  return holder.host !== hostname() || processAlive(holder.pid);
}
