// `slipway/contract`: what an app team's program reads from a Slipway stage (README, "App team").
export { readStage, type StageReader } from "../src/contract/readStage";
export {
  parseStageOutputs,
  SCHEMA_VERSION,
  STAGE_OUTPUT_KEYS,
  StageContractError,
  stageOutputsSchema,
  TESTER_HEADER_OUTPUT,
  type AwsStageOutputs,
  type StageOutputs,
} from "../src/contract/outputs";
