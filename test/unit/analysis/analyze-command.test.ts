import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../../../src/cli/main";

const fixture = (name: string) => join(__dirname, "../../fixtures/analysis", name);

let stdout = "";
let stderr = "";
beforeEach(() => {
  stdout = "";
  stderr = "";
  process.exitCode = undefined;
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

async function analyze(...args: string[]): Promise<number> {
  return main(["analyze", ...args]);
}

describe("slipway analyze", () => {
  it("passes a healthy canary with exit 0 and one JSON object", async () => {
    expect(await analyze("--input", fixture("pass.json"), "--json")).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.verdict).toBe("pass");
    expect(out.metrics.map((m: { name: string; verdict: string }) => [m.name, m.verdict])).toEqual([
      ["errors", "pass"],
      ["latency_ms", "pass"],
    ]);
    for (const m of out.metrics) {
      expect(typeof m.reason).toBe("string");
      expect(typeof m.p).toBe("number");
      expect(m.canary.n).toBeGreaterThan(0);
    }
    expect(stderr).toBe("");
  });

  it("fails the documented example (error ratio 0.5% → 1.8%) with exit 3", async () => {
    expect(await analyze("--input", fixture("example.json"), "--json")).toBe(3);
    const out = JSON.parse(stdout);
    expect(out.verdict).toBe("fail");
    expect(out.metrics[0]).toMatchObject({ name: "errors", verdict: "fail" });
    expect(out.metrics[0].p).toBeCloseTo(0.0017555, 6); // Fisher's exact, one-sided
    // two latency values each is below minSamples 200
    expect(out.metrics[1]).toMatchObject({
      name: "latency_ms",
      verdict: "inconclusive",
      critical: true,
    });
  });

  it("fails a latency regression with a human-readable table", async () => {
    expect(await analyze("--input", fixture("fail-latency.json"))).toBe(3);
    expect(stdout).toMatch(/^verdict: fail$/m);
    expect(stdout).toMatch(/^FAIL\s+latency_ms\s+samples\s+canary n=240\s+baseline n=240\s+p=/m);
    expect(stdout).toMatch(/^PASS\s+errors \(critical\)\s+ratio/m);
  });

  it("is inconclusive with too little canary traffic: exit 5", async () => {
    expect(await analyze("--input", fixture("inconclusive.json"), "--json")).toBe(5);
    const out = JSON.parse(stdout);
    expect(out.verdict).toBe("inconclusive");
    expect(out.metrics[0].reason).toBe(
      "too little data: canary has 120 requests, needs at least 200",
    );
  });

  it.each([
    ["bad-count.json", "metrics[0].canary.bad: 600 is greater than total 500"],
    ["negative-count.json", "metrics[0].baseline.bad: -3 is negative"],
    ["unknown-type.json", 'metrics[1].type: "histogram" is not a metric type'],
    ["not-json.json", "not valid JSON"],
    ["missing.json", "--input"],
  ])("rejects %s with exit 2 and names the problem on stderr", async (file, message) => {
    expect(await analyze("--input", fixture(file), "--json")).toBe(2);
    expect(stderr).toContain(message);
    expect(stdout).toBe("");
  });

  it("requires --input (usage error, exit 2)", async () => {
    expect(await analyze()).toBe(2);
  });

  it("refuses a device, a FIFO and a file over 16 MiB at once (exit 2), never reading without end", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-analyze-"));
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const big = join(dir, "big.json");
    writeFileSync(big, Buffer.alloc(16 * 1024 * 1024 + 1, 0x20));
    for (const [file, says] of [
      ["/dev/zero", "not a regular file (a character device)"],
      [fifo, "not a regular file (a FIFO)"],
      [dir, "not a regular file (a directory)"],
      [big, "16777217 bytes; allowed: a file of at most 16777216 bytes"],
    ] as const) {
      stderr = "";
      expect(await analyze("--input", file)).toBe(2);
      expect(stderr).toContain(`slipway analyze: --input ${file}: ${says}`);
      expect(stdout).toBe("");
    }
  });
});
