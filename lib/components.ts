// `slipway/components`: the stage components for a platform team's own Pulumi program, and the
// config parsing that turns the stack's `slipway:*` keys into their `config` argument (as
// this repository's index.ts does).
export * from "../components";
export {
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  ConfigError,
  parseStageConfig,
  readRawConfig,
  TESTER_TOKEN_KEY,
  type ConfigKey,
  type ConfigProblem,
} from "../src/config/load";
export type {
  AwsConfig,
  CanaryConfig,
  FlagConfig,
  KubernetesConfig,
  ServiceConfig,
  SlotRelease,
  StageConfig,
  Step,
} from "../src/config/schema";
