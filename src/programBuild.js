// @ts-check
"use strict";
/**
 * The program's precompiled build: `dist/`, JavaScript compiled from the TypeScript sources
 * of a project that has a `tsconfig.build.json` (Slipway's own program, and any project laid
 * out like it), plus a manifest of what it was built from.
 *
 * Why: the language host this toolchain ships (v3.68) ignores `runtime.options` in
 * Pulumi.yaml, so every program run registers ts-node and compiles each module again. The
 * run-path wrapper (bin/program-run.js) runs `dist/` instead, and only when the manifest
 * matches the sources byte for byte: a stale build never runs.
 *
 * The build is transpile-only (each file on its own, as ts-node's `transpileOnly` compiled
 * it on every run before); types are checked by `npm run typecheck`, as before. Source maps
 * are written next to each file, so stack traces and the source positions Pulumi records for
 * resources still name the .ts files.
 *
 * Plain JavaScript so that the wrapper needs neither a build nor a TypeScript loader; the
 * TypeScript compiler is loaded only when a build runs. It lives in src/ because the pipeline
 * and the rehearsal build the program too (StageStack.open, scratchStage), and src/ imports
 * nothing from bin/; bin/program-build.js is its command line (`npm run build`).
 */
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const OUT_DIR = "dist";
const MANIFEST = ".slipway-build.json";
/** One builder at a time per project: this file in dist/ holds the builder's pid. */
const LOCK = ".build.lock";
const FORMAT = 1;
/** What is compiled: every .ts file at the top level (the entry file and what sits next to
 * it) and under these folders. */
const SOURCE_DIRS = ["components", "src"];
/** Inputs that change the output without being compiled themselves. */
const CONFIG_INPUTS = ["tsconfig.json", "tsconfig.build.json", "package-lock.json"];
/** What a copy of the project needs, next to its sources, for the build it carries to be
 * fresh there: the build and the inputs above. */
const BUILD_FILES = [OUT_DIR, ...CONFIG_INPUTS];

/** @param {string} root */
function hasBuildConfig(root) {
  return fs.existsSync(path.join(root, "tsconfig.build.json"));
}

/** @param {string} root */
function manifestPath(root) {
  return path.join(root, OUT_DIR, MANIFEST);
}

/**
 * Every source file to compile, relative to `root`, `/`-separated, sorted.
 * @param {string} root
 * @returns {string[]}
 */
function sourceFiles(root) {
  /** @type {string[]} */
  const out = [];
  /** @param {string} rel */
  const walk = (rel) => {
    const abs = path.join(root, rel);
    let stat;
    try {
      stat = fs.statSync(abs);
    } catch {
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(abs)) {
        if (entry === "node_modules") continue;
        walk(rel + "/" + entry);
      }
    } else if (rel.endsWith(".ts") && !rel.endsWith(".d.ts")) {
      out.push(rel);
    }
  };
  for (const entry of fs.readdirSync(root, { withFileTypes: true }))
    if (entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
      out.push(entry.name);
  for (const d of SOURCE_DIRS) walk(d);
  return out.sort();
}

/** @param {string} file */
function sha256(file) {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/**
 * The content hash of every input: the sources, the configs, this builder and the compiler's
 * version. What the manifest records and what a freshness check recomputes.
 * @param {string} root
 * @returns {Record<string, string>}
 */
function inputHashes(root) {
  /** @type {Record<string, string>} */
  const hashes = {};
  for (const rel of [...sourceFiles(root), ...CONFIG_INPUTS]) {
    const abs = path.join(root, rel);
    if (fs.existsSync(abs)) hashes[rel] = sha256(abs);
  }
  hashes["<builder>"] = sha256(__filename);
  hashes["<typescript>"] = typescriptVersion(root);
  return hashes;
}

/** @param {string} root */
function typescriptVersion(root) {
  try {
    const pkg = require.resolve("typescript/package.json", { paths: [root] });
    return String(JSON.parse(fs.readFileSync(pkg, "utf8")).version);
  } catch {
    return "missing";
  }
}

/**
 * Why the build in `root/dist` may not run, or undefined when it matches the sources.
 * Names the first file that differs, so the message says what changed.
 * @param {string} root
 * @returns {string | undefined}
 */
function staleness(root) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath(root), "utf8"));
  } catch {
    return `there is no complete build in ${path.join(root, OUT_DIR)} (no ${MANIFEST})`;
  }
  if (manifest.format !== FORMAT) return `the build in ${OUT_DIR}/ has another format`;
  /** @type {Record<string, string>} */
  const built = manifest.inputs ?? {};
  const now = inputHashes(root);
  for (const [rel, hash] of Object.entries(now)) {
    if (!(rel in built)) return `${rel} is new since the build`;
    if (built[rel] !== hash) return `${rel} changed since the build`;
  }
  for (const rel of Object.keys(built)) {
    if (!(rel in now)) return `${rel} was removed since the build`;
  }
  return undefined;
}

