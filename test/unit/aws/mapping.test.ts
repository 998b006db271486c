import { describe, expect, it } from "vitest";
import { parseAnalysisSpec } from "../../../src/analysis/spec";
import {
  cloudWatchMetricNames,
  cloudWatchSampleShortfall,
  LoadBalancerReadBackError,
  weightsFromRule,
} from "../../../src/aws";
import type { AwsStageOutputs } from "../../../src/contract/outputs";

const tg = (name: string) =>
  `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${name}/0123456789abcdef`;
const stage: AwsStageOutputs = {
  loadBalancerDimension: "app/platform/0123456789abcdef",
  listenerRuleArn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/x/1/2/3",
  // Names deliberately not `blue-…`/`green-…`: mapping is by ARN only.
  targetGroups: {
    blue: { arn: tg("aaa"), dimension: "targetgroup/aaa/0123456789abcdef" },
    green: { arn: tg("bbb"), dimension: "targetgroup/bbb/0123456789abcdef" },
  },
  alarms: { blue: [], green: [] },
};
const forward = (groups: [string, number][]) => ({
  RuleArn: stage.listenerRuleArn,
  Actions: [
    {
      Type: "forward" as const,
      ForwardConfig: {
        TargetGroups: groups.map(([arn, w]) => ({ TargetGroupArn: arn, Weight: w })),
      },
    },
  ],
});
const problemOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(LoadBalancerReadBackError);
    return (err as LoadBalancerReadBackError).problem;
  }
  throw new Error("no error");
};

describe("weights from a listener rule (pure)", () => {
  it("maps each forwarded target group to its slot by ARN, in any order", () => {
    expect(
      weightsFromRule(
        forward([
          [tg("bbb"), 30],
          [tg("aaa"), 70],
        ]),
        stage,
      ),
    ).toEqual({
      blue: 70,
      green: 30,
    });
  });

  it("a slot the rule does not forward to has weight 0; a single target group is 100", () => {
    expect(weightsFromRule(forward([[tg("aaa"), 100]]), stage)).toEqual({ blue: 100, green: 0 });
    expect(
      weightsFromRule(
        { RuleArn: "r", Actions: [{ Type: "forward", TargetGroupArn: tg("bbb") }] },
        stage,
      ),
    ).toEqual({ blue: 0, green: 100 });
  });

  it("relative weights become the traffic split in percent", () => {
    expect(
      weightsFromRule(
        forward([
          [tg("aaa"), 1],
          [tg("bbb"), 1],
        ]),
        stage,
      ),
    ).toEqual({
      blue: 50,
      green: 50,
    });
    expect(
      weightsFromRule(
        forward([
          [tg("aaa"), 999],
          [tg("bbb"), 1],
        ]),
        stage,
      ),
    ).toEqual({
      blue: 100,
      green: 0,
    });
  });

  it("a foreign target group, no forward action, or no traffic at all is a typed error", () => {
    expect(problemOf(() => weightsFromRule(forward([[tg("blue-x"), 100]]), stage))).toBe(
      "foreignTargetGroup",
    );
    expect(
      problemOf(() =>
        weightsFromRule(
          { RuleArn: "r", Actions: [{ Type: "fixed-response", FixedResponseConfig: {} as any }] },
          stage,
        ),
      ),
    ).toBe("notForwarding");
    expect(
      problemOf(() =>
        weightsFromRule(
          forward([
            [tg("aaa"), 0],
            [tg("bbb"), 0],
          ]),
          stage,
        ),
      ),
    ).toBe("noTraffic");
  });
});

describe("which analysis metrics CloudWatch serves (pure)", () => {
  it("the default metrics map to the ALB's 5xx ratio and TargetResponseTime", () => {
    expect(cloudWatchMetricNames(parseAnalysisSpec({}))).toEqual({
      errors: "errors",
      latency: "latency",
    });
    expect(
      cloudWatchMetricNames(
        parseAnalysisSpec({
          metrics: [
            { name: "5xx", type: "ratio" },
            { name: "p99", type: "samples" },
          ],
        }),
      ),
    ).toEqual({ errors: "5xx", latency: "p99" });
  });

  it("refuses metrics CloudWatch cannot serve, naming them", () => {
    expect(() =>
      cloudWatchMetricNames(
        parseAnalysisSpec({
          metrics: [
            { name: "errors", type: "ratio" },
            { name: "timeouts", type: "ratio" },
            { name: "queue", type: "samples", prometheus: { samples: "queue_depth" } },
          ],
        }),
      ),
    ).toThrow(
      /slipway:canary\.analysis\.metrics on an AWS stage: ratio metrics errors, timeouts: .*; metric queue has PromQL queries/,
    );
  });
});

describe("an analysis that CloudWatch's one-minute latency can never satisfy (pure)", () => {
  it("is named with the numbers, and a long enough one is not", () => {
    const spec = parseAnalysisSpec({ count: 5, interval: "1m" });
    expect(cloudWatchSampleShortfall(spec, "step 2")).toBe(
      "step 2: metric latency needs 10 values per slot (minSamples), but TargetResponseTime has one value per minute " +
        "and the cumulative window spans 300s (5 values); set slipway:canary.analysis.metrics[1].minSamples to at most 5, or analyse longer",
    );
    expect(cloudWatchSampleShortfall({ ...spec, count: 10 }, "step 2")).toBeUndefined();
    expect(
      cloudWatchSampleShortfall({ ...spec, window: "interval", interval: 600 }, "s"),
    ).toBeUndefined();
  });
});
