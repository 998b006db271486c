// @ts-check
"use strict";
/**
 * Defers the modules that `@pulumi/pulumi` loads for its closure serializer until something
 * uses them. `require("@pulumi/pulumi")` loads `runtime/closure/*` eagerly, and with it
 * TypeScript (to parse functions), `@npmcli/arborist` (and through it pacote, sigstore,
 * npm-registry-fetch …) and `normalize-package-data` (to compute a closure's packages): about
 * two thirds of the SDK's load time, on every program run. They serve only
 * `pulumi.runtime.serializeFunction` and dynamic providers, which Slipway's program does not
 * use (README, "The program's build").
 *
 * Each module is put into Node's module cache as a stand-in, a Proxy whose first use (a
 * property read, a call, `new`, a key listing) loads the real module in its place and
 * forwards to it, so a program that does serialize a closure still works, only paying the
 * load then. What differs from an eager load: the stand-in is not `===` the real module,
 * and `@npmcli/arborist`'s stand-in answers `__esModule: true` so that the SDK's
 * `import * as` interop returns it instead of listing its keys (which would load it); the
 * SDK reads only `arborist.Arborist`.
 *
 * Used by the run path (bin/program-run.js) before it hands over to the SDK's runner. A
 * module that no longer resolves where this expects it (another SDK layout) is left alone:
 * it then loads eagerly, as it did before.
 */
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

/**
 * The deferred modules: each is resolved from the SDK file that requires it, and `esModule`
 * is what its stand-in answers for `__esModule` without loading it (see above).
 * @type {{ request: string; from: string; esModule: boolean }[]}
 */
const DEFERRED = [
  { request: "typescript", from: "typescript-shim.js", esModule: false },
  { request: "@npmcli/arborist", from: "runtime/closure/codePaths.js", esModule: true },
  { request: "normalize-package-data", from: "runtime/closure/codePaths.js", esModule: false },
];

/** Marks a stand-in module in the module cache (until its real module replaces it). */
const STAND_IN = Symbol.for("slipway.deferredModule");

/**
 * Puts a stand-in for `file` into the module cache; `esModule` as above.
 * @param {string} file
 * @param {boolean} esModule
 */
function defer(file, esModule) {
  /** @type {any} */
  let real;
  const load = () => {
    if (real === undefined) {
      delete require.cache[file];
      real = require(file);
    }
    return real;
  };
  const standIn = new Module(file);
  /** @type {any} */ (standIn)[STAND_IN] = true;
  standIn.filename = file;
  standIn.loaded = true;
  // A function target, so that a module that is a function or a class can be called or
  // constructed through its stand-in.
  standIn.exports = new Proxy(function deferred() {}, {
    get: (_, key) =>
      key === "__esModule" && real === undefined ? esModule : Reflect.get(load(), key),
    has: (_, key) => Reflect.has(load(), key),
    set: (_, key, value) => Reflect.set(load(), key, value),
    ownKeys: () => [...new Set([...Reflect.ownKeys(load()), "prototype"])],
    getOwnPropertyDescriptor: (target, key) => {
      // The target's own non-configurable `prototype` must be reported as it is.
      if (key === "prototype") return Reflect.getOwnPropertyDescriptor(target, key);
      const d = Reflect.getOwnPropertyDescriptor(load(), key);
      return d && { ...d, configurable: true };
    },
    apply: (_, self, args) => Reflect.apply(load(), self, args),
    construct: (_, args, newTarget) =>
      Reflect.construct(load(), args, newTarget === standIn.exports ? load() : newTarget),
  });
  require.cache[file] = standIn;
}

/**
 * Defers the SDK's closure-serializer modules for the SDK in `sdkDir` (the directory of
 * `@pulumi/pulumi`). Returns the files deferred; a module already loaded, or not found where
 * expected, is not deferred.
 * @param {string} sdkDir
 * @returns {string[]}
 */
function deferSdkModules(sdkDir) {
  const deferred = [];
  for (const { request, from, esModule } of DEFERRED) {
    const requirer = path.join(sdkDir, from);
    if (!fs.existsSync(requirer)) continue;
    let file;
    try {
      file = require.resolve(request, { paths: [path.dirname(requirer)] });
    } catch {
      continue;
    }
    if (require.cache[file]) continue;
    defer(file, esModule);
    deferred.push(file);
  }
  return deferred;
}

module.exports = { deferSdkModules, STAND_IN };
