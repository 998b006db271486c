import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PipelineBusyError, type LeaseHolder } from "./errors";

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

export function resolveContext(options: ContextOptions): PipelineContext {
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
        if (holder && holder.host === hostname() && !alive(holder.pid)) {
          unlinkSync(path);
          continue;
        }
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

function readHolder(path: string): LeaseHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
