import {
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ECSClient,
  type Service,
} from "@aws-sdk/client-ecs";
import {
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  type TargetHealthDescription,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Slot } from "../domain";
import type { AwsStageOutputs } from "../contract/outputs";
import { NotServingError } from "../pipeline/errors";
import { replicasOf, type StageState } from "../pipeline/machine";
import { servingSlots, type ServingCheck } from "../pipeline/serving";
import { describeAwsError, describeEndpoint, type AwsClientSettings } from "./client";

/** Where each slot's ECS service is: `outputs.aws.ecs`, or its stand-in for older stacks. */
export interface EcsServices {
  clusterArn: string;
  /** A service ARN (from the outputs) or a service name in the cluster. */
  services: Record<Slot, string>;
}

export interface EcsServingOptions {
  settings: AwsClientSettings;
  /** The stage's `aws` outputs: each slot's target group by ARN. */
  stage: AwsStageOutputs;
  services: EcsServices;
  /** Use these clients instead of building them (tests, the release's shared clients). */
  ecs?: ECSClient;
  elb?: ElasticLoadBalancingV2Client;
}

/**
 * An AWS stage: each slot that must serve has its ECS service ACTIVE, on a task definition
 * with the declared image, scaled to and running at least the declared tasks, and at least
 * one healthy target in its target group. A call that fails is a problem like any other:
 * what cannot be read is not known to serve.
 */
export class EcsServing implements ServingCheck {
  private readonly ecs: ECSClient;
  private readonly elb: ElasticLoadBalancingV2Client;
  /** A registered task definition never changes: its images are read once per ARN. */
  private readonly images = new Map<string, string[]>();

  constructor(private readonly options: EcsServingOptions) {
    this.ecs = options.ecs ?? new ECSClient(options.settings);
    this.elb = options.elb ?? new ElasticLoadBalancingV2Client(options.settings);
  }

  async check(state: StageState, fullReplicas: number, when: string): Promise<void> {
    const problems: string[] = [];
    for (const slot of servingSlots(state)) {
      const declared = replicasOf(state, slot, fullReplicas);
      if (declared === 0) continue; // a scaled-down slot serves nothing, by design
      problems.push(...(await this.serviceProblems(slot, state.slots[slot].image, declared)));
      problems.push(...(await this.targetProblems(slot)));
    }
    if (problems.length > 0) throw new NotServingError(when, problems);
  }

  private async serviceProblems(slot: Slot, image: string, declared: number): Promise<string[]> {
    const cluster = this.options.services.clusterArn;
    const id = this.options.services.services[slot];
    let service: Service | undefined;
    let failure: string | undefined;
    try {
      const answer = await this.ecs.send(new DescribeServicesCommand({ cluster, services: [id] }));
      service = answer.services?.find((s) => s.serviceArn === id || s.serviceName === id);
      failure = answer.failures?.[0]?.reason;
    } catch (err) {
      return [
        `${slot}: cannot read ECS service ${id} in cluster ${cluster}: DescribeServices: ${describeAwsError(err, describeEndpoint(this.options.settings, "ECS"))}`,
      ];
    }
    if (!service)
      return [
        `${slot}: no ECS service ${id} in cluster ${cluster} (DescribeServices: ${failure ?? "not returned"}; deleted outside the stack?)`,
      ];
    const name = service.serviceName ?? id;
    if (service.status !== "ACTIVE")
      return [
        `${slot}: ECS service ${name} is ${service.status ?? "of no status"}, not ACTIVE (deleted outside the stack?)`,
      ];
    const problems: string[] = [];
    const images = await this.taskImages(slot, name, service.taskDefinition);
    if (typeof images === "string") problems.push(images);
    else if (!images.includes(image))
      problems.push(
        `${slot}: ECS service ${name} runs task definition ${service.taskDefinition} with ${images.join(", ") || "no image"}, the stack declares ${image}`,
      );
    const desired = service.desiredCount ?? 0;
    const running = service.runningCount ?? 0;
    if (desired < declared)
      problems.push(
        `${slot}: ECS service ${name} is scaled to ${desired}, the stack declares ${declared}`,
      );
    if (running < declared)
      problems.push(`${slot}: ECS service ${name} has ${running}/${declared} running tasks`);
    return problems;
  }

  /** The container images of a task definition, or the problem reading it, in words. */
  private async taskImages(
    slot: Slot,
    service: string,
    arn: string | undefined,
  ): Promise<string[] | string> {
    if (!arn) return `${slot}: ECS service ${service} has no task definition`;
    const known = this.images.get(arn);
    if (known) return known;
    try {
      const answer = await this.ecs.send(
        new DescribeTaskDefinitionCommand({ taskDefinition: arn }),
      );
      const images = (answer.taskDefinition?.containerDefinitions ?? []).flatMap((c) =>
        c.image ? [c.image] : [],
      );
      this.images.set(arn, images);
      return images;
    } catch (err) {
      return `${slot}: cannot read task definition ${arn} of ECS service ${service}: DescribeTaskDefinition: ${describeAwsError(err, describeEndpoint(this.options.settings, "ECS"))}`;
    }
  }

  private async targetProblems(slot: Slot): Promise<string[]> {
    const group = this.options.stage.targetGroups[slot];
    let targets: TargetHealthDescription[];
    try {
      targets =
        (await this.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: group.arn })))
          .TargetHealthDescriptions ?? [];
    } catch (err) {
      return [
        `${slot}: cannot read the target health of target group ${group.arn}: DescribeTargetHealth: ${describeAwsError(err, describeEndpoint(this.options.settings, "Elastic Load Balancing"))}`,
      ];
    }
    if (targets.some((t) => t.TargetHealth?.State === "healthy")) return [];
    return [
      `${slot}: target group ${group.arn} has no healthy target (${describeTargets(targets)}), at least 1 expected`,
    ];
  }
}

/** "no registered target", or "3 registered: 2 unhealthy (Target.Timeout), 1 initial". */
function describeTargets(targets: TargetHealthDescription[]): string {
  if (targets.length === 0) return "no registered target";
  const counts = new Map<string, number>();
  for (const t of targets) {
    const state = t.TargetHealth?.State ?? "unknown";
    const reason = t.TargetHealth?.Reason;
    const key = reason ? `${state} (${reason})` : state;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return `${targets.length} registered: ${[...counts].map(([k, n]) => `${n} ${k}`).join(", ")}`;
}
