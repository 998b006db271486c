#!/usr/bin/env node
// Installed entry point: runs the TypeScript sources through tsx so that the
// package ships one set of sources for the CLI, the library and the program.
require("tsx/cjs");
const { main } = require("../src/cli/main.ts");
main(process.argv.slice(2)).then((code) => process.exit(code));
