export * from "./stage";
export * from "./slot";
export * from "./route";
export * from "./identities";
export * from "./deployer";
export * from "./alarms";
export * from "./flags";
