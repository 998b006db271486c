import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseStageConfig } from "../../../src/config/load";
import type { StageConfig } from "../../../src/config/schema";
import { otherSlot, SLOTS } from "../../../src/domain";
import {
  parseStageOutputs,
  SCHEMA_VERSION,
  type AwsStageOutputs,
  type StageOutputs,
} from "../../../src/contract/outputs";
import { weightsFor } from "../../../src/traffic/weights";

export const ROOT = join(__dirname, "..", "..", "..");

/**
 * The outputs the program gives an AWS stage for `config` (components/stage.ts),
 * with the `aws` block naming a moto world: what a stack update of that config
 * would leave as the stack's outputs.
 */
export function awsStageOutputs(config: StageConfig, aws: AwsStageOutputs): StageOutputs {
  const stable = config.traffic.stable;
  const releaseOf = (slot: (typeof SLOTS)[number]) => {
    const r = config.slots[slot];
    return {
      image: r.image,
      version: r.version,
      ...(r.revision ? { revision: r.revision } : {}),
      replicas: r.replicas ?? config.service.replicas,
    };
  };
  const health = (slot: (typeof SLOTS)[number]) => ({
    errorRatio: aws.alarms[slot][0]!,
    p99Latency: aws.alarms[slot][1] ?? aws.alarms[slot][0]!,
  });
  return parseStageOutputs(
    {
      schemaVersion: SCHEMA_VERSION,
      stage: config.stage,
      platform: "aws",
      service: {
        name: config.service.name,
        runtime: config.service.runtime,
        port: config.service.port,
      },
      endpoint: "https://checkout.staging.example.com/",
      stableSlot: stable,
      candidateSlot: otherSlot(stable),
      weights: weightsFor(stable, config.traffic.canaryWeight),
      releases: { blue: releaseOf("blue"), green: releaseOf("green") },
      routing: { kind: "ListenerRule", id: aws.listenerRuleArn },
      roles: {
        deployer: "arn:aws:iam::123456789012:role/checkout-staging-deploy",
        services: {
          blue: "arn:aws:iam::123456789012:role/checkout-task",
          green: "arn:aws:iam::123456789012:role/checkout-task",
        },
      },
      health: { kind: "cloudwatch", blue: health("blue"), green: health("green") },
      flags: {},
      aws,
      ...(config.release ? { release: config.release } : {}),
    },
    `stage ${config.stage} (stand-in)`,
  );
}

/** The staging stage's config (an AWS stage), with overrides applied to its raw values. */
export function stagingConfig(change: (raw: any) => void = () => {}): StageConfig {
  const doc = parse(readFileSync(join(ROOT, "Pulumi.staging.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  const raw: Record<string, any> = {};
  for (const [key, value] of Object.entries(doc.config))
    if (key.startsWith("slipway:")) raw[key.slice("slipway:".length)] = structuredClone(value);
  change(raw);
  return parseStageConfig(raw, "staging");
}
