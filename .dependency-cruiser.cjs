// Import rules (`npm run deps`; scripts/test-all.sh runs them): no import circles, and every
// layer imports only from the layers below it. From the bottom up:
//   src/domain (slots, presets and plan steps, outcomes, the reporter; imports nothing of ours)
//   → the libraries (src/config, src/analysis, src/processes.ts, src/programBuild.js, …)
//   → components/ (the Pulumi program's parts) and src/pipeline, src/cluster
//   → src/rehearsal, src/releasePlan → src/cli → bin/ (thin command lines); index.ts is the program.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "An import circle: each module of it can only be understood (and loaded) with the others.",
      from: {},
      to: { circular: true },
    },
    {
      name: "domain-imports-nothing-of-ours",
      severity: "error",
      comment:
        "src/domain is the ground floor every layer shares: it may import only itself (and node or npm packages).",
      from: { path: "^src/domain/" },
      to: {
        path: "^(src|components|bin|policy|test|bench)/|^index\\.ts$",
        pathNot: "^src/domain/",
      },
    },
    {
      name: "pipeline-not-upward",
      severity: "error",
      comment:
        "The release pipeline is a library under the CLI and the rehearsal: it takes what it needs from below (or as a parameter).",
      from: { path: "^src/pipeline/" },
      to: { path: "^(src/cli|src/rehearsal|bin)/" },
    },
    {
      name: "cluster-not-rehearsal",
      severity: "error",
      comment:
        "The local cluster runs without the rehearsal; shared process helpers live in src/processes.ts.",
      from: { path: "^src/cluster/" },
      to: { path: "^src/rehearsal/" },
    },
    {
      name: "cli-on-top",
      severity: "error",
      comment:
        "src/cli is the top of the library: nothing under it imports it (exit codes and the reporter are in src/domain).",
      from: { path: "^(src|components)/", pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "bin-on-top",
      severity: "error",
      comment:
        "bin/ holds thin command lines over src/ (the program's build is src/programBuild.js); nothing imports them.",
      from: { path: "^(src|components|policy)/|^index\\.ts$" },
      to: { path: "^bin/" },
    },
    {
      name: "program-not-pipeline",
      severity: "error",
      comment:
        "The Pulumi program's config and components must not load the release pipeline, not even through another module (the engine loads them on every update).",
      from: { path: "^(src/config|components)/" },
      to: { path: "^src/pipeline/", reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|examples)/" },
    tsConfig: { fileName: "tsconfig.json" },
    // Type-only imports count: a circle of types is still a circle for a reader.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: [".ts", ".js", ".d.ts", ".json"] },
  },
};
