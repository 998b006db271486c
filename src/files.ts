import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Writes `file` whole or not at all: the text goes to a file beside it (named for this process,
 * so two writers never share one), which is then renamed over it. A reader that polls for the
 * file, or reads it while it is rewritten, never sees it empty or half written.
 */
export function writeFileWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * A directory only its owner can enter (0700), made if missing: stack state, release logs and
 * the local cluster's database hold secrets and evidence, and a world-readable copy of the
 * cluster's database bypasses its RBAC. An existing directory is narrowed too.
 */
export function privateDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
  return path;
}

/** A file a command was asked to read that is not a regular file, or is too large. */
export class InputFileError extends Error {
  override name = "InputFileError";
}

/**
 * Reads a regular file of at most `maxBytes` as UTF-8. A FIFO, a device (`/dev/zero`) or a
 * directory is refused without blocking (it is opened non-blocking, then checked), and a file
 * that grows past the limit while it is read is refused too: an input never hangs or fills memory.
 */
export function readInputFile(path: string, maxBytes: number): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw new InputFileError(
        `not a regular file (${kindOf(stat)}); allowed: a file of at most ${maxBytes} bytes`,
      );
    if (stat.size > maxBytes)
      throw new InputFileError(`${stat.size} bytes; allowed: a file of at most ${maxBytes} bytes`);
    const buf = Buffer.alloc(maxBytes + 1);
    let read = 0;
    for (;;) {
      const n = readSync(fd, buf, read, buf.length - read, null);
      if (n === 0) break;
      read += n;
      if (read > maxBytes)
        throw new InputFileError(
          `more than ${maxBytes} bytes; allowed: a file of at most ${maxBytes} bytes`,
        );
    }
    return buf.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function kindOf(stat: ReturnType<typeof fstatSync>): string {
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isDirectory()) return "a directory";
  if (stat.isSocket()) return "a socket";
  return "not a file";
}

/**
 * A fresh directory under the system's temporary directory, named `<prefix><pid>-<random>` so that
 * `sweepScratchDirs` can tell whether its owner still runs. The owner removes it in a `finally`;
 * a process killed with SIGKILL cannot, and the sweep of a later run does.
 */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}

/** How long a scratch directory of a dead owner is left alone: a pid seen from another pid namespace may be wrong. */
const SCRATCH_STALE_MS = 60 * 60 * 1000;

/**
 * Removes the scratch directories of `prefix` whose owner is gone (the pid in the name runs no
 * process; a name without one comes from a version before pids were recorded) and in which
 * nothing changed for `staleMs`. Returns the paths removed; one that cannot be read or removed is
 * left for the next sweep.
 */
export function sweepScratchDirs(
  prefix: string,
  staleMs = SCRATCH_STALE_MS,
  dir = tmpdir(),
): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(dir, name);
    const owner = /^(\d+)-/.exec(name.slice(prefix.length));
    if (owner && pidRuns(Number(owner[1]))) continue;
    try {
      if (Date.now() - lastChange(path) < staleMs) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}

/** The newest modification time of a directory and its direct entries. */
function lastChange(path: string): number {
  let newest = statSync(path).mtimeMs;
  for (const entry of readdirSync(path)) {
    try {
      newest = Math.max(newest, lstatSync(join(path, entry)).mtimeMs);
    } catch {
      // removed meanwhile
    }
  }
  return newest;
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
