// @ts-check
"use strict";
/**
 * The command line of the program's precompiled build (src/programBuild.js, plain JavaScript
 * so that this script runs on node alone):
 *
 *   node bin/program-build.js [--check] [--quiet] [<project dir>]   (npm run build)
 *     builds when the build is missing or stale, else says it is fresh (not with --quiet);
 *     --check: builds nothing, exits 1 naming the first difference when stale.
 */
const path = require("node:path");
const { OUT_DIR, ensureBuilt, hasBuildConfig, staleness } = require("../src/programBuild.js");

const args = process.argv.slice(2);
const check = args.includes("--check");
const root = path.resolve(args.find((a) => !a.startsWith("--")) ?? ".");
if (!hasBuildConfig(root)) {
  console.error(`slipway build: ${root} has no tsconfig.build.json; nothing to build`);
  process.exit(2);
}
if (check) {
  const reason = staleness(root);
  if (reason) {
    console.error(`slipway build: stale: ${reason}; run \`npm run build\``);
    process.exit(1);
  }
  console.error(`slipway build: ${OUT_DIR}/ is fresh`);
} else {
  try {
    const r = ensureBuilt(root, (line) => console.error(`slipway: ${line}`));
    if (!r.built && !args.includes("--quiet"))
      console.error(`slipway: ${OUT_DIR}/ is fresh (nothing to build)`);
  } catch (err) {
    console.error(`slipway build: FAILED: ${/** @type {Error} */ (err).message}`);
    process.exit(1);
  }
}
