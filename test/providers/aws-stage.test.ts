/**
 * What an AWS release reads and calls, against moto (PyPI `moto[server]`) through
 * the real AWS SDK: the weights read back from the listener rule the outputs
 * name, the candidate's alarms, the CloudWatch analysis of the two target
 * groups, and the checks that refuse a release before any update.
 * moto has no percentiles (see cloudwatch.test.ts), so the stage's latency
 * statistic is Average here; real CloudWatch serves the default p99.
 */
import {
  ModifyRuleCommand,
  SetRulePrioritiesCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAnalysis } from "../../src/analysis/run";
import type { AnalysisSpec } from "../../src/analysis/spec";
import {
  AwsSetupError,
  LoadBalancerReadBackError,
  LoadBalancerWeights,
  StageAlarms,
  alarmRollbackReason,
  awsClientSettings,
  cloudWatchMetrics,
  prepareAwsRelease,
} from "../../src/aws";
import type { StageConfig } from "../../src/config/schema";
import type { StageOutputs } from "../../src/contract/outputs";
import { RouteDriftedError } from "../../src/pipeline/errors";
import {
  createAwsWorld,
  motoEnvironment,
  publishTraffic,
  startMoto,
  type AwsWorld,
  type Moto,
  type SlotTraffic,
} from "./support/awsWorld";
import { awsStageOutputs, stagingConfig } from "./support/stageOutputs";

let moto: Moto;
let config: StageConfig;
const saved: Record<string, string | undefined> = {};

/** The pipeline's clients find moto and credentials the way they would find AWS: the environment. */
function useEnvironment(env: Record<string, string | undefined>) {
  for (const [k, v] of Object.entries(env)) {
    if (!(k in saved)) saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

beforeAll(async () => {
  moto = await startMoto();
  useEnvironment(motoEnvironment(moto));
  config = stagingConfig((raw) => {
    raw.aws.analysis = { latencyStatistic: "Average" };
  });
});

afterAll(async () => {
  useEnvironment(saved);
  await moto?.stop();
});

const outputsOf = (world: AwsWorld): StageOutputs => awsStageOutputs(config, world.outputs);

describe("weights read back from the load balancer (moto ELBv2)", () => {
  let world: AwsWorld;
  let readBack: LoadBalancerWeights;
  beforeAll(async () => {
    world = await createAwsWorld(moto, "readback", { blue: 90, green: 10 });
    readBack = LoadBalancerWeights.forRegion("eu-west-1");
  });
  afterAll(() => readBack.destroy());

  it("reads the rule's weights, mapped to slots by target group ARN", async () => {
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 90, green: 10 });
  });

  it("a ModifyRule made outside the pipeline is what the read-back returns", async () => {
    await world.modifyWeights({ blue: 0, green: 100 });
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 0, green: 100 });
    // Relative weights are read as the traffic split they give.
    await world.modifyWeights({ blue: 3, green: 1 });
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 75, green: 25 });
    await world.modifyWeights({ blue: 90, green: 10 });
  });

  it("a rule that does not exist is a typed error, never undefined weights", async () => {
    const gone = {
      ...world.outputs,
      listenerRuleArn: world.outputs.listenerRuleArn.replace(/[0-9a-f]{16}$/, "0000000000000000"),
    };
    const err = await readBack
      .read(awsStageOutputs(config, gone))
      .catch((e: unknown) => e as LoadBalancerReadBackError);
    expect(err).toBeInstanceOf(LoadBalancerReadBackError);
    expect(err).toMatchObject({ problem: "ruleNotFound" });
    expect((err as Error).message).toContain(gone.listenerRuleArn);
  });

  it("a rule forwarding to target groups that are not the stage's is a typed error", async () => {
    const other = await createAwsWorld(moto, "foreign");
    // The outputs claim this world's rule, but name the other world's target groups.
    const mixed = { ...other.outputs, listenerRuleArn: world.outputs.listenerRuleArn };
    const err = await readBack
      .read(awsStageOutputs(config, mixed))
      .catch((e: unknown) => e as LoadBalancerReadBackError);
    expect(err).toBeInstanceOf(LoadBalancerReadBackError);
    expect(err).toMatchObject({ problem: "foreignTargetGroup" });
    expect((err as Error).message).toContain(world.outputs.targetGroups.blue.arn);
  });
});

