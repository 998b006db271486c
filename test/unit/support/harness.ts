import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { backEnds, ServiceStage } from "../../../components";
import { parseStageConfig } from "../../../src/config/load";
import type { StageConfig } from "../../../src/config/schema";
import type { StageOutputs } from "../../../src/contract/outputs";

export const ROOT = join(__dirname, "..", "..", "..");

/** The raw `slipway:*` values of a stack file, keys without the namespace. */
export function stackConfig(stage: string): Record<string, unknown> {
  const doc = parse(readFileSync(join(ROOT, `Pulumi.${stage}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc.config)) {
    if (key.startsWith("slipway:")) raw[key.slice("slipway:".length)] = value;
  }
  return raw;
}

/** Deep copy with overrides applied by a function, for one-off variations of a stage. */
export function variant(stage: string, change: (raw: any) => void): StageConfig {
  const raw = structuredClone(stackConfig(stage));
  change(raw);
  return parseStageConfig(raw, stage);
}

export const stageConfigOf = (stage: string) => parseStageConfig(stackConfig(stage), stage);

export interface Recorded {
  /** As the engine names it (parent types and name): a changed URN is a replacement. */
  urn?: string;
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, any>;
  parent?: string;
  /** `type::name` of every resource whose outputs feed this one's inputs or dependsOn. */
  dependsOn: string[];
}

export interface Rendered {
  resources: Recorded[];
  outputs: StageOutputs;
  testerHeader: { name: string; value: string };
  byName(name: string): Recorded;
  ofType(type: string): Recorded[];
}

const keyOf = (r: pulumi.Resource) => `${(r as any).__pulumiType}::${(r as any).__name}`;

async function collectDependencies(
  value: unknown,
  into: Set<string>,
  seen = new Set<unknown>(),
): Promise<void> {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (pulumi.Output.isInstance(value)) {
    for (const r of await (value as any).allResources()) into.add(keyOf(r));
    return;
  }
  if (pulumi.Resource.isInstance(value)) {
    into.add(keyOf(value));
    return;
  }
  for (const v of Object.values(value as object)) await collectDependencies(v, into, seen);
}

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const hex = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

/** ARNs in the shapes AWS gives them, so IAM simulation can match them against resource types. */
function mockArn(type: string, name: string, inputs: Record<string, any>): string {
  const physical = inputs.name ?? `${inputs.namePrefix ?? name}${hex(name).slice(0, 6)}`;
  switch (type) {
    case "aws:lb/listenerRule:ListenerRule":
      return `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:listener-rule/app/platform/0123456789abcdef/fedcba9876543210/${hex(name)}`;
    case "aws:lb/targetGroup:TargetGroup":
      return `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/${physical}/${hex(name)}`;
    case "aws:ecs/service:Service":
      return `arn:aws:ecs:${REGION}:${ACCOUNT}:service/platform/${physical}`;
    case "aws:ecs/taskDefinition:TaskDefinition":
      return `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${inputs.family}:1`;
    case "aws:iam/role:Role":
      return `arn:aws:iam::${ACCOUNT}:role/${physical}`;
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${physical}`;
    case "aws:cloudwatch/logGroup:LogGroup":
      return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${physical}`;
    case "aws:appconfig/application:Application":
      return `arn:aws:appconfig:${REGION}:${ACCOUNT}:application/${hex(name).slice(0, 7)}`;
    case "aws:appconfig/environment:Environment":
      return `arn:aws:appconfig:${REGION}:${ACCOUNT}:application/app0001/environment/${hex(name).slice(0, 7)}`;
    case "aws:appconfig/configurationProfile:ConfigurationProfile":
      return `arn:aws:appconfig:${REGION}:${ACCOUNT}:application/app0001/configurationprofile/${hex(name).slice(0, 7)}`;
    default:
      return `arn:aws:${type.split(":")[1]!.split("/")[0]}:${REGION}:${ACCOUNT}:${name}`;
  }
}

function mockState(args: pulumi.runtime.MockResourceArgs): {
  id: string;
  state: Record<string, any>;
} {
  const state: Record<string, any> = { ...args.inputs };
  let id = `${args.name}-id`;
  if (args.type.startsWith("aws:")) {
    state.arn = mockArn(args.type, args.name, args.inputs);
    if (state.name === undefined && args.inputs.namePrefix !== undefined)
      state.name = `${args.inputs.namePrefix}${hex(args.name).slice(0, 6)}`;
    if (args.type === "aws:lb/targetGroup:TargetGroup")
      state.arnSuffix = state.arn.slice(state.arn.indexOf("targetgroup/"));
    if (args.type === "aws:ecs/service:Service") id = state.arn;
    if (args.type === "aws:iam/role:Role") id = state.name;
    if (args.type === "aws:appconfig/configurationProfile:ConfigurationProfile")
      state.configurationProfileId = `cp-${args.name}`;
    if (args.type === "aws:appconfig/environment:Environment")
      state.environmentId = `env-${args.name}`;
    if (args.type === "aws:appconfig/hostedConfigurationVersion:HostedConfigurationVersion")
      state.versionNumber = 1;
  }
  if (args.type === "random:index/randomPassword:RandomPassword")
    state.result = "m0ck5ecretva1ue0000000000000000000";
  if (args.type.startsWith("pulumi-nodejs:")) state.value = "m0ck5ecretva1ue0000000000000000000";
  return { id, state };
}

/**
 * Builds a ServiceStage under pulumi.runtime.setMocks and records every
 * resource: its inputs, its parent and what it depends on.
 */
export async function renderStage(config: StageConfig): Promise<Rendered> {
  const recorded = new Map<string, Recorded>();
  const pending: Promise<void>[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const key = `${args.type}::${args.name}`;
        const entry = recorded.get(key);
        if (entry) entry.inputs = args.inputs;
        else
          recorded.set(key, {
            type: args.type,
            name: args.name,
            custom: !!args.custom,
            inputs: args.inputs,
            dependsOn: [],
          });
        return mockState(args);
      },
      call(args) {
        if (args.token === "aws:lb/getLoadBalancer:getLoadBalancer") {
          return { ...args.inputs, dnsName: "platform-alb-123.eu-west-1.elb.amazonaws.com" };
        }
        return args.inputs;
      },
    },
    "slipway",
    config.stage,
    false,
  );

  const transformation: pulumi.ResourceTransformation = (args) => {
    const key = `${args.type}::${args.name}`;
    const deps = new Set<string>();
    const entry: Recorded = recorded.get(key) ?? {
      type: args.type,
      name: args.name,
      custom: args.resource instanceof pulumi.CustomResource,
      inputs: {},
      dependsOn: [],
    };
    entry.parent = args.opts.parent ? keyOf(args.opts.parent) : undefined;
    recorded.set(key, entry);
    pending.push(
      (async () => {
        await collectDependencies(args.props, deps);
        await collectDependencies(args.opts.dependsOn, deps);
        entry.dependsOn = [...deps].sort();
        entry.urn = await promiseOf(args.resource.urn);
      })(),
    );
    return undefined;
  };

  const stage = new ServiceStage(
    config.service.name,
    { config, backEnd: backEnds[config.platform] },
    { transformations: [transformation] },
  );
  const outputs = (await promiseOf(
    pulumi.all(stage.outputs as Record<string, pulumi.Output<unknown>>),
  )) as unknown as StageOutputs;
  const testerHeader = await promiseOf(stage.testerHeader);
  await Promise.all(pending);
  // Drain the mock monitor before the next test replaces it.
  await pulumi.runtime.disconnect();
  const resources = [...recorded.values()].sort((a, b) =>
    `${a.type}${a.name}`.localeCompare(`${b.type}${b.name}`),
  );
  return {
    resources,
    outputs,
    testerHeader,
    byName(name) {
      const r = resources.find((x) => x.name === name);
      if (!r)
        throw new Error(
          `no resource named ${name}; have ${resources.map((x) => x.name).join(", ")}`,
        );
      return r;
    },
    ofType(type) {
      return resources.filter((x) => x.type === type);
    },
  };
}

export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
  return (output as any).promise() as Promise<T>;
}
