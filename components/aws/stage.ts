import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig, StageConfig } from "../../src/config/schema";
import { SLOTS, type Slot } from "../../src/domain";
import type { AwsStageOutputs } from "../../src/contract/outputs";
import { AWS_TAGS } from "../naming";
import type { PlatformBackEnd, PlatformStage, RoutingInputs } from "../platform";
import { AwsHealthAlarms, loadBalancerArnSuffix } from "./alarms";
import { AwsDeployerRole } from "./deployer";
import { AwsFlags } from "./flags";
import { AwsServiceIdentities } from "./identities";
import { AwsWeightedRoute } from "./route";
import { AwsSlot } from "./slot";

/** The AWS back end of ServiceStage. */
export const awsBackEnd: PlatformBackEnd = (name, { config, routing }, opts) => {
  // parseStageConfig refuses this already; a config built by hand may not have been through it.
  if (!config.aws) {
    // There is no AwsStage yet: the error belongs to the stage that asked for one.
    const owner = opts.parent;
    const message =
      'config.aws (slipway:aws): missing; it is required when slipway:platform is "aws"';
    throw owner ? new pulumi.ResourceError(message, owner) : new Error(message);
  }
  return new AwsStage(`${name}-aws`, { config, aws: config.aws, routing }, opts);
};

export interface AwsStageArgs {
  config: StageConfig;
  /** `config.aws`, required on this platform. */
  aws: AwsConfig;
  routing: RoutingInputs;
}

/**
 * One stage on AWS: ECS Fargate slots behind a weighted ALB listener rule, in a
 * VPC, cluster and listener the platform team already runs (bring your own).
 */
export class AwsStage extends pulumi.ComponentResource implements PlatformStage {
  readonly provider: aws.Provider;
  readonly route: AwsWeightedRoute;
  readonly slots: Record<Slot, AwsSlot>;
  readonly identities: AwsServiceIdentities;
  readonly deployer: AwsDeployerRole;
  readonly alarms: AwsHealthAlarms;
  readonly flags: AwsFlags;
  readonly routingId: pulumi.Output<string>;
  readonly headerRoutingId?: pulumi.Output<string>;
  readonly deployerIdentity: pulumi.Output<string>;
  readonly serviceIdentities: Record<Slot, pulumi.Output<string>>;
  readonly executionIdentity: pulumi.Output<string>;
  readonly endpoint: pulumi.Output<string>;
  readonly health: Record<Slot, Record<string, pulumi.Output<string>>>;
  readonly aws: pulumi.Output<AwsStageOutputs>;

  constructor(name: string, args: AwsStageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:Stage", name, {}, opts);
    const cfg = args.config;
    const awsCfg = args.aws;
    const service = cfg.service;
    const tags = {
      [AWS_TAGS.service]: service.name,
      [AWS_TAGS.stage]: cfg.stage,
      [AWS_TAGS.managedBy]: "slipway",
    };

    this.provider = new aws.Provider(
      `${name}-provider`,
      { region: awsCfg.region },
      { parent: this },
    );
    const childOpts = { parent: this, provider: this.provider };

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      {
        name: `/slipway/${cfg.stage}/${service.name}`,
        retentionInDays: awsCfg.logRetentionDays,
        tags,
      },
      childOpts,
    );

