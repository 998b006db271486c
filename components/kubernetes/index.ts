export * from "./stage";
export * from "./slot";
export * from "./route";
export * from "./identities";
export * from "./network";
export * from "./flags";
