export * from "./errors";
export * from "./prometheus";
export * from "./cloudwatch";
