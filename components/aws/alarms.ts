import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../src/config/schema";
import { SLOTS, type Slot } from "../../src/domain";
import { AWS_TAGS } from "../naming";

export interface AwsHealthAlarmsArgs {
  serviceName: string;
  stage: string;
  aws: AwsConfig;
  targetGroupArnSuffixes: Record<Slot, pulumi.Input<string>>;
  tags: Record<string, string>;
}

/** `app/<name>/<id>` from an ALB ARN: the LoadBalancer dimension of its metrics. */
export function loadBalancerArnSuffix(arn: string): string {
  const i = arn.indexOf(":loadbalancer/");
  return i < 0 ? arn : arn.slice(i + ":loadbalancer/".length);
}

/**
 * Per target group: the 5xx ratio (5xx / requests, by metric math) and p99
 * TargetResponseTime. The analysis reads the same metrics with GetMetricData;
 * the alarms are what on-call sees.
 */
export class AwsHealthAlarms extends pulumi.ComponentResource {
  readonly alarms: Record<
    Slot,
    { errorRatio: aws.cloudwatch.MetricAlarm; p99Latency: aws.cloudwatch.MetricAlarm }
  >;
  /** The alarms' names per slot: what on-call and the release's alarm check look up. */
  readonly alarmNames: Record<
    Slot,
    { errorRatio: pulumi.Output<string>; p99Latency: pulumi.Output<string> }
  >;

  constructor(name: string, args: AwsHealthAlarmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:HealthAlarms", name, {}, opts);
    const lb = loadBalancerArnSuffix(args.aws.loadBalancerArn);
    const { errorRatio, p99LatencySeconds, evaluationPeriods } = args.aws.alarms;
    const alarms = {} as AwsHealthAlarms["alarms"];
    for (const slot of SLOTS) {
      const dimensions = { LoadBalancer: lb, TargetGroup: args.targetGroupArnSuffixes[slot] };
      const metric = (metricName: string) => ({
        namespace: "AWS/ApplicationELB",
        metricName,
        dimensions,
        period: 60,
        stat: "Sum",
      });
      const prefix = `${args.serviceName}-${args.stage}-${slot}`;
      alarms[slot] = {
        errorRatio: new aws.cloudwatch.MetricAlarm(
          `${name}-${slot}-5xx-ratio`,
          {
            name: `${prefix}-5xx-ratio`,
            comparisonOperator: "GreaterThanThreshold",
            evaluationPeriods,
            threshold: errorRatio,
            treatMissingData: "notBreaching",
            metricQueries: [
              { id: "errors", metric: metric("HTTPCode_Target_5XX_Count"), returnData: false },
              { id: "requests", metric: metric("RequestCount"), returnData: false },
              {
                id: "ratio",
                expression: "IF(requests > 0, errors / requests, 0)",
                label: "5xx ratio",
                returnData: true,
              },
            ],
            tags: { ...args.tags, [AWS_TAGS.slot]: slot },
          },
          { parent: this },
        ),
        p99Latency: new aws.cloudwatch.MetricAlarm(
          `${name}-${slot}-p99`,
          {
            name: `${prefix}-p99-latency`,
            comparisonOperator: "GreaterThanThreshold",
            evaluationPeriods,
            threshold: p99LatencySeconds,
            namespace: "AWS/ApplicationELB",
            metricName: "TargetResponseTime",
            dimensions,
            period: 60,
            extendedStatistic: "p99",
            treatMissingData: "notBreaching",
            tags: { ...args.tags, [AWS_TAGS.slot]: slot },
          },
          { parent: this },
        ),
      };
    }
    this.alarms = alarms;
    const namesOf = (slot: Slot) => ({
      errorRatio: alarms[slot].errorRatio.name,
      p99Latency: alarms[slot].p99Latency.name,
    });
    this.alarmNames = { blue: namesOf("blue"), green: namesOf("green") };
    this.registerOutputs({ alarmNames: this.alarmNames });
  }
}
