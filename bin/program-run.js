// @ts-check
"use strict";
/**
 * The language host's run path for a project with a precompiled build
 * (PULUMI_LANGUAGE_NODEJS_RUN_PATH, set by StageStack.open and `scripts/with-env.sh
 * --engine`). The host runs `node <this file> --monitor … --pwd <project> … index.ts`; this
 * file checks that `dist/` matches the sources (src/programBuild.js), points the program
 * argument at `dist/index.js`, turns the SDK's TypeScript support off and hands over to the
 * SDK's own runner, `@pulumi/pulumi/cmd/run`. The working directory stays the project's, so
 * relative paths in config (`renderYamlToDirectory`, `kubeconfig`) mean what they meant.
 *
 * A project without a `tsconfig.build.json` runs through the SDK's runner unchanged.
 * Either way the program, and its host, end once the engine is gone (bin/engine-watch.js).
 * A stale or missing build stops the program before it declares anything, with the reason
 * (the first file that changed) and the command that fixes it; nothing is changed.
 */
const path = require("node:path");
const { OUT_DIR, hasBuildConfig, staleness } = require("../src/programBuild.js");
const { deferSdkModules } = require("./defer-sdk-modules.js");
const { watchEngine } = require("./engine-watch.js");

/**
 * The index of the program argument in the host's arguments: the first one that is not a
 * flag or a flag's value (`--dry-run` is the only flag without one).
 * @param {string[]} args
 */
function programIndex(args) {
  for (let i = 0; i < args.length; i++) {
    const a = /** @type {string} */ (args[i]);
    if (a === "--dry-run") continue;
    if (a.startsWith("--")) {
      if (!a.includes("=")) i++;
      continue;
    }
    return i;
  }
  return -1;
}

function main() {
  // The engine's death reaches neither the host nor this program (bin/engine-watch.js).
  watchEngine();
  const args = process.argv.slice(2);
  const pwdAt = args.indexOf("--pwd");
  const root = path.resolve(pwdAt >= 0 ? /** @type {string} */ (args[pwdAt + 1]) : ".");
  const runner = require.resolve("@pulumi/pulumi/cmd/run", { paths: [root] });
  // A project without a build (no tsconfig.build.json) runs as Pulumi runs it.
  if (!hasBuildConfig(root)) {
    require(runner);
    return;
  }
  const at = programIndex(args);
  const program = at >= 0 ? /** @type {string} */ (args[at]) : undefined;
  if (!program || !program.endsWith(".ts")) {
    console.error(
      `slipway: the run path ${__filename} runs a precompiled TypeScript program; the host asked for ${JSON.stringify(program ?? "")}`,
    );
    process.exit(1);
  }
  const reason = staleness(root);
  if (reason !== undefined) {
    console.error(
      `slipway: the program's build in ${path.join(root, OUT_DIR)} is stale: ${reason}. ` +
        "Run `npm run build` (Slipway's commands build it themselves); the stale build was not run.",
    );
    process.exit(1);
  }
  args[at] = path.join(root, OUT_DIR, program.replace(/\.ts$/, ".js"));
  process.argv = [/** @type {string} */ (process.argv[0]), __filename, ...args];
  // The host (v3.68) always asks for ts-node; the build needs none.
  delete process.env.PULUMI_NODEJS_TYPESCRIPT;
  // Nor the SDK's closure serializer, which loads TypeScript and npm's arborist up front.
  // (`runner` is <sdk>/cmd/run/index.js.)
  deferSdkModules(path.resolve(path.dirname(runner), "..", ".."));
  require(runner);
}

main();
