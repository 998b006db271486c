import * as pulumi from "@pulumi/pulumi";
import type { PlatformBackEnd } from "./components/platform";
import { ServiceStage } from "./components/stage";
import {
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  ConfigError,
  parseStageConfig,
  readRawConfig,
  TESTER_TOKEN_KEY,
} from "./src/config/load";
import { programFailpoint, programFailpointLanded } from "./src/pipeline/failpoint";

// Fault injection for the fault tests (src/pipeline/failpoint.ts); inert unless SLIPWAY_FAILPOINT is set.
programFailpoint();

// Validate every slipway:* key before declaring anything: a bad value fails the
// preview with one message per problem, and no resource is touched.
const config = new pulumi.Config(CONFIG_NAMESPACE);
const stageName = pulumi.getStack();
const raw = readRawConfig((key) => {
  const text = config.get(key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
});
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

let stageConfig;
try {
  stageConfig = parseStageConfig(raw, stageName);
} catch (err) {
  if (err instanceof ConfigError) {
    // Print the list as is; a stack trace would only hide it.
    throw new pulumi.RunError(err.message);
  }
  throw err;
}

// Only this stage's platform and its SDK are loaded (@pulumi/aws alone takes about 0.3 s).
/* eslint-disable @typescript-eslint/no-require-imports -- loaded on the stage that uses it */
const backEnd: PlatformBackEnd =
  stageConfig.platform === "aws"
    ? (require("./components/aws/stage") as typeof import("./components/aws/stage")).awsBackEnd
    : (require("./components/kubernetes/stage") as typeof import("./components/kubernetes/stage"))
        .kubernetesBackEnd;
/* eslint-enable @typescript-eslint/no-require-imports */

const serviceStage = new ServiceStage(stageConfig.service.name, {
  config: stageConfig,
  backEnd,
  testerToken: config.getSecret(TESTER_TOKEN_KEY),
});

export const schemaVersion = serviceStage.outputs.schemaVersion;
export const stage = serviceStage.outputs.stage;
export const platform = serviceStage.outputs.platform;
export const service = serviceStage.outputs.service;
export const endpoint = serviceStage.outputs.endpoint;
export const stableSlot = serviceStage.outputs.stableSlot;
export const candidateSlot = serviceStage.outputs.candidateSlot;
export const weights = serviceStage.outputs.weights;
export const releases = serviceStage.outputs.releases;
export const routing = serviceStage.outputs.routing;
export const roles = serviceStage.outputs.roles;
export const health = serviceStage.outputs.health;
export const flags = serviceStage.outputs.flags;
export const aws = serviceStage.outputs.aws;
export const release = serviceStage.outputs.release;
// Fault injection: `landed:<update>` holds the program once the route is applied (inert otherwise).
programFailpointLanded(serviceStage.outputs.routing);
export const testerHeader = serviceStage.testerHeader;
