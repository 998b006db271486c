export * from "./spec";
export * from "./events";
export * from "./format";
export * from "./notifier";
