import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

/**
 * bin/engine-watch.js with real processes in the shape Pulumi gives them: an "engine" that leads
 * its process group starts a "host" named pulumi-language-nodejs in a group of its own (as the
 * engine's RegisterProcessGroup does), which starts a "program" that never finishes (one blocked
 * on a resource monitor that nobody answers, or one that spins) and watches its engine.
 */

const WATCH = join(__dirname, "..", "..", "..", "bin", "engine-watch.js");

function runningPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const dirs: string[] = [];
const pids: number[] = [];

afterEach(() => {
  for (const pid of pids.splice(0))
    if (runningPid(pid))
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * Starts engine → host → program; resolves with their pids once the program watches. `rest` is
 * what the program does then, forever.
 */
async function chain(
  rest: string,
): Promise<{ dir: string; engine: number; host: number; program: number }> {
  const dir = mkdtempSync(join(tmpdir(), "slipway-engine-watch-"));
  dirs.push(dir);
  const program = join(dir, "program.js");
  writeFileSync(
    program,
    [
      `require(${JSON.stringify(WATCH)}).watchEngine({ intervalMs: 100 });`,
      `require("node:fs").writeFileSync(${JSON.stringify(join(dir, "program.pid"))}, String(process.pid));`,
      rest,
    ].join("\n"),
  );
  const host = join(dir, "pulumi-language-nodejs");
  writeFileSync(
    host,
    [
      `#!${process.execPath}`,
      `const { spawn } = require("node:child_process");`,
      `const fs = require("node:fs");`,
      `const err = fs.openSync(${JSON.stringify(join(dir, "program.stderr"))}, "a");`,
      `spawn(process.execPath, [${JSON.stringify(program)}], { stdio: ["ignore", "ignore", err] });`,
      `fs.writeFileSync(${JSON.stringify(join(dir, "host.pid"))}, String(process.pid));`,
      "setInterval(() => {}, 1000);",
    ].join("\n"),
    { mode: 0o755 },
  );
  const engine = spawn(
    process.execPath,
    [
      "-e",
      `require("node:child_process").spawn(${JSON.stringify(host)}, [], { detached: true, stdio: "ignore" }); setInterval(() => {}, 1000);`,
    ],
    { detached: true, stdio: "ignore" },
  );
  engine.unref();
  pids.push(engine.pid!);
  await until(
    "the chain started",
    () => existsSync(join(dir, "program.pid")) && existsSync(join(dir, "host.pid")),
    10_000,
  );
  const hostPid = Number(readFileSync(join(dir, "host.pid"), "utf8"));
  const programPid = Number(readFileSync(join(dir, "program.pid"), "utf8"));
  pids.push(hostPid, programPid);
  return { dir, engine: engine.pid!, host: hostPid, program: programPid };
}

describe("engine-watch: the program and its language host end with their engine", () => {
  it("a SIGKILL of the engine's process group: the program and the host exit within seconds, even a program whose main thread spins", async () => {
    const c = await chain("for (;;);");
    // A live engine keeps them running.
    await new Promise((r) => setTimeout(r, 500));
    expect([runningPid(c.host), runningPid(c.program)]).toEqual([true, true]);

    process.kill(-c.engine, "SIGKILL");
    await until("program and host gone", () => !runningPid(c.program) && !runningPid(c.host), 5000);
    expect(readFileSync(join(c.dir, "program.stderr"), "utf8")).toContain(
      `the Pulumi engine (pid ${c.engine}) that started its language host is gone`,
    );
  });

  it("a killed host: the program exits", async () => {
    const c = await chain("setInterval(() => {}, 1000);");
    process.kill(c.host, "SIGKILL");
    await until("program gone", () => !runningPid(c.program), 5000);
    expect(readFileSync(join(c.dir, "program.stderr"), "utf8")).toContain(
      `its parent (pid ${c.host}) is gone`,
    );
    expect(runningPid(c.engine)).toBe(true);
    process.kill(-c.engine, "SIGKILL");
  });
});
