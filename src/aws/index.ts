export * from "./client";
export * from "./listenerRule";
export * from "./loadBalancerWeights";
export * from "./alarms";
export * from "./analysis";
export * from "./releaseSetup";
export * from "./serving";
