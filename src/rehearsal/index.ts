export * from "./chart";

export * from "./load";
export * from "./processes";
export * from "./profile";
export * from "./prometheus";
export * from "./registry";
export * from "./rehearse";
export * from "./report";
export * from "./scratch";
export * from "./summary";
export * from "./supervisor";
