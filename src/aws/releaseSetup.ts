import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { ECSClient } from "@aws-sdk/client-ecs";
import { ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { slotResourceName } from "../../components/naming";
import type { AnalysisWindow, MetricInputs } from "../analysis/run";
import type { AnalysisSpec } from "../analysis/spec";
import type { StageConfig } from "../config/schema";
import { SLOTS, type Slot } from "../domain";
import type { AwsStageOutputs, StageOutputs } from "../contract/outputs";
import type { Weights } from "../traffic/weights";
import { StageAlarms, type AlarmStates } from "./alarms";
import { cloudWatchMetricNames, cloudWatchMetrics, cloudWatchSampleShortfall } from "./analysis";
import { awsClientSettings, describeEndpoint, type AwsClientSettings } from "./client";
import {
  LoadBalancerReadBackError,
  LoadBalancerWeights,
  type DeclaredRouting,
} from "./loadBalancerWeights";
import { EcsServing, type EcsServices } from "./serving";

/**
 * Everything an AWS release reads, set up and probed before the first update:
 * the stack's `aws` outputs, the stage's region, credentials from the default
 * SDK chain, the weighted rule (one DescribeRules) and the candidate's alarms
 * (one DescribeAlarms). A release that cannot be watched is not started.
 */

export class AwsSetupError extends Error {
  constructor(
    readonly stage: string,
    /** One entry per missing or broken prerequisite, each naming it. */
    readonly missing: string[],
  ) {
    super(
      `stage ${stage}: the release cannot be watched on AWS, nothing was changed: ${missing.join("; ")}`,
    );
    this.name = "AwsSetupError";
  }
}

export interface AwsRelease {
  settings: AwsClientSettings;
  stage: AwsStageOutputs;
  /**
   * The weights in force, read back from the load balancer; with `declared`, the live rule is
   * compared with the stack's whole (a difference is a RouteDriftedError).
   */
  readWeights(outputs: StageOutputs, declared?: DeclaredRouting): Promise<Weights>;
  /** CloudWatch metrics of the two target groups for one analysis. */
  metrics(args: {
    spec: AnalysisSpec;
    stable: Slot;
    candidate: Slot;
  }): (window: AnalysisWindow) => Promise<MetricInputs>;
  /** The alarm states of a slot's alarms; undefined when alarms are not a rollback signal. */
  alarms?: (slot: Slot) => Promise<AlarmStates>;
  /** What serves: each slot's ECS service and target health (the pipeline's `serving` effect). */
  serving: EcsServing;
  /** Closes the clients. */
  close(): void;
}

export interface PrepareAwsReleaseArgs {
  stageName: string;
  config: StageConfig;
  /** Outputs of the last successful update; undefined for a never-deployed stage. */
  outputs: StageOutputs | undefined;
  /** The analysis of each analysis step of the plan (the stage's spec with the step's count and interval). */
  analyses?: { label: string; spec: AnalysisSpec }[];
  /** The slot the release deploys into (its alarms are probed). */
  candidate: Slot;
  env?: Record<string, string | undefined>;
}

export async function prepareAwsRelease(args: PrepareAwsReleaseArgs): Promise<AwsRelease> {
  const missing: string[] = [];
  const name = args.stageName;
  const region = args.config.aws?.region;
  if (!region)
    missing.push(`no region: set slipway:aws.region in Pulumi.${name}.yaml (e.g. eu-west-1)`);
  if (!args.outputs) {
    missing.push(
      `no stack outputs: stage ${name} has never been deployed; deploy it once with \`pulumi up --stack ${name}\``,
    );
  } else if (!args.outputs.aws) {
    missing.push(
      `no \`aws\` output (listener rule, target group and alarm names): the stack was deployed by an older Slipway; run \`pulumi up --stack ${name}\` once`,
    );
  }
  const analyses = args.analyses ?? [];
  if (analyses.length > 0) {
    try {
      cloudWatchMetricNames(analyses[0]!.spec);
      for (const { label, spec } of analyses) {
        const shortfall = cloudWatchSampleShortfall(spec, label);
        if (shortfall) missing.push(shortfall);
      }
    } catch (err) {
      missing.push((err as Error).message);
    }
  }
  if (!region) throw new AwsSetupError(name, missing);

  const settings = awsClientSettings(region, args.env);
  const elb = new ElasticLoadBalancingV2Client(settings);
  const cloudwatch = new CloudWatchClient(settings);
  const ecs = new ECSClient(settings);
  const close = () => {
    elb.destroy();
    cloudwatch.destroy();
    ecs.destroy();
  };
  try {
    try {
      await cloudwatch.config.credentials();
    } catch (err) {
      missing.push(
        `no AWS credentials: the default SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, web identity, container or instance role) found none (${(err as Error).message.split("\n")[0]})`,
      );
    }
    if (missing.length > 0) throw new AwsSetupError(name, missing);

    const outputs = args.outputs!;
    const stage = outputs.aws!;
    const weights = new LoadBalancerWeights({ settings, client: elb });
    const alarms = new StageAlarms({ settings, client: cloudwatch });
    try {
      await weights.read(outputs);
    } catch (err) {
      if (!(err instanceof LoadBalancerReadBackError)) throw err;
      missing.push(`weights cannot be read back: ${err.message}`);
    }
    const watchAlarms = args.config.aws!.alarms.rollbackOnAlarm;
    if (watchAlarms) {
      const names = stage.alarms[args.candidate];
      if (names.length === 0)
        missing.push(
          `no alarms for slot ${args.candidate} in the outputs, and slipway:aws.alarms.rollbackOnAlarm is true`,
        );
      else {
        try {
          const states = await alarms.states(names);
          if (states.missing.length > 0)
            missing.push(
              `alarms ${states.missing.join(", ")} named in the outputs do not exist in ${describeEndpoint(settings, "CloudWatch")}`,
            );
        } catch (err) {
          missing.push((err as Error).message);
        }
      }
    }
    if (missing.length > 0) throw new AwsSetupError(name, missing);

    return {
      settings,
      stage,
      readWeights: (o, declared) => weights.read(o, declared),
      metrics: ({ spec, stable, candidate }) =>
        cloudWatchMetrics({
          stage,
          settings,
          spec,
          stable,
          candidate,
          latencyStatistic: args.config.aws!.analysis.latencyStatistic,
          client: cloudwatch,
        }),
      ...(watchAlarms ? { alarms: (slot: Slot) => alarms.states(stage.alarms[slot]) } : {}),
      serving: new EcsServing({
        settings,
        stage,
        services: stage.ecs ?? servicesByName(args.config),
        ecs,
        elb,
      }),
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * A stack last updated before `aws.ecs` was in the outputs: the cluster of the stack file and
 * the services by the name the slot component gives them. The release's updates export the
 * ARNs, which the next release reads.
 */
function servicesByName(config: StageConfig): EcsServices {
  const services = {} as Record<Slot, string>;
  for (const slot of SLOTS) services[slot] = slotResourceName(config.service.name, slot);
  return { clusterArn: config.aws!.clusterArn, services };
}
