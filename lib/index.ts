// `slipway`: the stage components and the app teams' contract in one import. The pipeline
// (`slipway/pipeline`) stays a separate entry: it loads the Automation API and the AWS clients,
// which a Pulumi program does not need.
export * from "./components";
export * from "./contract";
