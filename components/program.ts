import * as pulumi from "@pulumi/pulumi";
import type { PlatformBackEnd } from "./platform";
import { ServiceStage } from "./stage";
import {
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  ConfigError,
  parseStageConfig,
  readRawConfig,
  TESTER_TOKEN_KEY,
} from "../src/config/load";
import type { StageConfig } from "../src/config/schema";

/**
 * The whole Slipway program of one service's stage, for a project's entry file:
 *
 *   import { slipwayStage } from "slipway/program";
 *   export = slipwayStage();
 *
 * It reads and validates every `slipway:*` key of the stack before declaring anything (a bad
 * value fails the preview with one message per problem, and no resource is touched), declares
 * the stage on its platform (only that platform's SDK is loaded), and returns the stack outputs
 * the pipeline and app teams read (`readStage`). This repository's own program is that, plus
 * the fault tests' hooks.
 */
export function slipwayStage() {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const stageConfig = stageConfigOf(config, pulumi.getStack());

  // Only this stage's platform and its SDK are loaded (@pulumi/aws alone takes about 0.3 s).
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on the stage that uses it */
  const backEnd: PlatformBackEnd =
    stageConfig.platform === "aws"
      ? (require("./aws/stage") as typeof import("./aws/stage")).awsBackEnd
      : (require("./kubernetes/stage") as typeof import("./kubernetes/stage")).kubernetesBackEnd;
  /* eslint-enable @typescript-eslint/no-require-imports */

  const serviceStage = new ServiceStage(stageConfig.service.name, {
    config: stageConfig,
    backEnd,
    testerToken: config.getSecret(TESTER_TOKEN_KEY),
  });
  const o = serviceStage.outputs;
  // The outputs contract (src/contract/outputs.ts), key by key, and the tester header.
  return {
    schemaVersion: o.schemaVersion,
    stage: o.stage,
    platform: o.platform,
    service: o.service,
    endpoint: o.endpoint,
    stableSlot: o.stableSlot,
    candidateSlot: o.candidateSlot,
    weights: o.weights,
    releases: o.releases,
    routing: o.routing,
    roles: o.roles,
    health: o.health,
    flags: o.flags,
    aws: o.aws,
    release: o.release,
    testerHeader: serviceStage.testerHeader,
  };
}

/** The stack's `slipway:*` keys, parsed and checked; a bad value is a RunError listing every problem. */
function stageConfigOf(config: pulumi.Config, stageName: string): StageConfig {
  const raw = readRawConfig((key) => {
    const text = config.get(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  });
  // Unknown slipway:* keys are passed on, so that the parser names them.
  for (const key of Object.keys(pulumi.runtime.allConfig())) {
    const [ns, name] = key.split(":");
    if (
      ns === CONFIG_NAMESPACE &&
      name &&
      name !== TESTER_TOKEN_KEY &&
      !(CONFIG_KEYS as readonly string[]).includes(name)
    )
      raw[name] = config.get(name);
  }
  try {
    return parseStageConfig(raw, stageName);
  } catch (err) {
    // Print the list as is; a stack trace would only hide it.
    if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}
