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
  if (!backendUrl.startsWith("file://")) return [];
  const root = join(fileURLToPath(backendUrl), ".pulumi", "locks");
  if (!existsSync(root)) return [];
  const out: EngineLock[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith(".json") && dir.split(/[\\/]/).at(-1) === stage) out.push(read(path));
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

/** Removes the dead locks of `stage` (only those) and returns them; live ones are left alone. */
export function clearDeadEngineLocks(backendUrl: string, stage: string): EngineLock[] {
  const dead = engineLocks(backendUrl, stage).filter((l) => l.dead);
  for (const lock of dead) {
    try {
      unlinkSync(lock.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return dead;
}

export const describeLock = (l: EngineLock): string =>
  `${l.file} (pid ${l.pid ?? "?"} on ${l.host ?? "?"}${l.since ? ` since ${l.since}` : ""}${l.dead ? ", process gone" : ""})`;
