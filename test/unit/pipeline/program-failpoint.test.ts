import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const FIXTURE = join(__dirname, "fixtures", "program-failpoint", "index.ts");

/**
 * The process chain the engine makes, with real processes: "engine" (outer bash) → "language
 * host" (inner bash) → the program at `during:setWeight`. The host reports the program's exit.
 */
function chain() {
  const marker = join(mkdtempSync(join(tmpdir(), "slipway-failpoint-")), "marker");
  const program = `'${process.execPath}' --import tsx '${FIXTURE}'`;
  const engine = spawn(
    "bash",
    ["-c", `bash -c "${program}; echo host: program exited \\$?" & wait`],
    {
      env: {
        ...process.env,
        SLIPWAY_FAILPOINT: "during:setWeight",
        SLIPWAY_FAILPOINT_FILE: marker,
        SLIPWAY_FAILPOINT_UPDATE: "setWeight",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  engine.stdout!.on("data", (d) => (out += d));
  engine.stderr!.on("data", (d) => (out += d));
  const until = async (re: RegExp, ms = 15_000) => {
    for (const end = Date.now() + ms; !re.test(out);) {
      if (Date.now() > end) throw new Error(`no ${re} within ${ms} ms; output:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const reached = async () => {
    for (const end = Date.now() + 15_000; !existsSync(marker);) {
      if (Date.now() > end) throw new Error(`the program never reached the failpoint:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { engine, marker, until, reached, out: () => out };
}

describe("the program's during:<update> failpoint", () => {
  it("holds the program until the marker is removed, then lets it go on", async () => {
    const c = chain();
    await c.reached();
    await new Promise((r) => setTimeout(r, 500));
    expect(c.out()).not.toContain("declared");
    rmSync(c.marker);
    await c.until(/host: program exited 0/);
    expect(c.out()).toContain("declared");
  });

  it("exits, declaring nothing, once its engine is killed (it must not outlive it)", async () => {
    const c = chain();
    await c.reached();
    c.engine.kill("SIGKILL");
    await c.until(/host: program exited 1/);
    expect(c.out()).toContain("failpoint during:setWeight: the engine is gone; the program exits");
    expect(c.out()).not.toContain("declared");
    expect(existsSync(c.marker)).toBe(true);
  });
});
