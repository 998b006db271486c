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
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPackedPackage, type PackResult } from "../support/packedPackage";

/**
 * The npm package as a user gets it: `npm pack` (which runs the `prepack` build into
 * dist-pkg/), the tarball extracted into a scratch `node_modules/slipway`, its dependencies
 * linked from this repository's node_modules (no network), and every entry point loaded by a
 * fresh `node` that cannot see the repository's sources or tsx.
 */
const REPO = join(__dirname, "..", "..");
const PKG = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
/** The node this suite runs on (22, from scripts/with-env.sh), for every child process. */
const NODE_BIN = dirname(process.execPath);
/** A child's environment: no NODE_PATH or loader flags of this run leak into it. */
const childEnv = (extra: Record<string, string> = {}) => {
  const { NODE_PATH: _path, NODE_OPTIONS: _options, ...env } = process.env;
  return { ...env, PATH: `${NODE_BIN}:${env.PATH ?? ""}`, ...extra };
};

const scratch = mkdtempSync(join(tmpdir(), "slipway-package-"));
const installed = join(scratch, "node_modules", PKG.name);
let packed: PackResult;
let packMs = 0;

beforeAll(() => {
  ({ packed, packMs } = installPackedPackage(
    scratch,
    childEnv(),
    // The build type-checks the whole closure: about 20 s alone, several times that while the
    // rest of the unit tier runs on the same cores.
    { timeoutMs: 240_000 },
  ));
  console.log(
    `slipway package: ${packed.filename}, ${packed.entryCount} files, ` +
      `${(packed.size / 1024).toFixed(0)} kB packed, ${(packed.unpackedSize / 1024).toFixed(0)} kB unpacked; ` +
      `npm pack with the prepack build took ${(packMs / 1000).toFixed(1)} s`,
  );
}, 300_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const entryOf = (key: string) => {
  const e = PKG.exports[key];
  if (typeof e !== "object")
    throw new Error(`package.json exports["${key}"]: not a conditions object`);
  return e;
};
const SUBPATHS = Object.keys(PKG.exports).filter((k) => k !== "./package.json");

describe("the npm package", () => {
  it("packs the compiled entry points, their declarations and the command, and no sources or tests", () => {
    const files = packed.files.map((f) => f.path);
    for (const key of SUBPATHS) {
      const { types, default: js } = entryOf(key);
      expect(files, key).toContain(js.replace(/^\.\//, ""));
      expect(files, key).toContain(types.replace(/^\.\//, ""));
    }
    for (const file of Object.values(PKG.bin)) expect(files).toContain(file);
    expect(files).toContain("dist-pkg/bin/program-run.js");
    expect(files).toContain("dist-pkg/src/programBuild.js");
    // What `slipway init` generates a project's config declarations from.
    expect(files).toContain("Pulumi.yaml");
    const unwanted = files.filter(
      (f) =>
        /^(test|\.slipway|node_modules|examples|bench)\//.test(f) ||
        f.includes("/node_modules/") ||
        (f.endsWith(".ts") && !f.endsWith(".d.ts")),
    );
    expect(unwanted).toEqual([]);
    // The program's own build (dist/) and this repository's program stay out.
    expect(files.filter((f) => f.startsWith("dist/") || f === "index.ts")).toEqual([]);
  });

  it("requires only packages it declares as dependencies or peer dependencies", () => {
    const declared = new Set(Object.keys({ ...PKG.dependencies, ...PKG.peerDependencies }));
    const builtin = new Set(builtinModules);
    const undeclared = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".js"))
          for (const [, spec] of readFileSync(path, "utf8").matchAll(
            /require(?:\.resolve)?\("([^".][^"]*)"/g,
          )) {
            const name = spec!.startsWith("@")
              ? spec!.split("/").slice(0, 2).join("/")
              : spec!.split("/")[0]!;
            if (!builtin.has(name) && !name.startsWith("node:") && !declared.has(name))
              undeclared.add(`${name} (${path.slice(installed.length + 1)})`);
          }
      }
    };
    walk(installed);
    expect([...undeclared]).toEqual([]);
  });

  it("loads every entry of its exports map with require and import, without tsx or ts-node", () => {
    // What each entry must provide (a sample of its named exports, with their kind).
    const expected: Record<string, Record<string, string>> = {
      ".": {
        ServiceStage: "function",
        readStage: "function",
        backEnds: "object",
        kubernetes: "object",
      },
      "./components": {
        ServiceStage: "function",
        parseStageConfig: "function",
        backEnds: "object",
        kubernetes: "object",
        aws: "object",
      },
      "./contract": {
        readStage: "function",
        parseStageOutputs: "function",
        SCHEMA_VERSION: "number",
      },
      "./pipeline": {
        release: "function",
        rollback: "function",
        promote: "function",
        status: "function",
        previewPlan: "function",
        RefusedError: "function",
        ExitCode: "object",
      },
      "./program": {
        slipwayStage: "function",
      },
    };
    expect(Object.keys(expected).sort()).toEqual([...SUBPATHS].sort());
    const script = `
      const expected = ${JSON.stringify(expected)};
      const name = ${JSON.stringify(PKG.name)};
      const kinds = (mod) => Object.fromEntries(Object.keys(expected[mod.key]).map((k) => [k, typeof mod.value[k]]));
      (async () => {
        const out = { require: {}, import: {} };
        for (const key of Object.keys(expected)) {
          const spec = key === "." ? name : name + key.slice(1);
          out.require[key] = kinds({ key, value: require(spec) });
          out.import[key] = kinds({ key, value: await import(spec) });
        }
        out.kubernetesStage = typeof require(name + "/components").kubernetes.KubernetesStage;
        out.loaders = Object.keys(require.cache).filter((f) => /[\\\\/](tsx|ts-node)[\\\\/]/.test(f));
        out.from = require.resolve(name + "/contract");
        console.log(JSON.stringify(out));
      })().catch((err) => { console.error(err); process.exit(1); });
    `;
    const r = spawnSync(process.execPath, ["-e", script], {
      cwd: scratch,
      encoding: "utf8",
      env: childEnv(),
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.require).toEqual(expected);
    expect(out.import).toEqual(expected);
    expect(out.kubernetesStage).toBe("function");
    expect(out.loaders).toEqual([]);
    expect(out.from).toBe(join(installed, "dist-pkg", "lib", "contract.js"));
  }, 60_000);

  it("ships a declaration file for every entry", () => {
    for (const key of SUBPATHS)
      expect(existsSync(join(installed, entryOf(key).types)), key).toBe(true);
  });

  it("type-checks an app team's program against the declarations, with either module resolution", () => {
    const app = join(scratch, "app");
    mkdirSync(app, { recursive: true });
    const contract = [
      `import * as pulumi from "@pulumi/pulumi";`,
      `import { readStage, type StageOutputs } from "slipway/contract";`,
      `import type { ReleaseOptions } from "slipway/pipeline";`,
      `const stage = readStage(new pulumi.StackReference("acme/slipway/prod"));`,
      `export const weights: pulumi.Output<StageOutputs["weights"]> = stage.weights;`,
      `export const options: ReleaseOptions = { stage: "prod", image: "r@sha256:" + "0".repeat(64) };`,
      // A misspelt export must fail, or the check proves nothing.
      `// @ts-expect-error -- not an export of slipway/contract`,
      `import { readStages } from "slipway/contract";`,
      `export const missing = readStages;`,
      "",
    ].join("\n");
    writeFileSync(join(app, "contract.ts"), contract);
    // The components' declarations load @pulumi/aws's (most of this check's time): checked once,
    // with the resolution Pulumi's TypeScript template uses (node10, through typesVersions).
    writeFileSync(
      join(app, "components.ts"),
      [
        `import type { ServiceStageArgs } from "slipway/components";`,
        `import { ServiceStage } from "slipway";`,
        `export const stageOf = (a: ServiceStageArgs): string => a.config.stage;`,
        `export type Stage = ServiceStage;`,
        "",
      ].join("\n"),
    );
    // A service project's whole program (what `slipway init` writes).
    writeFileSync(
      join(app, "program.ts"),
      [
        `import { slipwayStage } from "slipway/program";`,
        `const stage = slipwayStage();`,
        `export const weights = stage.weights;`,
        `export const header = stage.testerHeader;`,
        "",
      ].join("\n"),
    );
    const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
    for (const [module, moduleResolution, files] of [
      ["commonjs", "node", ["contract.ts", "components.ts", "program.ts"]],
      ["node16", "node16", ["contract.ts"]],
    ] as const) {
      const r = spawnSync(
        process.execPath,
        [
          tsc,
          "--noEmit",
          "--strict",
          "--skipLibCheck",
          "--module",
          module,
          "--moduleResolution",
          moduleResolution,
          "--types",
          "node",
          "--typeRoots",
          join(REPO, "node_modules", "@types"),
          ...files.map((f) => join(app, f)),
        ],
        { cwd: app, encoding: "utf8", env: childEnv(), timeout: 90_000 },
      );
      expect(r.stdout + r.stderr, `moduleResolution ${moduleResolution}`).toBe("");
      expect(r.status).toBe(0);
    }
  }, 180_000);

  it("inits a service project whose index.ts type-checks with its own tsconfig against the package", () => {
    const project = join(scratch, "services", "payments");
    const init = spawnSync(
      join(scratch, "node_modules", ".bin", "slipway"),
      ["init", project, "--service", "payments", "--runtime", "go"],
      { cwd: scratch, encoding: "utf8", env: childEnv(), timeout: 30_000 },
    );
    expect(init.stderr).toBe("");
    expect(init.status).toBe(0);
    expect(readFileSync(join(project, "index.ts"), "utf8")).toContain(`from "slipway/program"`);
    // Its Pulumi.yaml comes from the packed one: the same declarations, as values.
    const declared = readFileSync(join(installed, "Pulumi.yaml"), "utf8");
    expect(declared).toContain("slipway:notifications:");
    expect(readFileSync(join(project, "Pulumi.yaml"), "utf8")).toMatch(
      /^ {2}slipway:notifications:\n {4}description: /m,
    );
    // The project's tsconfig.json as written; only @types/node comes from this repository (the
    // scratch install links dependencies, not dev dependencies). A misspelt import must fail.
    const check = (name: string, program: string) => {
      writeFileSync(join(project, `${name}.ts`), program);
      writeFileSync(
        join(project, `tsconfig.${name}.json`),
        JSON.stringify({
          extends: "./tsconfig.json",
          compilerOptions: { noEmit: true, typeRoots: [join(REPO, "node_modules", "@types")] },
          files: [`${name}.ts`],
        }),
      );
      return spawnSync(
        process.execPath,
        [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", `tsconfig.${name}.json`],
        { cwd: project, encoding: "utf8", env: childEnv(), timeout: 90_000 },
      );
    };
    const generated = check("generated", readFileSync(join(project, "index.ts"), "utf8"));
    expect(generated.stdout + generated.stderr).toBe("");
    expect(generated.status).toBe(0);
    const misspelt = check(
      "misspelt",
      readFileSync(join(project, "index.ts"), "utf8").replaceAll("slipwayStage", "slipwayStages"),
    );
    expect(misspelt.stdout).toMatch(/has no exported member named 'slipwayStages'/);
    expect(misspelt.status).not.toBe(0);
  }, 120_000);

  it("installs a command that runs the compiled CLI and prints its usage", () => {
    const r = spawnSync(join(scratch, "node_modules", ".bin", "slipway"), ["--help"], {
      cwd: scratch,
      encoding: "utf8",
      env: childEnv(),
      timeout: 30_000,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: slipway /);
    expect(r.stdout).toMatch(/\brelease\b/);
    expect(r.stdout).toMatch(/\brollback\b/);
  });
});
