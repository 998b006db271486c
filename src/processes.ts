import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";

/**
 * Child processes of the rehearsal (slot processes, Prometheus) and the helpers the
 * local cluster and the test servers share: started with their output kept for error
 * messages, stopped by pid, and recorded in a pid file so that a run killed with
 * SIGKILL has its leftovers stopped by the next.
 */

/** A free TCP port on 127.0.0.1 (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no free port on 127.0.0.1")),
      );
    });
  });
}

/** The full path of a command on PATH, or undefined. */
export function which(name: string): string | undefined {
  if (name.startsWith("/")) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** The last 8 kB of stdout and stderr. */
  output(): string;
  exited(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  onExit?: (code: number | null, signal: string | null) => void,
): Child {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      gone = true;
      onExit?.(code, signal);
      resolve();
    }),
  );
  child.once("error", (err) => {
    output += `\n${err.message}`;
  });
  return {
    name,
    process: child,
    pid: child.pid,
    output: () => output,
    exited: () => gone,
    stop: async (graceMs = 5000) => {
      if (gone) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it resolves true; throws with the process's output after `timeoutMs` or when it exits. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  child?: Child,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child?.exited())
      throw new Error(
        `${what}: the process exited (code ${child.process.exitCode ?? child.process.signalCode}):\n${child.output().trim()}`,
      );
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${what}: not ready after ${timeoutMs} ms (${String((lastError as Error)?.message ?? lastError ?? "probe never succeeded")})\n${child?.output().trim() ?? ""}`,
  );
}

export async function httpOk(url: string, timeoutMs = 1000): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return res.ok;
}

/**
 * The pids this rehearsal started, on disk. A run that dies without cleaning
 * up (SIGKILL, power cut) leaves the file behind; the next run stops exactly
 * those pids, and only while they still run the command that was recorded.
 */
export class PidFile {
  private entries = new Map<number, { name: string; command: string }>();

  constructor(readonly path: string) {}

  add(child: Child, command: string): void {
    this.entries.set(child.pid, { name: child.name, command });
    this.flush();
  }

  remove(pid: number): void {
    if (this.entries.delete(pid)) this.flush();
  }

  private flush(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(
      this.path,
      JSON.stringify(
        [...this.entries].map(([pid, e]) => ({ pid, ...e })),
        null,
        2,
      ),
    );
  }

  /** Stops what a previous run left behind; returns what it stopped. */
  static async reapLeftovers(path: string): Promise<string[]> {
    if (!existsSync(path)) return [];
    let entries: { pid: number; name: string; command: string }[];
    try {
      entries = JSON.parse(readFileSync(path, "utf8"));
    } catch {
      return [];
    }
    const stopped: string[] = [];
    for (const e of entries) {
      if (!runs(e.pid, e.command)) continue;
      try {
        process.kill(e.pid, "SIGTERM");
        for (let i = 0; i < 50 && runs(e.pid, e.command); i++)
          await new Promise((r) => setTimeout(r, 100));
        if (runs(e.pid, e.command)) process.kill(e.pid, "SIGKILL");
        stopped.push(`${e.name} (pid ${e.pid})`);
      } catch {
        // Gone in the meantime.
      }
    }
    writeFileSync(path, "[]");
    return stopped;
  }
}

/** Whether `pid` is alive and its executable is `command` (pids get reused). */
function runs(pid: number, command: string): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
    return argv0 === command;
  } catch {
    return false;
  }
}

/** Pids of every live descendant of `pid` (from /proc), deepest first. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command name: state, ppid, …
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      walk(c);
      out.push(c);
    }
  };
  walk(pid);
  return out;
}
