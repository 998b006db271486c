export * from "./stage";
export * from "./platform";
export * as kubernetes from "./kubernetes";
export * as aws from "./aws";

import type { PLATFORMS } from "../src/config/schema";
import { awsBackEnd } from "./aws/stage";
import { kubernetesBackEnd } from "./kubernetes/stage";
import type { PlatformBackEnd } from "./platform";

/** Both back ends, for ServiceStage's `backEnd: backEnds[config.platform]` (this barrel loads both SDKs). */
export const backEnds: Record<(typeof PLATFORMS)[number], PlatformBackEnd> = {
  kubernetes: kubernetesBackEnd,
  aws: awsBackEnd,
};
