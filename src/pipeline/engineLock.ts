import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { processAlive } from "./log";
import { S3Store } from "../store/s3Store";
import { parseStoreUrl } from "../store/url";

/**
 * The engine's own lock on a stack, as the file backend keeps it: one JSON file
 * per update in progress under `<state>/.pulumi/locks/…/<stack>/`, naming the
 * pid and host of the `pulumi` process that holds it. An update killed with its
 * process group (kill -9) leaves its file behind, and every later update of the
 * stack fails "locked". A lock whose process is gone on this host is dead:
 * removing it is what `pulumi cancel` does for a file backend. The S3 backend keeps the
 * same JSON as objects under `<prefix>/.pulumi/locks/…/<stack>/` (stageEngineLocks below).
 * Pulumi Cloud releases its locks itself (the service expires them); nothing to do there.
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
    return parseLock(file, readFileSync(file, "utf8"));
  } catch {
    return { file, dead: false };
  }
}

/** A lock's JSON (`pid`, `hostname`, `timestamp`), from a file or an object named `file`. */
function parseLock(file: string, text: string): EngineLock {
  try {
    const j = JSON.parse(text);
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

/** Lock options on a shared backend: hosts whose runner's lease was taken over, and the environment. */
interface SharedLockOptions {
  deadHosts?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * The engine's locks on `stage` on any DIY backend: the file backend's files, or the S3 backend's
 * objects (`s3://…/.pulumi/locks/…/<stage>/<id>.json`). A lock is dead when its process is gone on
 * this host, or when it was taken on a host in `deadHosts`: the host of a runner whose lease
 * expired and was taken over (a runner that died or stopped past its TTL; the lease says its
 * updates are over, and no other runner may run one meanwhile).
 */
export async function stageEngineLocks(
  backendUrl: string,
  stage: string,
  options: SharedLockOptions = {},
): Promise<EngineLock[]> {
  if (!isS3(backendUrl)) return engineLocks(backendUrl, stage);
  return withBackendBucket(backendUrl, options.env, async (bucket, root) =>
    (await s3Locks(bucket, root, stage, options.deadHosts)).map((l) => l.lock),
  );
}

/** Removes the dead locks of `stage` on any DIY backend (stageEngineLocks) and returns them. */
export async function clearDeadStageEngineLocks(
  backendUrl: string,
  stage: string,
  options: SharedLockOptions = {},
): Promise<EngineLock[]> {
  if (!isS3(backendUrl)) return clearDeadEngineLocks(backendUrl, stage);
  return withBackendBucket(backendUrl, options.env, async (bucket, root) => {
    const dead = (await s3Locks(bucket, root, stage, options.deadHosts)).filter((l) => l.lock.dead);
    for (const { key } of dead) await bucket.remove(key);
    return dead.map((l) => l.lock);
  });
}

const isS3 = (backendUrl: string) => /^s3:\/\//i.test(backendUrl);

/** The lock objects of `stage` under `root`, each with its key; this host's judged by process alone. */
async function s3Locks(
  bucket: S3Store,
  root: string,
  stage: string,
  deadHosts: string[] = [],
): Promise<{ key: string; lock: EngineLock }[]> {
  const keys = (await bucket.list(root, 1000))
    .map((o) => o.key)
    .filter((key) => key.endsWith(".json") && key.split("/").at(-2) === stage);
  const found: { key: string; lock: EngineLock }[] = [];
  for (const key of keys) {
    const body = (await bucket.get(key))?.body;
    if (body === undefined) continue; // released meanwhile
    const lock = parseLock(bucket.objectUrl(key), body);
    if (lock.host !== undefined && lock.host !== hostname() && deadHosts.includes(lock.host))
      lock.dead = true;
    found.push({ key, lock });
  }
  return found;
}

/** The backend's bucket, and the key prefix of its engine locks; closed after `body`. */
async function withBackendBucket<T>(
  backendUrl: string,
  env: NodeJS.ProcessEnv | undefined,
  body: (bucket: S3Store, root: string) => Promise<T>,
): Promise<T> {
  const location = parseStoreUrl(backendUrl, env ?? process.env);
  if (location.kind !== "s3") throw new Error(`not an s3:// backend: ${backendUrl}`);
  const { kind: _kind, ...s3 } = location;
  const bucket = new S3Store(s3);
  try {
    return await body(bucket, `${s3.prefix ? `${s3.prefix}/` : ""}.pulumi/locks/`);
  } finally {
    bucket.close();
  }
}
