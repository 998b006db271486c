import * as pulumi from "@pulumi/pulumi";
import {
  parseStageOutputs,
  STAGE_OUTPUT_KEYS,
  TESTER_HEADER_OUTPUT,
  type StageOutputs,
} from "./outputs";

/**
 * Typed access to a Slipway stage from another program:
 *
 *   const stage = readStage(new pulumi.StackReference("acme/slipway/prod"));
 *   export const url = stage.endpoint;            // Output<string>
 *   export const weights = stage.outputs.weights; // Output<{blue: number; green: number}>
 */
export interface StageReader {
  /** Every field of the contract, validated. */
  outputs: pulumi.Output<StageOutputs>;
  endpoint: pulumi.Output<string>;
  stableSlot: pulumi.Output<StageOutputs["stableSlot"]>;
  weights: pulumi.Output<StageOutputs["weights"]>;
  releases: pulumi.Output<StageOutputs["releases"]>;
  /** Secret: the header that routes a tester to the candidate slot. */
  testerHeader: pulumi.Output<{ name: string; value: string }>;
}

export function readStage(ref: pulumi.StackReference): StageReader {
  const values = pulumi
    .all(STAGE_OUTPUT_KEYS.map((key) => ref.getOutput(key)))
    .apply((list) => Object.fromEntries(STAGE_OUTPUT_KEYS.map((key, i) => [key, list[i]])));
  const outputs = pulumi
    .all([ref.name, values])
    .apply(([name, v]) => parseStageOutputs(v, `stack ${name}`));
  return {
    outputs,
    endpoint: outputs.apply((o) => o.endpoint),
    stableSlot: outputs.apply((o) => o.stableSlot),
    weights: outputs.apply((o) => o.weights),
    releases: outputs.apply((o) => o.releases),
    testerHeader: pulumi.secret(ref.getOutput(TESTER_HEADER_OUTPUT)) as pulumi.Output<{
      name: string;
      value: string;
    }>,
  };
}
