import type * as pulumi from "@pulumi/pulumi";
import type { StageConfig } from "../src/config/schema";
import type { Slot } from "../src/domain";
import type { Weights } from "../src/traffic/weights";

/**
 * Where traffic goes, derived once from config by ServiceStage and passed to
 * the platform's weighted route: the only inputs a canary step changes.
 */
export interface RoutingInputs {
  weights: Weights;
  candidate: Slot;
  /** The tester route: this header and secret value reach the candidate at any weight. */
  headerRoute?: { name: string; value: pulumi.Input<string> };
}
import type { AwsStageOutputs } from "../src/contract/outputs";

export interface PlatformStageArgs {
  config: StageConfig;
  routing: RoutingInputs;
}

/**
 * Declares a stage's platform resources (a component named after `name`, under the
 * ServiceStage in `opts.parent`). ServiceStage is given the one its platform needs, so a
 * stage loads only that platform's SDK: `kubernetesBackEnd` (components/kubernetes/stage)
 * or `awsBackEnd` (components/aws/stage); `backEnds` in the components barrel has both.
 */
export type PlatformBackEnd = (
  name: string,
  args: PlatformStageArgs,
  opts: pulumi.ComponentResourceOptions,
) => PlatformStage;

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
