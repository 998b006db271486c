// `slipway/program`: the whole program of a service's stage, for a project's entry file
// (`export = slipwayStage();`). Kept apart from `slipway/components`, whose barrel loads both
// platforms' SDKs: this entry loads only the stage's own.
export { slipwayStage } from "../components/program";
