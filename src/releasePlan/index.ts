export * from "./transitions";
export * from "./invariants";
export * from "./changes";
export * from "./preview";
