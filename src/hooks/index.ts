export * from "./spec";
export * from "./secrets";
export * from "./http";
export * from "./run";
