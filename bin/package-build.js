// @ts-check
"use strict";
/**
 * The npm package's build (`npm run build:package`; `npm pack` and `npm publish` run it as
 * `prepack`):
 *
 *   node bin/package-build.js [<project dir>]
 *
 * Compiles the library entry points (lib/) and the CLI (src/cli/main.ts), with everything they
 * import, into dist-pkg/ with declarations (tsconfig.package.json), type errors failing the
 * build. Then copies the plain-JavaScript files the compiled pipeline runs from next to it:
 * src/programBuild.js (the program's build, which StageStack.open runs for a project with a
 * tsconfig.build.json) and the run-path wrapper with its helpers (bin/program-run.js, found
 * from the compiled src/pipeline/stack.js as ../../bin/program-run.js).
 *
 * dist-pkg/ is removed first, so that nothing a source no longer produces is packed. The
 * program's own build (dist/, bin/program-build.js) is apart and untouched.
 */
const fs = require("node:fs");
const path = require("node:path");

const OUT_DIR = "dist-pkg";
const CONFIG = "tsconfig.package.json";
/** Plain JavaScript (with its hand-written types) that the compiled code loads at run time. */
const COPIED = [
  "src/programBuild.js",
  "src/programBuild.d.ts",
  "bin/program-run.js",
  "bin/program-build.js",
  "bin/defer-sdk-modules.js",
  "bin/engine-watch.js",
];

/**
 * @param {string} root
 * @returns {{ files: number, ms: number }}
 */
function buildPackage(root) {
  const started = Date.now();
  const ts = require(require.resolve("typescript", { paths: [root] }));
  const configFile = path.join(root, CONFIG);
  const read = ts.readConfigFile(configFile, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configFile);
  const outDir = path.join(root, OUT_DIR);
  if (path.resolve(parsed.options.outDir ?? "") !== outDir)
    throw new Error(`${CONFIG}: compilerOptions.outDir must be ${OUT_DIR}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const emitted = program.emit();
  const diagnostics = [
    ...parsed.errors,
    ...ts.getPreEmitDiagnostics(program),
    ...emitted.diagnostics,
  ].filter((/** @type {any} */ d) => d.category === ts.DiagnosticCategory.Error);
  if (diagnostics.length > 0) {
    const host = {
      getCanonicalFileName: (/** @type {string} */ f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => "\n",
    };
    throw new Error(
      `${diagnostics.length} type error(s), nothing written:\n` +
        ts.formatDiagnostics(diagnostics.slice(0, 10), host),
    );
  }
  for (const rel of COPIED) {
    const to = path.join(outDir, rel);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(root, rel), to);
  }
  return { files: countFiles(outDir), ms: Date.now() - started };
}

/** @param {string} dir */
function countFiles(dir) {
  let n = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }))
    n += entry.isDirectory() ? countFiles(path.join(dir, entry.name)) : 1;
  return n;
}

const root = path.resolve(process.argv[2] ?? path.join(__dirname, ".."));
try {
  const { files, ms } = buildPackage(root);
  console.error(
    `slipway: built the package into ${OUT_DIR}/: ${files} files in ${(ms / 1000).toFixed(1)} s`,
  );
} catch (err) {
  console.error(`slipway build:package: FAILED: ${/** @type {Error} */ (err).message}`);
  process.exit(1);
}
