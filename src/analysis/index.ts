// Canary analysis: the judge, its statistics, run-level semantics and the metric providers.
export * from "./spec";
export * from "./stats";
export * from "./judge";
export * from "./run";
export * from "./input";
export * from "./providers";