describe("the whole listener rule compared with the declared one (moto ELBv2)", () => {
  let world: AwsWorld;
  let readBack: LoadBalancerWeights;
  /** The rule as the provider keeps it in the checkpoint (components/aws/route.ts's shape). */
  const declaredRule = (w: AwsWorld) => ({
    arn: w.outputs.listenerRuleArn,
    listenerArn: w.listenerArn,
    priority: 100,
    conditions: [{ pathPattern: { values: ["/*"] }, hostHeader: null, queryStrings: [] }],
    actions: [
      {
        type: "forward",
        order: 1,
        targetGroupArn: "",
        forward: {
          targetGroups: [
            { arn: w.outputs.targetGroups.blue.arn, weight: 90 },
            { arn: w.outputs.targetGroups.green.arn, weight: 10 },
          ],
          stickiness: { enabled: false, duration: 1 },
        },
      },
    ],
  });
  const asked: StageOutputs["routing"][] = [];

  beforeAll(async () => {
    world = await createAwsWorld(moto, "whole-rule", { blue: 90, green: 10 });
    readBack = LoadBalancerWeights.forRegion("eu-west-1", undefined, async (routing) => {
      asked.push(routing);
      return declaredRule(world);
    });
  });
  afterAll(() => readBack.destroy());

  const drift = () =>
    readBack.read(outputsOf(world)).then(
      (weights) => weights,
      (err: unknown) => err as RouteDriftedError,
    );

  it("the rule as the stack declared it is no drift: its weights are read", async () => {
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 90, green: 10 });
    expect(asked.at(-1)).toEqual({ kind: "ListenerRule", id: world.outputs.listenerRuleArn });
    // Another weight is not a difference of the rule: the release compares it with the step.
    await world.modifyWeights({ blue: 50, green: 50 });
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 50, green: 50 });
    await world.modifyWeights({ blue: 90, green: 10 });
  });

  it("a host-header condition added with ModifyRule is drift naming it, with the weights still right", async () => {
    await moto.elb.send(
      new ModifyRuleCommand({
        RuleArn: world.outputs.listenerRuleArn,
        Conditions: [
          { Field: "path-pattern", PathPatternConfig: { Values: ["/*"] } },
          { Field: "host-header", HostHeaderConfig: { Values: ["evil.example"] } },
        ],
      }),
    );
    const err = await drift();
    expect(err).toBeInstanceOf(RouteDriftedError);
    expect(err).toMatchObject({
      routingId: world.outputs.listenerRuleArn,
      weights: { blue: 90, green: 10 },
      differences: [
        "conditions: declared path-pattern [/*], found host-header [evil.example] and path-pattern [/*]",
      ],
    });
  });

  it("a priority changed with SetRulePriorities is drift naming both priorities", async () => {
    await moto.elb.send(
      new SetRulePrioritiesCommand({
        RulePriorities: [{ RuleArn: world.outputs.listenerRuleArn, Priority: 5 }],
      }),
    );
    const err = await drift();
    expect(err).toBeInstanceOf(RouteDriftedError);
    expect((err as RouteDriftedError).weights).toEqual({ blue: 90, green: 10 });
    expect((err as RouteDriftedError).differences).toEqual([
      "priority: declared 100, found 5",
      "conditions: declared path-pattern [/*], found host-header [evil.example] and path-pattern [/*]",
    ]);
  });

  it("a fixed-response action put before the forward is drift; the rule put back is none", async () => {
    const forward = {
      Type: "forward" as const,
      ForwardConfig: {
        TargetGroups: [
          { TargetGroupArn: world.outputs.targetGroups.blue.arn, Weight: 90 },
          { TargetGroupArn: world.outputs.targetGroups.green.arn, Weight: 10 },
        ],
      },
    };
    await moto.elb.send(
      new ModifyRuleCommand({
        RuleArn: world.outputs.listenerRuleArn,
        Conditions: [{ Field: "path-pattern", PathPatternConfig: { Values: ["/*"] } }],
        Actions: [
          { Type: "fixed-response", Order: 1, FixedResponseConfig: { StatusCode: "503" } },
          { ...forward, Order: 2 },
        ],
      }),
    );
    await moto.elb.send(
      new SetRulePrioritiesCommand({
        RulePriorities: [{ RuleArn: world.outputs.listenerRuleArn, Priority: 100 }],
      }),
    );
    const err = await drift();
    expect(err).toBeInstanceOf(RouteDriftedError);
    expect((err as RouteDriftedError).differences).toEqual([
      'actions: found an extra fixed-response action ({"statusCode":"503"})',
    ]);
    await moto.elb.send(
      new ModifyRuleCommand({
        RuleArn: world.outputs.listenerRuleArn,
        Actions: [{ ...forward, Order: 1 }],
      }),
    );
    expect(await readBack.read(outputsOf(world))).toEqual({ blue: 90, green: 10 });
  });
});

