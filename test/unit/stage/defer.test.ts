import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const REPO = join(__dirname, "..", "..", "..");
const DEFER = join(REPO, "bin", "defer-sdk-modules.js");

/**
 * A fresh Node (its own module cache) that loads the SDK, with or without the deferral, then
 * uses the closure serializer: serializes a function and computes the code paths of a small
 * package tree in `dir`. Prints what was loaded (for real) before and after that use.
 */
function run(dir: string, defer: boolean) {
  const script = `
    const path = require("node:path");
    const { deferSdkModules, STAND_IN } = require(${JSON.stringify(DEFER)});
    const sdk = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
    const deferred = ${defer} ? deferSdkModules(sdk) : [];
    const files = {
      typescript: require.resolve("typescript", { paths: [sdk] }),
      arborist: require.resolve("@npmcli/arborist", { paths: [path.join(sdk, "runtime", "closure")] }),
      normalize: require.resolve("normalize-package-data", { paths: [path.join(sdk, "runtime", "closure")] }),
    };
    const loaded = () => Object.fromEntries(Object.entries(files).map(([k, f]) =>
      [k, !!require.cache[f] && !require.cache[f][STAND_IN]]));
    const pulumi = require("@pulumi/pulumi");
    const before = loaded();
    (async () => {
      const serialized = await pulumi.runtime.serializeFunction(function add(a, b) { return a + b + 1; });
      process.chdir(${JSON.stringify(dir)});
      const paths = await pulumi.runtime.computeCodePaths({ extraIncludePaths: ["data.txt"] });
      console.log(JSON.stringify({
        deferred: deferred.map((f) => path.relative(sdk, f)),
        before,
        after: loaded(),
        text: serialized.text,
        paths: [...paths.keys()].sort(),
      }));
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ["--no-warnings", "-e", script], {
    cwd: REPO,
    encoding: "utf8",
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as {
    deferred: string[];
    before: Record<string, boolean>;
    after: Record<string, boolean>;
    text: string;
    paths: string[];
  };
}

describe("the run path defers the SDK's closure-serializer modules", () => {
  // A program directory with one dependency (and its own), for computeCodePaths.
  const dir = mkdtempSync(join(tmpdir(), "slipway-defer-"));
  const pkg = (at: string, json: object) => {
    mkdirSync(at, { recursive: true });
    writeFileSync(join(at, "package.json"), JSON.stringify(json));
    writeFileSync(join(at, "index.js"), "module.exports = 1;\n");
  };
  pkg(dir, { name: "app", version: "1.0.0", dependencies: { left: "1.0.0" } });
  pkg(join(dir, "node_modules", "left"), {
    name: "left",
    version: "1.0.0",
    dependencies: { right: "2.0.0" },
  });
  pkg(join(dir, "node_modules", "right"), { name: "right", version: "2.0.0" });
  writeFileSync(join(dir, "data.txt"), "x\n");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads none of them with the SDK, each on first use, with the same results as eager loading", () => {
    const eager = run(dir, false);
    const lazy = run(dir, true);
    // The control: without the deferral the SDK loads all three up front.
    expect(eager.deferred).toEqual([]);
    expect(eager.before).toEqual({ typescript: true, arborist: true, normalize: true });
    // With it, none until the serializer needs them.
    expect(lazy.deferred).toHaveLength(3);
    expect(lazy.before).toEqual({ typescript: false, arborist: false, normalize: false });
    expect(lazy.after).toEqual({ typescript: true, arborist: true, normalize: true });
    // What the serializer produces is the same.
    expect(lazy.text).toBe(eager.text);
    expect(lazy.text).toContain("a + b + 1");
    expect(lazy.paths).toEqual(eager.paths);
    expect(lazy.paths).toEqual(
      expect.arrayContaining(["data.txt", "node_modules/left", "node_modules/right"]),
    );
  });

  it("leaves a module alone that is already loaded or that the SDK no longer has", () => {
    const script = `
      const path = require("node:path");
      const { deferSdkModules } = require(${JSON.stringify(DEFER)});
      const sdk = path.dirname(require.resolve("@pulumi/pulumi/package.json"));
      const ts = require.resolve("typescript", { paths: [sdk] });
      require(ts);
      const first = deferSdkModules(sdk);
      const elsewhere = deferSdkModules(${JSON.stringify(dir)});
      console.log(JSON.stringify({ ts, first, elsewhere }));
    `;
    const r = spawnSync(process.execPath, ["-e", script], { cwd: REPO, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ts: string; first: string[]; elsewhere: string[] };
    // TypeScript was loaded already; the two others are deferred.
    expect(out.first).toHaveLength(2);
    expect(out.first).not.toContain(out.ts);
    expect(out.first.join(" ")).toMatch(/arborist.*normalize-package-data/);
    expect(out.elsewhere).toEqual([]);
  });
});
