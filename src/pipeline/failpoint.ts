import { existsSync, readFileSync } from "node:fs";
import { writeFileWhole } from "../files";
import { processAlive } from "./log";

/**
 * Fault injection, for the fault tests only (as etcd's and TiKV's failpoints):
 * inert unless `SLIPWAY_FAILPOINT=<when>:<kind>` is set. On reaching that point
 * the process writes `SLIPWAY_FAILPOINT_FILE` and blocks (at most 60 s, or until a
 * SIGINT/SIGTERM), so a test can kill it at exactly that point.
 *
 * - `before:<update>`: `update.started` is recorded, the engine has not started;
 * - `during:<update>`: the engine holds the update (its lock exists): the program,
 *   which runs inside the update, blocks before declaring anything, until the test
 *   removes the marker file (then it goes on, as the cancelled engine lets it) or the
 *   engine is gone (a SIGKILL: then it exits rather than outlive its engine);
 * - `landed:<update>`: the engine has applied the routing resource, and the program blocks
 *   before the stack's outputs are recorded (a kill here leaves the route ahead of the outputs);
 * - `after:<update>`: the engine finished, `update.succeeded` is not recorded yet;
 * - `during:pause` (after `pause.started`), `during:analysis` (after the first measurement).
 *
 * `<update>` is a transition kind: deploy, setWeight, promote, scaleDown, rollback.
 */
const WHEN = ["before", "during", "landed", "after"] as const;
const UPDATES = ["deploy", "setWeight", "promote", "scaleDown", "rollback"] as const;
const KINDS = [...UPDATES, "pause", "analysis"] as const;
type When = (typeof WHEN)[number];
type Kind = (typeof KINDS)[number];

/** The update kind the pipeline tells the engine (and so the program) it is running. */
export const FAILPOINT_UPDATE_ENV = "SLIPWAY_FAILPOINT_UPDATE";
const BLOCK_MS = 60_000;

/** The armed failpoint, or undefined; a bad value is an error naming the variable. */
export function armedFailpoint(
  env: NodeJS.ProcessEnv = process.env,
): { when: When; kind: Kind; file: string } | undefined {
  const value = env.SLIPWAY_FAILPOINT;
  if (value === undefined || value === "") return undefined;
  const [when, kind, extra] = value.split(":");
  const ok =
    extra === undefined &&
    (WHEN as readonly string[]).includes(when!) &&
    (KINDS as readonly string[]).includes(kind!) &&
    (when === "during" || (UPDATES as readonly string[]).includes(kind!));
  if (!ok)
    throw new Error(
      `SLIPWAY_FAILPOINT=${JSON.stringify(value)}: not a failpoint; allowed: before|during|landed|after:${UPDATES.join("|")}, or during:pause|analysis (fault injection for tests; unset it otherwise)`,
    );
  const file = env.SLIPWAY_FAILPOINT_FILE;
  if (!file)
    throw new Error("SLIPWAY_FAILPOINT is set but SLIPWAY_FAILPOINT_FILE (the marker file) is not");
  return { when: when as When, kind: kind as Kind, file };
}

/** Blocks here when this point is the armed one (see above); returns at once otherwise. */
export async function failpoint(when: When, kind: string): Promise<void> {
  const fp = armedFailpoint();
  if (!fp || fp.when !== when || fp.kind !== kind) return;
  // Whole or not at all: the test polls for the marker and reads the point from it.
  writeFileWhole(fp.file, `${when}:${kind} pid ${process.pid}\n`);
  // A signal ends the block, so the code after the point sees it as it would have there.
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    const timer = setTimeout(done, BLOCK_MS);
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}

/**
 * The program's side of `during:<update>`: blocks (synchronously: the program must not declare
 * anything meanwhile) before anything is declared, while the marker file exists, at most 60 s.
 * The language host and this program are not in the release's process group, so a SIGKILL of
 * that group leaves them behind: the program exits once the engine (the language host's
 * parent) is gone.
 */
export function programFailpoint(env: NodeJS.ProcessEnv = process.env): void {
  const fp = armedFailpoint(env);
  if (!fp || fp.when !== "during" || fp.kind !== env[FAILPOINT_UPDATE_ENV]) return;
  holdProgram(fp);
}

/**
 * The program's side of `landed:<update>`: once `routed` (the stack's routing output, known when
 * the engine has applied the routing resource) resolves, blocks as `during:` does, before the
 * program hands the engine the stack's outputs.
 */
export function programFailpointLanded(
  routed: { apply(f: (value: unknown) => unknown): unknown },
  env: NodeJS.ProcessEnv = process.env,
): void {
  const fp = armedFailpoint(env);
  if (!fp || fp.when !== "landed" || fp.kind !== env[FAILPOINT_UPDATE_ENV]) return;
  routed.apply((value) => {
    holdProgram(fp);
    return value;
  });
}

/** Writes the marker and blocks the program (synchronously) while it exists, at most 60 s. */
function holdProgram(fp: { when: When; kind: Kind; file: string }): void {
  writeFileWhole(fp.file, `${fp.when}:${fp.kind} pid ${process.pid}\n`);
  const engine = parentOf(process.ppid);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (const end = Date.now() + BLOCK_MS; Date.now() < end && existsSync(fp.file);) {
    if (engine !== undefined && !processAlive(engine)) {
      process.stderr.write(
        `failpoint ${fp.when}:${fp.kind}: the engine is gone; the program exits\n`,
      );
      process.exit(1);
    }
    Atomics.wait(cell, 0, 0, 100);
  }
}

/** A process's parent pid, from /proc (Linux); undefined where it cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return ppid > 1 ? ppid : undefined;
  } catch {
    return undefined;
  }
}
