import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig, ServiceConfig, SlotRelease } from "../../src/config/schema";
import type { Slot } from "../../src/domain";
import { containerEnv } from "../../src/runtime/profiles";
import { checkReplicas } from "../arguments";
import { slotResourceName, AWS_TAGS } from "../naming";

export interface AwsSlotArgs {
  stage: string;
  slot: Slot;
  service: ServiceConfig;
  release: SlotRelease;
  replicas: number;
  aws: AwsConfig;
  executionRoleArn: pulumi.Input<string>;
  taskRoleArn: pulumi.Input<string>;
  logGroupName: pulumi.Input<string>;
  securityGroupId: pulumi.Input<string>;
  /** This slot's target group; it belongs to the routing component. */
  targetGroupArn: pulumi.Input<string>;
  /** ECS only accepts a target group that a listener rule already uses. */
  routing: pulumi.Resource;
  tags: Record<string, string>;
}

/**
 * One colour on ECS Fargate: a task definition pinned by digest and a service
 * with the deployment circuit breaker on, registered in the slot's target group.
 * No input depends on traffic or on which slot is stable.
 */
export class AwsSlot extends pulumi.ComponentResource {
  readonly taskDefinition: aws.ecs.TaskDefinition;
  readonly service: aws.ecs.Service;
  /** The ECS service's ARN (its id) and name: what the pipeline updates and scales. */
  readonly serviceArn: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  readonly taskDefinitionArn: pulumi.Output<string>;

  constructor(name: string, args: AwsSlotArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:Slot", name, {}, opts);
    checkReplicas(this, args.replicas);
    const { service, release, slot } = args;
    const family = slotResourceName(service.name, slot);
    const tags = { ...args.tags, [AWS_TAGS.slot]: slot };

    this.taskDefinition = new aws.ecs.TaskDefinition(
      `${name}-task`,
      {
        family,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: String(Math.round(service.cpu * 1024)),
        memory: String(service.memoryMiB),
        executionRoleArn: args.executionRoleArn,
        taskRoleArn: args.taskRoleArn,
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "X86_64" },
        containerDefinitions: pulumi.output(args.logGroupName).apply((logGroup) =>
          JSON.stringify([
            {
              name: service.name,
              image: release.image,
              essential: true,
              readonlyRootFilesystem: true,
              portMappings: [{ containerPort: service.port, protocol: "tcp" }],
              environment: Object.entries(containerEnv(service, slot, release)).map(
                ([n, value]) => ({ name: n, value }),
              ),
              logConfiguration: {
                logDriver: "awslogs",
                options: {
                  "awslogs-group": logGroup,
                  "awslogs-region": args.aws.region,
                  "awslogs-stream-prefix": slot,
                },
              },
            },
          ]),
        ),
        tags,
      },
      { parent: this },
    );

    this.service = new aws.ecs.Service(
      `${name}-service`,
      {
        name: family,
        cluster: args.aws.clusterArn,
        taskDefinition: this.taskDefinition.arn,
        desiredCount: args.replicas,
        launchType: "FARGATE",
        deploymentCircuitBreaker: { enable: true, rollback: true },
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        healthCheckGracePeriodSeconds: 10,
        networkConfiguration: {
          subnets: args.aws.subnetIds,
          securityGroups: [args.securityGroupId],
          assignPublicIp: false,
        },
        loadBalancers: [
          {
            targetGroupArn: args.targetGroupArn,
            containerName: service.name,
            containerPort: service.port,
          },
        ],
        propagateTags: "SERVICE",
        tags,
      },
      { parent: this, dependsOn: [args.routing] },
    );
    this.serviceArn = this.service.id;
    this.serviceName = this.service.name;
    this.taskDefinitionArn = this.taskDefinition.arn;
    this.registerOutputs({
      serviceArn: this.serviceArn,
      serviceName: this.serviceName,
      taskDefinitionArn: this.taskDefinitionArn,
    });
  }
}