/**
 * Writes `file` by renaming a finished temporary file over it, so that a reader never sees
 * half of one.
 * @param {string} file
 * @param {string} text
 */
function writeAtomic(file, text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/**
 * Compiles every source file into `root/dist` and writes the manifest last (it is removed
 * first, so an interrupted build is never taken for a complete one). Files in dist/ that no
 * source produces any more are removed.
 * @param {string} root
 * @returns {{ files: number, ms: number }}
 */
function buildProgram(root) {
  const started = Date.now();
  const ts = require(require.resolve("typescript", { paths: [root] }));
  const configFile = path.join(root, "tsconfig.build.json");
  const read = ts.readConfigFile(configFile, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configFile);
  const compilerOptions = { ...parsed.options, sourceMap: true, inlineSourceMap: false };
  const outDir = path.join(root, OUT_DIR);
  fs.rmSync(manifestPath(root), { force: true });
  const hashes = inputHashes(root);
  /** @type {Set<string>} */
  const written = new Set();
  for (const rel of sourceFiles(root)) {
    const source = path.join(root, rel);
    const out = path.join(outDir, rel.replace(/\.ts$/, ".js"));
    const result = ts.transpileModule(fs.readFileSync(source, "utf8"), {
      compilerOptions,
      fileName: source,
      reportDiagnostics: true,
    });
    const errors = (result.diagnostics ?? []).filter(
      (/** @type {any} */ d) => d.category === ts.DiagnosticCategory.Error,
    );
    if (errors.length > 0) {
      const text = ts.flattenDiagnosticMessageText(errors[0].messageText, "\n");
      throw new Error(`cannot compile ${rel}: ${text}`);
    }
    // The map names the source by its path from the output file, so it resolves to the .ts.
    const map = JSON.parse(result.sourceMapText);
    map.sources = [path.relative(path.dirname(out), source).split(path.sep).join("/")];
    map.file = path.basename(out);
    const js = result.outputText.replace(
      /\/\/# sourceMappingURL=.*$/m,
      `//# sourceMappingURL=${path.basename(out)}.map`,
    );
    writeAtomic(out, js);
    writeAtomic(`${out}.map`, JSON.stringify(map));
    written.add(out);
    written.add(`${out}.map`);
  }
  removeUnwritten(outDir, written);
  writeAtomic(
    manifestPath(root),
    JSON.stringify({ format: FORMAT, builtAt: new Date().toISOString(), inputs: hashes }, null, 1) +
      "\n",
  );
  return { files: written.size / 2, ms: Date.now() - started };
}

/**
 * @param {string} dir
 * @param {Set<string>} keep
 */
function removeUnwritten(dir, keep) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      removeUnwritten(abs, keep);
      if (fs.readdirSync(abs).length === 0) fs.rmdirSync(abs);
    } else if (entry.name !== MANIFEST && entry.name !== LOCK && !keep.has(abs)) {
      fs.rmSync(abs, { force: true });
    }
  }
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === "EPERM";
  }
}

/**
 * Builds `root` when its build is missing or stale; one builder at a time per project (a
 * lock file in dist/ holding the builder's pid; a dead builder's lock is taken over).
 * @param {string} root
 * @param {(line: string) => void} [say]
 * @returns {{ built: boolean, reason?: string, files?: number, ms?: number }}
 */
function ensureBuilt(root, say = () => {}) {
  const reason = staleness(root);
  if (reason === undefined) return { built: false };
  const lock = path.join(root, OUT_DIR, LOCK);
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code !== "EEXIST") throw err;
      let holder;
      try {
        holder = Number(fs.readFileSync(lock, "utf8").trim());
      } catch (readErr) {
        // Released between the two calls: try again.
        if (/** @type {NodeJS.ErrnoException} */ (readErr).code === "ENOENT") continue;
        throw readErr;
      }
      // An empty lock is one being written (for a moment) or left by a builder that died then.
      const unreadable = !Number.isInteger(holder) || holder <= 0;
      const stale =
        unreadable &&
        Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 5000;
      if (stale || (!unreadable && !alive(holder))) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock}: held by pid ${holder} for over 120 s`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    // Another builder may have finished while this one waited.
    const still = staleness(root);
    if (still === undefined) return { built: false };
    say(`building the program into ${OUT_DIR}/ (${still})`);
    const { files, ms } = buildProgram(root);
    say(`built ${files} files into ${OUT_DIR}/ in ${(ms / 1000).toFixed(1)} s`);
    return { built: true, reason: still, files, ms };
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

module.exports = {
  OUT_DIR,
  BUILD_FILES,
  hasBuildConfig,
  manifestPath,
  sourceFiles,
  staleness,
  buildProgram,
  ensureBuilt,
};
