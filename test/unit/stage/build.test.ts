import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  buildProgram,
  ensureBuilt,
  manifestPath,
  sourceFiles,
  staleness,
} from "../../../src/programBuild";
import { scratchStage } from "../../../src/rehearsal/scratch";
import { scratchProject } from "../../engine/support/project";

const REPO = join(__dirname, "..", "..", "..");
const RUN_PATH = join(REPO, "bin", "program-run.js");

/** A project laid out like Slipway's: an entry file, components/, src/, a build config. */
function project(): string {
  const root = mkdtempSync(join(tmpdir(), "slipway-build-"));
  const files: Record<string, string> = {
    "tsconfig.json": JSON.stringify({
      compilerOptions: { target: "ES2022", module: "commonjs", esModuleInterop: true },
    }),
    "tsconfig.build.json": JSON.stringify({
      extends: "./tsconfig.json",
      compilerOptions: { outDir: "dist", rootDir: "." },
    }),
    "index.ts":
      'import { greet } from "./components/greet";\nexport const out: string = greet("x");\n',
    "components/greet.ts":
      'import { shout } from "../src/util/shout";\nexport const greet = (n: string): string => shout(`hello ${n}`);\n',
    "src/util/shout.ts":
      "export function shout(s: string): string {\n  return s.toUpperCase();\n}\n",
    "src/util/types.d.ts": "export type Unused = string;\n",
  };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  symlinkSync(join(REPO, "node_modules"), join(root, "node_modules"), "dir");
  return root;
}

/** The flags the language host (v3.68) passes before the program argument. */
const hostFlags = (root: string) => [
  "--monitor",
  "127.0.0.1:1",
  "--pwd",
  root,
  "--dry-run",
  "--parallel",
  "4",
];

/** Runs the run-path wrapper as the language host would, asking for ts-node as it does. */
function runWrapper(root: string, args: string[] = [...hostFlags(root), "index.ts"]) {
  return spawnSync(process.execPath, [RUN_PATH, ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 20_000,
    env: { ...process.env, PULUMI_NODEJS_TYPESCRIPT: "true" },
  });
}

