import { spawn, type ChildProcess } from "node:child_process";

/** A TypeScript entry run by Node in a process group of its own, its output kept. */
export interface GroupRun {
  proc: ChildProcess;
  /** stdout and stderr as they arrived, interleaved. */
  out: () => string;
  /** Its exit code; -1 when a signal ended it. */
  exited: Promise<number>;
}

/**
 * `node --import tsx <entry> <args>` in its own process group (so a test can signal the group:
 * `process.kill(-run.proc.pid, …)`), with `env` as its whole environment.
 */
export function spawnGroup(
  entry: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): GroupRun {
  const proc = spawn(process.execPath, ["--import", "tsx", entry, ...args], {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number>((r) => proc.once("exit", (code) => r(code ?? -1)));
  return { proc, out: () => out, exited };
}
