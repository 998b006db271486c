export * from "./artifact";
export * from "./attestation";
export * from "./artifactPolicy";
export * from "./keys";
