import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Resolves a command on PATH, or throws: a missing server fails the tier, it never skips it. */
export function requireCommand(name: string, hint: string): string {
  if (name.startsWith("/")) {
    if (existsSync(name)) return name;
  } else {
    for (const dir of (process.env.PATH ?? "").split(":")) {
      const full = `${dir}/${name}`;
      if (dir && existsSync(full)) return full;
    }
  }
  throw new Error(`${name} is not installed; run \`bash scripts/install-test-servers.sh\` (${hint})`);
}

export interface Started {
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts a server process, keeping its output for error messages. */
export function startProcess(command: string, args: string[]): Started {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `probe` until it resolves true, or throws with the server's output after `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, started?: Started): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (started && (started.process.exitCode !== null || started.process.signalCode !== null)) {
      throw new Error(`${what}: the process exited (${started.process.exitCode ?? started.process.signalCode}):\n${started.output()}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms (${String(lastError ?? "probe never succeeded")})\n${started?.output() ?? ""}`);
}
