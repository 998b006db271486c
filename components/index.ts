export * from "./stage";
export * from "./platform";
export * as kubernetes from "./kubernetes";
export * as aws from "./aws";
