import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig, ServiceConfig } from "../../src/config/schema";
import { SLOTS, type Slot } from "../../src/domain";
import type { RoutingInputs } from "../platform";
import { argumentError, checkWeights } from "../arguments";
import { AWS_TAGS } from "../naming";

export interface AwsWeightedRouteArgs extends RoutingInputs {
  service: ServiceConfig;
  aws: AwsConfig;
  tags: Record<string, string>;
}

/**
 * Where traffic goes on an ALB: a target group per slot, the weighted listener
 * rule (the one resource a canary step or rollback updates) and, one priority
 * higher, the tester rule that sends a secret header to the candidate.
 * Priorities are fixed per stage so nothing is renumbered or replaced.
 */
export class AwsWeightedRoute extends pulumi.ComponentResource {
  readonly targetGroups: Record<Slot, aws.lb.TargetGroup>;
  readonly rule: aws.lb.ListenerRule;
  readonly headerRule?: aws.lb.ListenerRule;

  constructor(name: string, args: AwsWeightedRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:WeightedRoute", name, {}, opts);
    checkWeights(this, args.weights);
    // The tester rule takes the priority one below (evaluated first); ALB priorities start at 1.
    const priority = args.aws.rulePriority;
    if (!Number.isInteger(priority) || priority < 2 || priority > 50000)
      throw argumentError(
        this,
        "aws.rulePriority",
        priority,
        "an integer from 2 to 50000 (the tester rule takes the priority one below it)",
      );
    const { service } = args;
    const groups = {} as Record<Slot, aws.lb.TargetGroup>;
    for (const slot of SLOTS) {
      groups[slot] = new aws.lb.TargetGroup(
        `${name}-${slot}-tg`,
        {
          // namePrefix, not name: a change that forces a new group creates it before deleting the old.
          namePrefix: `${slot}-`.slice(0, 6),
          vpcId: args.aws.vpcId,
          port: service.port,
          protocol: "HTTP",
          targetType: "ip",
          deregistrationDelay: 30,
          healthCheck: {
            path: service.readyPath,
            port: "traffic-port",
            matcher: "200",
            interval: 10,
            timeout: 5,
            healthyThreshold: 2,
            unhealthyThreshold: 3,
          },
          tags: { ...args.tags, [AWS_TAGS.slot]: slot },
        },
        { parent: this },
      );
    }
    this.targetGroups = groups;

    const conditions = [
      ...(args.aws.hostHeaders.includes("*")
        ? []
        : [{ hostHeader: { values: args.aws.hostHeaders } }]),
      { pathPattern: { values: args.aws.pathPatterns } },
    ];

    this.rule = new aws.lb.ListenerRule(
      `${name}-weighted`,
      {
        listenerArn: args.aws.listenerArn,
        priority: args.aws.rulePriority,
        conditions,
        actions: [
          {
            type: "forward",
            forward: {
              targetGroups: SLOTS.map((slot) => ({
                arn: groups[slot].arn,
                weight: args.weights[slot],
              })),
              stickiness: { enabled: false, duration: 1 },
            },
          },
        ],
        tags: args.tags,
      },
      { parent: this },
    );

    if (args.headerRoute) {
      this.headerRule = new aws.lb.ListenerRule(
        `${name}-tester`,
        {
          listenerArn: args.aws.listenerArn,
          priority: args.aws.rulePriority - 1,
          conditions: [
            ...conditions,
            {
              httpHeader: {
                httpHeaderName: args.headerRoute.name,
                values: [args.headerRoute.value],
              },
            },
          ],
          actions: [{ type: "forward", targetGroupArn: groups[args.candidate].arn }],
          tags: args.tags,
        },
        { parent: this },
      );
    }
    this.registerOutputs({
      ruleArn: this.rule.arn,
      headerRuleArn: this.headerRule?.arn,
      targetGroupArns: { blue: groups.blue.arn, green: groups.green.arn },
    });
  }
}
