import { copyFileSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../../src/cli/main";
import { ConfigError, MAX_CONFIG_STRING_BYTES, parseStageConfig } from "../../../src/config/load";
import { LeaseCorruptError, StageLease } from "../../../src/pipeline/context";
import { readStageConfig } from "../../../src/pipeline/stackFile";
import { ROOT, stackConfig } from "../support/harness";

/** Issue 12, observation 7: the smaller items, each one case. */

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

async function slipway(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    return true;
  };
  const o = vi.spyOn(process.stdout, "write").mockImplementation(capture(out) as any);
  const e = vi.spyOn(process.stderr, "write").mockImplementation(capture(err) as any);
  try {
    const status = await main(args);
    return { status, stdout: out.join(""), stderr: err.join("") };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

const where = () => {
  const dir = mkdtempSync(join(tmpdir(), "slipway-small-"));
  return ["--project-dir", ROOT, "--backend", `file://${join(dir, "state")}`, "--log-dir", dir];
};
const image = `registry.local/checkout@sha256:${"c".repeat(64)}`;

describe("exit codes follow the README table", () => {
  it("approve --step NaN is a usage error (2)", async () => {
    const run = await slipway([
      "approve",
      "--stage",
      "local",
      "--release",
      "r-1",
      "--step",
      "NaN",
      ...where(),
    ]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--step.*got "NaN"; allowed: a step number from 1/);
  });

  it.each([["status"], ["history"]])(
    "%s --stage nope is refused (6), like release",
    async (cmd) => {
      const run = await slipway([cmd, "--stage", "nope", ...where()]);
      expect(run.status).toBe(6);
      expect(run.stderr).toMatch(/unknown stage nope; stages: local, prod, staging/);
      const rel = await slipway([
        "release",
        "--stage",
        "nope",
        "--image",
        image,
        "--version",
        "1",
        ...where(),
      ]);
      expect(rel.status).toBe(6);
    },
  );

  it("release without --image (or --version) is a usage error (2)", async () => {
    const run = await slipway(["release", "--stage", "local", "--version", "1", ...where()]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--image <repo@sha256:\.\.\.> required/);
    expect(
      (await slipway(["release", "--stage", "local", "--image", image, ...where()])).status,
    ).toBe(2);
  });
});

describe("stage names", () => {
  it.each([["release"], ["status"], ["history"], ["rollback"]])(
    "%s --stage ../../../../etc/passwd is refused before any path is built",
    async (cmd) => {
      const extra = cmd === "release" ? ["--image", image, "--version", "1"] : [];
      const run = await slipway([cmd, "--stage", "../../../../etc/passwd", ...extra, ...where()]);
      expect(run.status).toBe(6);
      expect(run.stderr + run.stdout).toMatch(
        /--stage "..\/..\/..\/..\/etc\/passwd": not a stage name; allowed: 1 to 63 lowercase letters, digits and "-"/,
      );
    },
  );
});

describe("config input", () => {
  it("refuses a 10 MB string, naming the key and the limit", () => {
    const raw = structuredClone(stackConfig("local")) as any;
    raw.service.env.BIG = "x".repeat(10 * 1024 * 1024);
    let error: unknown;
    try {
      parseStageConfig(raw, "local");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `slipway:service\\.env\\.BIG: got "x{20}…"; is a string of 10485760 bytes; allowed: at most ${MAX_CONFIG_STRING_BYTES} bytes`,
      ),
    );
    expect((error as Error).message.length).toBeLessThan(2000);
  });

  it("reports .nan and .inf as such, not as null", () => {
    const raw = structuredClone(stackConfig("local")) as any;
    raw.traffic.canaryWeight = Number.NaN;
    raw.service.cpu = Number.POSITIVE_INFINITY;
    expect(() => parseStageConfig(raw, "local")).toThrow(
      /slipway:traffic\.canaryWeight: got \.nan;/,
    );
    expect(() => parseStageConfig(raw, "local")).toThrow(/slipway:service\.cpu: got \.inf;/);
  });

  it("names the file of a YAML parse error", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-yaml-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    writeFileSync(join(dir, "Pulumi.local.yaml"), "config:\n  slipway:traffic: {stable: blue\n");
    expect(() => readStageConfig(dir, "local")).toThrow(
      new RegExp(`${join(dir, "Pulumi.local.yaml").replace(/[.]/g, "\\.")}: not valid YAML`),
    );
  });
});

describe("a corrupted lease", () => {
  it("says how to recover instead of blocking forever", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-lease-"));
    const file = join(dir, "local.lock");
    writeFileSync(file, '{"pid": 12');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    expect(() => StageLease.acquire(dir, "local", "release")).toThrow(LeaseCorruptError);
    expect(() => StageLease.acquire(dir, "local", "release")).toThrow(
      new RegExp(
        `lease .*local\\.lock is corrupted .*If no slipway command is running on stage local .*rm .*local\\.lock`,
      ),
    );
  });
});