describe("the program's precompiled build", () => {
  let root: string;
  beforeEach(() => {
    root = project();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("compiles every .ts under the entry file, components/ and src/ (not .d.ts), with maps that name the sources", () => {
    // A module next to the entry file is part of the program too.
    writeFileSync(join(root, "extra.ts"), "export const extra = 1;\n");
    expect(sourceFiles(root)).toEqual([
      "components/greet.ts",
      "extra.ts",
      "index.ts",
      "src/util/shout.ts",
    ]);
    rmSync(join(root, "extra.ts"));
    expect(staleness(root)).toMatch(/no complete build .*no \.slipway-build\.json/);
    const { files } = buildProgram(root);
    expect(files).toBe(3);
    expect(staleness(root)).toBeUndefined();
    const js = readFileSync(join(root, "dist", "components", "greet.js"), "utf8");
    expect(js).toContain('require("../src/util/shout")');
    expect(js).toContain("//# sourceMappingURL=greet.js.map");
    const map = JSON.parse(readFileSync(join(root, "dist", "components", "greet.js.map"), "utf8"));
    expect(resolve(root, "dist", "components", map.sources[0])).toBe(
      join(root, "components", "greet.ts"),
    );
    // The output runs as the sources would.
    const run = spawnSync(
      process.execPath,
      ["-e", `console.log(require(${JSON.stringify(join(root, "dist", "index.js"))}).out)`],
      { encoding: "utf8" },
    );
    expect(run.stdout.trim()).toBe("HELLO X");
  });

  it("is stale when a source changes, appears or goes, or a config changes, and names the file", () => {
    buildProgram(root);
    writeFileSync(
      join(root, "src", "util", "shout.ts"),
      "export const shout = (s: string) => s;\n",
    );
    expect(staleness(root)).toBe("src/util/shout.ts changed since the build");
    buildProgram(root);
    writeFileSync(join(root, "components", "extra.ts"), "export const x = 1;\n");
    expect(staleness(root)).toBe("components/extra.ts is new since the build");
    buildProgram(root);
    rmSync(join(root, "components", "extra.ts"));
    expect(staleness(root)).toBe("components/extra.ts was removed since the build");
    buildProgram(root);
    // The output of a removed source does not linger.
    expect(existsSync(join(root, "dist", "components", "extra.js"))).toBe(false);
    writeFileSync(
      join(root, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { target: "ES2020" } }),
    );
    expect(staleness(root)).toBe("tsconfig.json changed since the build");
  });

  it("an interrupted build is never taken for a complete one; ensureBuilt builds only when needed and takes over a dead builder's lock", () => {
    buildProgram(root);
    rmSync(manifestPath(root)); // what a build killed before its last write leaves
    expect(staleness(root)).toMatch(/no complete build/);
    // A lock left by a builder that died (a pid that is not running).
    writeFileSync(join(root, "dist", ".build.lock"), "999999999");
    const lines: string[] = [];
    const first = ensureBuilt(root, (l) => lines.push(l));
    expect(first.built).toBe(true);
    expect(lines[0]).toMatch(/^building the program into dist\/ \(there is no complete build/);
    expect(existsSync(join(root, "dist", ".build.lock"))).toBe(false);
    expect(ensureBuilt(root).built).toBe(false);
    // An empty lock (a builder that died between creating and writing it), minutes old.
    rmSync(manifestPath(root));
    writeFileSync(join(root, "dist", ".build.lock"), "");
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(root, "dist", ".build.lock"), old, old);
    expect(ensureBuilt(root).built).toBe(true);
  });

  it("the run-path wrapper refuses a stale or missing build before the program runs, naming what changed", () => {
    const missing = runWrapper(root);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("is stale: there is no complete build");
    buildProgram(root);
    writeFileSync(join(root, "index.ts"), 'export const out = "edited";\n');
    const stale = runWrapper(root);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain("is stale: index.ts changed since the build");
    expect(stale.stderr).toContain("npm run build");
    expect(stale.stderr).toContain("the stale build was not run");
    // Only TypeScript entry files are its to run.
    const js = runWrapper(root, [...hostFlags(root), "main.js"]);
    expect(js.status).toBe(1);
    expect(js.stderr).toContain(
      'runs a precompiled TypeScript program; the host asked for "main.js"',
    );
  });

  it("the wrapper hands a fresh build to the SDK's runner with dist/index.js as the program and ts-node off", () => {
    buildProgram(root);
    // A stand-in for @pulumi/pulumi/cmd/run in this project, recording what it was handed.
    const fake = join(root, "node_modules_local");
    mkdirSync(join(fake, "@pulumi", "pulumi", "cmd", "run"), { recursive: true });
    writeFileSync(
      join(fake, "@pulumi", "pulumi", "cmd", "run", "index.js"),
      "console.log(JSON.stringify({argv: process.argv.slice(2), ts: process.env.PULUMI_NODEJS_TYPESCRIPT ?? null}));\n",
    );
    // The compiler stays the same one (its version is one of the build's inputs).
    symlinkSync(join(REPO, "node_modules", "typescript"), join(fake, "typescript"), "dir");
    rmSync(join(root, "node_modules"));
    symlinkSync(fake, join(root, "node_modules"), "dir");
    const run = runWrapper(root, [...hostFlags(root), "index.ts", "extra"]);
    expect(run.stderr).toBe("");
    const seen = JSON.parse(run.stdout);
    expect(seen.ts).toBeNull();
    expect(seen.argv).toEqual([...hostFlags(root), join(root, "dist", "index.js"), "extra"]);
    // Without a build config the project runs as Pulumi runs it: the program argument untouched.
    rmSync(join(root, "tsconfig.build.json"));
    const plain = runWrapper(root, ["--pwd", root, "index.ts"]);
    expect(JSON.parse(plain.stdout)).toEqual({ argv: ["--pwd", root, "index.ts"], ts: "true" });
  });
});

describe("the scratch copies of the program", () => {
  it("the rehearsal's and the engine tests' copies carry a build that is fresh in the copy (no rebuild per copy)", () => {
    const at = mkdtempSync(join(tmpdir(), "slipway-scratch-"));
    try {
      const stage = scratchStage(REPO, join(at, "rehearsal"));
      expect(staleness(stage.projectDir)).toBeUndefined();
      const project = scratchProject();
      try {
        expect(staleness(project.dir)).toBeUndefined();
      } finally {
        project.cleanup();
      }
    } finally {
      rmSync(at, { recursive: true, force: true });
    }
  }, 120_000);
});