describe("the candidate's alarms (moto CloudWatch)", () => {
  it("an alarm set to ALARM is reported with its name and reason; OK alarms are not", async () => {
    const world = await createAwsWorld(moto, "alarms");
    const alarms = StageAlarms.forRegion("eu-west-1");
    try {
      expect((await alarms.states(world.outputs.alarms.green)).firing).toEqual([]);
      await world.setAlarm("green", "ALARM", "Threshold Crossed: 3 datapoints were > 0.02");
      const states = await alarms.states(world.outputs.alarms.green);
      expect(states.missing).toEqual([]);
      expect(states.firing).toEqual([
        expect.objectContaining({
          name: "alarms-green-5xx-ratio",
          reason: "Threshold Crossed: 3 datapoints were > 0.02",
        }),
      ]);
      expect(alarmRollbackReason(states.firing)).toMatch(
        /^alarm alarms-green-5xx-ratio is in ALARM.*: Threshold Crossed: 3 datapoints were > 0\.02$/,
      );
      expect((await alarms.states(world.outputs.alarms.blue)).firing).toEqual([]);
      expect((await alarms.states(["no-such-alarm"])).missing).toEqual(["no-such-alarm"]);
    } finally {
      alarms.destroy();
    }
  });
});

describe("CloudWatch analysis from the stage's outputs (moto CloudWatch)", () => {
  // A fixed past hour, so every window the fake clock produces holds published data.
  const start = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 2 * 3600_000);
  const MINUTES = 6;
  const healthy: SlotTraffic = { requestsPerMinute: 9000, errorRate: 0.01, latencyScale: 1 };
  let spec: AnalysisSpec;

  beforeAll(() => {
    // The stage's own analysis (Pulumi.staging.yaml: minSamples 200, latency 5) at the preset's 5 one-minute looks.
    spec = config.canary.analysis;
    expect([spec.count, spec.interval, spec.minSamples]).toEqual([5, 60, 200]);
  });

  async function analyse(name: string, candidate: SlotTraffic) {
    const world = await createAwsWorld(moto, name);
    await publishTraffic(moto, world, start, MINUTES, { blue: healthy, green: candidate });
    let clock = start.getTime();
    return runAnalysis({
      spec,
      fetch: cloudWatchMetrics({
        stage: world.outputs,
        settings: awsClientSettings("eu-west-1"),
        spec,
        stable: "blue",
        candidate: "green",
        latencyStatistic: config.aws!.analysis.latencyStatistic,
      }),
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
  }

  it("a healthy candidate passes", async () => {
    const outcome = await analyse("healthy", { ...healthy, requestsPerMinute: 1000 });
    expect(outcome.verdict, outcome.reasons.join("\n")).toBe("pass");
    expect(outcome.counts.error).toBe(0);
  });

  it("a candidate with three times the 5xx fails", async () => {
    const outcome = await analyse("bad", { ...healthy, requestsPerMinute: 1000, errorRate: 0.03 });
    expect(outcome.verdict, outcome.reasons.join("\n")).toBe("fail");
    expect(outcome.reasons.join("\n")).toMatch(/errors/);
  });

  it("too few requests is inconclusive", async () => {
    const outcome = await analyse("quiet", { ...healthy, requestsPerMinute: 20 });
    expect(outcome.verdict, outcome.reasons.join("\n")).toBe("inconclusive");
    expect(outcome.reasons.join("\n")).toMatch(/200/);
  });
});

describe("a release that cannot be watched is refused before any update", () => {
  it("is set up from the outputs, region and credentials, probing the rule and the alarms", async () => {
    const world = await createAwsWorld(moto, "setup");
    const release = await prepareAwsRelease({
      stageName: "staging",
      config,
      outputs: outputsOf(world),
      candidate: "green",
      analyses: [{ label: "step 2 (analysis x5 every 60s)", spec: config.canary.analysis }],
    });
    try {
      expect(await release.readWeights(outputsOf(world))).toEqual({ blue: 100, green: 0 });
      expect((await release.alarms!("green")).firing).toEqual([]);
    } finally {
      release.close();
    }
  });

  it("names what is missing: no outputs yet", async () => {
    const err = await prepareAwsRelease({
      stageName: "staging",
      config,
      outputs: undefined,
      candidate: "green",
    }).catch((e: unknown) => e as AwsSetupError);
    expect(err).toBeInstanceOf(AwsSetupError);
    expect((err as AwsSetupError).missing).toEqual([
      expect.stringMatching(/^no stack outputs: stage staging has never been deployed/),
    ]);
  });

  it("names what is missing: an older stack without the aws output, and no credentials", async () => {
    const world = await createAwsWorld(moto, "nocreds");
    const { aws: _aws, ...older } = outputsOf(world);
    const before = { ...process.env };
    useEnvironment({
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials",
      AWS_CONFIG_FILE: "/nonexistent/config",
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    });
    try {
      const err = await prepareAwsRelease({
        stageName: "staging",
        config,
        outputs: older as StageOutputs,
        candidate: "green",
      }).catch((e: unknown) => e as AwsSetupError);
      expect(err).toBeInstanceOf(AwsSetupError);
      expect((err as AwsSetupError).missing).toEqual([
        expect.stringMatching(/^no `aws` output .*run `pulumi up --stack staging` once$/),
        expect.stringMatching(/^no AWS credentials: the default SDK chain/),
      ]);
    } finally {
      useEnvironment({
        AWS_ACCESS_KEY_ID: before.AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: before.AWS_SECRET_ACCESS_KEY,
        AWS_SHARED_CREDENTIALS_FILE: before.AWS_SHARED_CREDENTIALS_FILE,
        AWS_CONFIG_FILE: before.AWS_CONFIG_FILE,
      });
    }
  });

  it("names what is missing: a rule that is gone and alarms that do not exist", async () => {
    const world = await createAwsWorld(moto, "broken");
    const broken = {
      ...world.outputs,
      listenerRuleArn: world.outputs.listenerRuleArn.replace(/[0-9a-f]{16}$/, "0000000000000000"),
      alarms: { blue: world.outputs.alarms.blue, green: ["broken-green-deleted"] },
    };
    const err = await prepareAwsRelease({
      stageName: "staging",
      config,
      outputs: awsStageOutputs(config, broken),
      candidate: "green",
    }).catch((e: unknown) => e as AwsSetupError);
    expect(err).toBeInstanceOf(AwsSetupError);
    expect((err as AwsSetupError).missing).toEqual([
      expect.stringMatching(
        /^weights cannot be read back: routing arn:.*: the listener rule does not exist$/,
      ),
      expect.stringMatching(/^alarms broken-green-deleted named in the outputs do not exist/),
    ]);
  });
});
