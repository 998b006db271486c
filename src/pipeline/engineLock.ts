import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { processAlive } from "./log";

/**
 * The engine's own lock on a stack, as the file backend keeps it: one JSON file
 * per update in progress under `<state>/.pulumi/locks/…/<stack>/`, naming the
 * pid and host of the `pulumi` process that holds it. An update killed with its
 * process group (kill -9) leaves its file behind, and every later update of the
 * stack fails "locked". A lock whose process is gone on this host is dead:
 * removing it is what `pulumi cancel` does for a file backend. Other backends
 * release their locks themselves (the service expires them); nothing to do here.
 */
export interface EngineLock {
  file: string;
  pid?: number;
  host?: string;
  since?: string;
  /** Its process is gone (same host): safe to remove. */
  dead: boolean;
}

export function engineLocks(backendUrl: string, stage: string): EngineLock[] {
  return stageLockDirs(backendUrl, stage).flatMap((dir) =>
    readdirSync(dir)
      .map((entry) => join(dir, entry))
      .filter((path) => path.endsWith(".json") && statSync(path).isFile())
      .map(read),
  );
}

/** The directories under `<state>/.pulumi/locks` that hold `stage`'s lock files (file backend only). */
function stageLockDirs(backendUrl: string, stage: string): string[] {
  if (!backendUrl.startsWith("file://")) return [];
  const root = join(fileURLToPath(backendUrl), ".pulumi", "locks");
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    if (dir.split(/[\\/]/).at(-1) === stage) out.push(dir);
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

function read(file: string): EngineLock {
  try {
    const j = JSON.parse(readFileSync(file, "utf8"));
    const pid = Number.isSafeInteger(j?.pid) ? (j.pid as number) : undefined;
    const host = typeof j?.hostname === "string" ? (j.hostname as string) : undefined;
    return {
      file,
      pid,
      host,
      since: typeof j?.timestamp === "string" ? j.timestamp : undefined,
      dead: pid !== undefined && host === hostname() && !processAlive(pid),
    };
  } catch {
    return { file, dead: false };
  }
}

/**
 * The backend keeps each lock's blob attributes beside it (`<lock>.json.attrs`, gocloud's
 * fileblob); it writes them just before the lock itself, so one younger than this may belong
 * to a lock being taken.
 */
const ATTRS_SETTLE_MS = 60_000;

/**
 * Removes the dead locks of `stage` (only those) and returns them; live ones are left alone. Each
 * goes with its `.attrs` file, and an `.attrs` file whose lock is gone (left by an earlier clear)
 * goes too.
 */
export function clearDeadEngineLocks(backendUrl: string, stage: string): EngineLock[] {
  const dead = engineLocks(backendUrl, stage).filter((l) => l.dead);
  for (const lock of dead) {
    removeIfThere(lock.file);
    removeIfThere(`${lock.file}.attrs`);
  }
  for (const dir of stageLockDirs(backendUrl, stage)) {
    for (const entry of readdirSync(dir)) {
      if (!entry.endsWith(".json.attrs")) continue;
      const attrs = join(dir, entry);
      if (existsSync(attrs.slice(0, -".attrs".length))) continue;
      try {
        if (Date.now() - statSync(attrs).mtimeMs >= ATTRS_SETTLE_MS) removeIfThere(attrs);
      } catch {
        // removed meanwhile
      }
    }
  }
  return dead;
}

function removeIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

export const describeLock = (l: EngineLock): string =>
  `${l.file} (pid ${l.pid ?? "?"} on ${l.host ?? "?"}${l.since ? ` since ${l.since}` : ""}${l.dead ? ", process gone" : ""})`;
