import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ExitCode } from "../../../src/domain";
import { readRawStackConfig, readStageConfig } from "../../../src/pipeline/stackFile";
import { slipway, type Run } from "../support/cli";
import { ROOT } from "../support/harness";

/**
 * `slipway init`: what it writes is a project the pipeline reads as it reads this repository
 * (readStageConfig, from files), with one key set in every stage and every key declared; what
 * it refuses leaves the directory as it was.
 */
const scratch = mkdtempSync(join(tmpdir(), "slipway-init-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const STAGES = ["local", "staging", "prod"] as const;
const REPO_PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const REPO_CONFIG = (parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as { config: any })
  .config as Record<string, { description?: string; default?: unknown; type?: string }>;

const stackKeys = (dir: string, stage: string) =>
  Object.keys(
    (parse(readFileSync(join(dir, `Pulumi.${stage}.yaml`), "utf8")) as { config: object }).config,
  ).sort();

describe.each([
  { service: "payments", runtime: "go", platform: "kubernetes" },
  { service: "ledger", runtime: "rust", platform: "kubernetes" },
  { service: "checkout-api", runtime: "go", platform: "aws" },
] as const)("slipway init --runtime $runtime --platform $platform", (c) => {
  const dir = join(scratch, `${c.runtime}-${c.platform}`, c.service);
  let run: Run;

  it("writes the project into a directory it creates", async () => {
    run = await slipway([
      "init",
      dir,
      "--service",
      c.service,
      "--runtime",
      c.runtime,
      "--platform",
      c.platform,
    ]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(ExitCode.ok);
    expect(readdirSync(dir).sort()).toEqual(
      [
        ".gitignore",
        "Pulumi.local.yaml",
        "Pulumi.prod.yaml",
        "Pulumi.staging.yaml",
        "Pulumi.yaml",
        "README.md",
        "index.ts",
        "package.json",
        "tsconfig.json",
      ].sort(),
    );
    expect(run.stdout).toContain("Pulumi.local.yaml");
  });

  it("writes stack files the pipeline reads into valid stage configs", () => {
    for (const stage of STAGES) {
      const config = readStageConfig(dir, stage);
      expect(config.stage).toBe(stage);
      expect(config.service).toMatchObject({ name: c.service, runtime: c.runtime, port: 8080 });
      expect(config.platform).toBe(stage === "local" ? "kubernetes" : c.platform);
    }
    // The local stage needs no cluster: it renders manifests.
    expect(readStageConfig(dir, "local").kubernetes.renderYamlToDirectory).toBe(
      ".slipway/rendered/local",
    );
    expect(readStageConfig(dir, "prod").promotion.from).toBe("staging");
  });

  it("gives the three stages the same keys", () => {
    const [local, ...others] = STAGES.map((stage) => stackKeys(dir, stage));
    expect(local!.length).toBeGreaterThan(5);
    for (const keys of others) expect(keys).toEqual(local);
  });

  it("declares in Pulumi.yaml, from Slipway's own, every key the stack files use", () => {
    const text = readFileSync(join(dir, "Pulumi.yaml"), "utf8");
    const project = parse(text) as {
      name: string;
      main: string;
      runtime: unknown;
      config: Record<string, Record<string, unknown>>;
    };
    expect(project.name).toBe(c.service);
    expect(project.main).toBe("index.ts");
    expect(project.runtime).toEqual({ name: "nodejs", options: { typescript: true } });
    // Pulumi's rule for keys outside the project's namespace: no type, no default, a value.
    for (const [key, decl] of Object.entries(project.config)) {
      expect(Object.keys(decl).sort(), key).toEqual(["description", "value"]);
      expect(decl.value, key).toEqual(REPO_CONFIG[key]!.default);
      expect(decl.description, key).toBe(REPO_CONFIG[key]!.description);
    }
    // Every key of Slipway's Pulumi.yaml is there: with its default, or named as required.
    for (const [key, decl] of Object.entries(REPO_CONFIG))
      if ("default" in decl) expect(project.config, key).toHaveProperty([key]);
      else expect(text, key).toMatch(new RegExp(`^# .*${key}[,.]`, "m"));
    for (const stage of STAGES)
      for (const key of stackKeys(dir, stage)) expect(REPO_CONFIG, key).toHaveProperty([key]);
    // The pipeline reads the declared values as the engine does (keys no stack file sets).
    expect(readRawStackConfig(dir, "local")).toMatchObject({ notifications: {}, release: {} });
  });

  it("writes the two-line program on slipway/program and a package at this version", () => {
    const program = readFileSync(join(dir, "index.ts"), "utf8");
    expect(program).toMatch(/^import \{ slipwayStage \} from "slipway\/program";$/m);
    expect(program).toMatch(/^export = slipwayStage\(\);$/m);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const sdk = c.platform === "aws" ? "@pulumi/aws" : "@pulumi/kubernetes";
    expect(manifest).toMatchObject({ name: c.service, private: true });
    expect(manifest.dependencies).toEqual({
      slipway: `^${REPO_PACKAGE.version}`,
      "@pulumi/pulumi": REPO_PACKAGE.peerDependencies["@pulumi/pulumi"],
      [sdk]: REPO_PACKAGE.dependencies[sdk],
      "ts-node": REPO_PACKAGE.devDependencies["ts-node"],
      typescript: REPO_PACKAGE.dependencies.typescript,
    });
    expect(JSON.parse(readFileSync(join(dir, "tsconfig.json"), "utf8")).files).toEqual([
      "index.ts",
    ]);
    expect(readFileSync(join(dir, ".gitignore"), "utf8")).toMatch(/^\.slipway\/$/m);
  });

  it("has the README set the tester header's secret before the first pulumi up", () => {
    // Without it every hand-run `pulumi up` makes the value with a dynamic provider.
    const lines = readFileSync(join(dir, "README.md"), "utf8").split("\n");
    const set = lines.findIndex((l) =>
      /^pulumi config set --secret --stack local slipway:testerToken "\$\(/.test(l),
    );
    const up = lines.findIndex((l) => l.startsWith("pulumi up --stack local"));
    expect(set).toBeGreaterThan(-1);
    expect(up).toBeGreaterThan(set);
  });
});

describe("slipway init refuses before writing anything", () => {
  it("a directory that is not empty, and leaves it as it was", async () => {
    const dir = join(scratch, "taken");
    mkdirSync(dir);
    writeFileSync(join(dir, "main.go"), "package main\n");
    const run = await slipway(["init", dir, "--service", "payments", "--runtime", "go"]);
    expect(run.status).toBe(ExitCode.usage);
    expect(run.stderr).toContain(`${dir} is not empty (main.go)`);
    expect(run.stderr).toContain("Nothing was written");
    expect(readdirSync(dir)).toEqual(["main.go"]);
    expect(readFileSync(join(dir, "main.go"), "utf8")).toBe("package main\n");
  });

  it.each([
    ["a service name the schema refuses", "--service", "Payments_API", "--runtime", "go"],
    ["a service name longer than 24", "--service", "a".repeat(25), "--runtime", "go"],
    ["an unknown runtime", "--runtime", "java", "--service", "payments"],
    ["an unknown platform", "--platform", "gcp", "--service", "payments", "--runtime", "go"],
  ])("%s, naming the flag and the value", async (_what, flag, value, ...others) => {
    const dir = join(scratch, "refused");
    const run = await slipway(["init", dir, flag, value, ...others]);
    expect(run.status).toBe(ExitCode.usage);
    expect(run.stderr).toMatch(new RegExp(`^slipway init: ${flag} "${value}"[^\\n]*: allowed: `));
    expect(run.stderr).toContain("Nothing was written");
    expect(existsSync(dir)).toBe(false);
  });

  it("an empty directory is fine", async () => {
    const dir = join(scratch, "empty");
    mkdirSync(dir);
    const run = await slipway(["init", dir, "--service", "payments", "--runtime", "rust"]);
    expect(run.status).toBe(ExitCode.ok);
    expect(readStageConfig(dir, "staging").service.runtime).toBe("rust");
  });
});

describe("slipway init needs no engine", () => {
  it("runs through npm run slipway with an empty toolchain and cache, and builds nothing", () => {
    const empty = mkdtempSync(join(scratch, "no-toolchain-"));
    const dir = join(scratch, "from-with-env");
    const run = spawnSync(
      "bash",
      [
        "scripts/with-env.sh",
        "--cli",
        "node",
        "--import",
        "tsx",
        "src/cli/main.ts",
        "init",
        dir,
        "--service",
        "payments",
        "--runtime",
        "go",
      ],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: {
          ...process.env,
          SLIPWAY_TOOLCHAIN_HOME: join(empty, "toolchain"),
          XDG_CACHE_HOME: join(empty, "cache"),
        },
        timeout: 60_000,
      },
    );
    expect(run.stderr).not.toMatch(/toolchain|building/i);
    expect(run.status).toBe(0);
    expect(existsSync(join(dir, "Pulumi.local.yaml"))).toBe(true);
    expect(readdirSync(empty)).toEqual([]);
  });
});
