import type * as pulumi from "@pulumi/pulumi";
import type { Slot } from "../src/config/schema";
import type { AwsStageOutputs } from "../src/contract/outputs";

/** What a platform back end gives the stage for its outputs contract. */
export interface PlatformStage {
  readonly routingId: pulumi.Output<string>;
  readonly headerRoutingId?: pulumi.Output<string>;
  readonly deployerIdentity: pulumi.Output<string>;
  readonly serviceIdentities: Record<Slot, pulumi.Output<string>>;
  readonly executionIdentity?: pulumi.Output<string>;
  readonly endpoint: pulumi.Output<string>;
  readonly health: Record<Slot, Record<string, pulumi.Input<string>>>;
  /** What the pipeline reads on AWS (the `aws` output); Kubernetes has none. */
  readonly aws?: pulumi.Output<AwsStageOutputs>;
}