    // Tasks accept traffic from the load balancer only, on the service port.
    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-tasks`,
      {
        namePrefix: `${service.name}-${cfg.stage}-`,
        description: `Slipway ${service.name} (${cfg.stage}) tasks: ingress from the ALB only`,
        vpcId: awsCfg.vpcId,
        ingress: [
          {
            protocol: "tcp",
            fromPort: service.port,
            toPort: service.port,
            securityGroups: [awsCfg.loadBalancerSecurityGroupId],
            description: "ALB to service port",
          },
        ],
        egress: [
          {
            protocol: "-1",
            fromPort: 0,
            toPort: 0,
            cidrBlocks: ["0.0.0.0/0"],
            description: "outbound",
          },
        ],
        tags,
      },
      childOpts,
    );

    this.identities = new AwsServiceIdentities(
      `${name}-identities`,
      {
        serviceName: service.name,
        repositoryArn: awsCfg.ecrRepositoryArn,
        logGroupArn: logGroup.arn,
        permissions: service.permissions,
        tags,
      },
      childOpts,
    );

    this.route = new AwsWeightedRoute(
      `${name}-route`,
      {
        service,
        aws: awsCfg,
        ...args.routing,
        tags,
      },
      childOpts,
    );

    const slots = {} as Record<Slot, AwsSlot>;
    for (const slot of SLOTS) {
      const release = cfg.slots[slot];
      slots[slot] = new AwsSlot(
        `${name}-${slot}`,
        {
          stage: cfg.stage,
          slot,
          service,
          release,
          replicas: release.replicas ?? service.replicas,
          aws: awsCfg,
          executionRoleArn: this.identities.executionRole.arn,
          taskRoleArn: this.identities.taskRole.arn,
          logGroupName: logGroup.name,
          securityGroupId: securityGroup.id,
          targetGroupArn: this.route.targetGroups[slot].arn,
          routing: this.route,
          tags,
        },
        childOpts,
      );
    }
    this.slots = slots;

    this.alarms = new AwsHealthAlarms(
      `${name}-alarms`,
      {
        serviceName: service.name,
        stage: cfg.stage,
        aws: awsCfg,
        targetGroupArnSuffixes: {
          blue: this.route.targetGroups.blue.arnSuffix,
          green: this.route.targetGroups.green.arnSuffix,
        },
        tags,
      },
      childOpts,
    );

    this.flags = new AwsFlags(
      `${name}-flags`,
      { serviceName: service.name, stage: cfg.stage, flags: cfg.flags, tags },
      childOpts,
    );

    const rules = [this.route.rule, ...(this.route.headerRule ? [this.route.headerRule] : [])];
    this.deployer = new AwsDeployerRole(
      `${name}-deployer`,
      {
        serviceName: service.name,
        stage: cfg.stage,
        principalArn: awsCfg.deployerPrincipalArn,
        ruleArns: rules.map((r) => r.arn),
        serviceArns: SLOTS.map((s) => slots[s].service.id),
        passRoleArns: [this.identities.executionRole.arn, this.identities.taskRole.arn],
        alarmArns: SLOTS.flatMap((s) => [
          this.alarms.alarms[s].errorRatio.arn,
          this.alarms.alarms[s].p99Latency.arn,
        ]),
        appConfigArns: this.flags.arns,
        tags,
      },
      childOpts,
    );

    this.routingId = this.route.rule.arn;
    this.headerRoutingId = this.route.headerRule?.arn;
    this.deployerIdentity = this.deployer.role.arn;
    this.executionIdentity = this.identities.executionRole.arn;
    this.serviceIdentities = {
      blue: this.identities.taskRole.arn,
      green: this.identities.taskRole.arn,
    };
    const host = awsCfg.hostHeaders.find((h) => !h.includes("*"));
    this.endpoint = host
      ? pulumi.output(`https://${host}/`)
      : aws.lb
          .getLoadBalancerOutput(
            { arn: awsCfg.loadBalancerArn },
            { parent: this, provider: this.provider },
          )
          .apply((lb) => `http://${lb.dnsName}/`);
    this.health = this.alarms.alarmNames;
    const groups = this.route.targetGroups;
    const alarmNames = (slot: Slot) => [
      this.alarms.alarmNames[slot].errorRatio,
      this.alarms.alarmNames[slot].p99Latency,
    ];
    const ecsServices = pulumi
      .all([slots.blue.service.cluster, slots.blue.serviceArn, slots.green.serviceArn])
      .apply(([clusterArn, blue, green]) => ({ clusterArn, services: { blue, green } }));
    this.aws = pulumi
      .all([
        this.route.rule.arn,
        groups.blue.arn,
        groups.blue.arnSuffix,
        groups.green.arn,
        groups.green.arnSuffix,
        pulumi.all(alarmNames("blue")),
        pulumi.all(alarmNames("green")),
        ecsServices,
      ])
      .apply(([ruleArn, blueArn, blueDim, greenArn, greenDim, blueAlarms, greenAlarms, ecs]) => ({
        loadBalancerDimension: loadBalancerArnSuffix(awsCfg.loadBalancerArn),
        listenerRuleArn: ruleArn,
        targetGroups: {
          blue: { arn: blueArn, dimension: blueDim },
          green: { arn: greenArn, dimension: greenDim },
        },
        alarms: { blue: blueAlarms, green: greenAlarms },
        ecs,
      }));
    this.registerOutputs({
      routingId: this.routingId,
      headerRoutingId: this.headerRoutingId,
      deployerIdentity: this.deployerIdentity,
      executionIdentity: this.executionIdentity,
      serviceIdentities: this.serviceIdentities,
      endpoint: this.endpoint,
      health: this.health,
      aws: this.aws,
    });
  }
}
