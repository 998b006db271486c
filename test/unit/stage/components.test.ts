import * as pulumi from "@pulumi/pulumi";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backEnds, ServiceStage } from "../../../components";
import { AwsSlot, AwsWeightedRoute } from "../../../components/aws";
import { KubernetesSlot, KubernetesWeightedRoute } from "../../../components/kubernetes";
import type { StageConfig } from "../../../src/config/schema";
import { promiseOf, renderStage, stageConfigOf } from "../support/harness";

/**
 * The components are a library with their own typed arguments: one built by hand, without
 * parseStageConfig, fails at the component it belongs to (a ResourceError, which Pulumi shows
 * against that component) with a message naming the argument, the value and what is allowed.
 */
function refusal(declare: () => unknown): pulumi.ResourceError {
  try {
    declare();
  } catch (err) {
    expect(err).toBeInstanceOf(pulumi.ResourceError);
    return err as pulumi.ResourceError;
  }
  throw new Error("the component accepted the argument");
}

function withMocks(): void {
  beforeEach(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
        call: (args) => args.inputs,
      },
      "slipway",
      "errors",
      false,
    );
  });
  afterEach(async () => {
    await pulumi.runtime.disconnect();
  });
}

const local = stageConfigOf("local");
const staging = stageConfigOf("staging");

describe("a bad component argument is a ResourceError naming it", () => {
  withMocks();
  it("ServiceStage without a back end names backEnd and the one to pass", () => {
    const err = refusal(() => new ServiceStage("checkout", { config: local } as any));
    expect(err.message).toContain("backEnd: missing");
    expect(err.message).toContain("backEnds.kubernetes");
  });

  it("ServiceStage with a canary weight out of range names config.traffic.canaryWeight", () => {
    const config: StageConfig = { ...local, traffic: { ...local.traffic, canaryWeight: 150 } };
    const err = refusal(
      () => new ServiceStage("checkout", { config, backEnd: backEnds.kubernetes }),
    );
    expect(err.message).toBe(
      "config.traffic.canaryWeight: got 150; allowed: an integer from 0 to 100",
    );
  });

  it("the AWS back end without config.aws names it, against the stage that asked", () => {
    const config: StageConfig = { ...staging, aws: undefined };
    const err = refusal(() => new ServiceStage("checkout", { config, backEnd: backEnds.aws }));
    expect(err.message).toContain("config.aws (slipway:aws): missing");
    expect(err.resource).toBeInstanceOf(ServiceStage);
  });

  it("KubernetesSlot with negative replicas names replicas", () => {
    const err = refusal(
      () =>
        new KubernetesSlot("checkout-blue", {
          stage: "local",
          slot: "blue",
          namespace: "checkout-local",
          service: local.service,
          release: local.slots.blue,
          replicas: -1,
          serviceAccountName: "checkout-blue",
        }),
    );
    expect(err.message).toBe("replicas: got -1; allowed: an integer from 0 to 1000");
    expect(err.resource).toBeInstanceOf(KubernetesSlot);
  });

  it("AwsSlot with a fractional replica count names replicas", () => {
    const err = refusal(
      () =>
        new AwsSlot("checkout-blue", {
          stage: "staging",
          slot: "blue",
          service: staging.service,
          release: staging.slots.blue,
          replicas: 1.5,
          aws: staging.aws!,
          executionRoleArn: "arn:aws:iam::111111111111:role/exec",
          taskRoleArn: "arn:aws:iam::111111111111:role/task",
          logGroupName: "/slipway/staging/checkout",
          securityGroupId: "sg-0a111111111111",
          targetGroupArn: "arn:aws:elasticloadbalancing:eu-west-1:111111111111:targetgroup/b/1",
          routing: new pulumi.ComponentResource("test:index:Routing", "routing"),
          tags: {},
        }),
    );
    expect(err.message).toBe("replicas: got 1.5; allowed: an integer from 0 to 1000");
  });

  it("KubernetesWeightedRoute with weights that do not add up to 100 names weights", () => {
    const err = refusal(
      () =>
        new KubernetesWeightedRoute("checkout-route", {
          stage: "local",
          routeName: "checkout",
          namespace: "checkout-local",
          gateway: local.kubernetes.gateway,
          hostnames: [],
          serviceNames: { blue: "checkout-blue", green: "checkout-green" },
          serviceName: "checkout",
          weights: { blue: 90, green: 90 },
          candidate: "green",
        }),
    );
    expect(err.message).toBe(
      'weights: got {"blue":90,"green":90}; allowed: integers from 0 to 100 for blue and green that add up to 100',
    );
  });

  it("AwsWeightedRoute whose tester rule would need priority 0 names aws.rulePriority", () => {
    const err = refusal(
      () =>
        new AwsWeightedRoute("checkout-route", {
          service: staging.service,
          aws: { ...staging.aws!, rulePriority: 1 },
          tags: {},
          weights: { blue: 100, green: 0 },
          candidate: "green",
          headerRoute: { name: "x-slipway-canary", value: "secret" },
        }),
    );
    expect(err.message).toMatch(/^aws\.rulePriority: got 1; allowed: an integer from 2 to 50000/);
  });
});

describe("each component registers the outputs it creates", () => {
  /** `type::name` of each component, with the outputs it registered, resolved. */
  async function registered(config: StageConfig): Promise<Map<string, Record<string, unknown>>> {
    const calls: { component: pulumi.ComponentResource; outputs: unknown }[] = [];
    const spy = vi
      .spyOn(pulumi.ComponentResource.prototype as any, "registerOutputs")
      .mockImplementation(function (this: pulumi.ComponentResource, outputs: unknown) {
        // The SDK's own call (from the constructor, with nothing) is not the component's.
        if (outputs !== undefined) calls.push({ component: this, outputs });
      });
    try {
      await renderStage(config);
    } finally {
      spy.mockRestore();
    }
    const byComponent = new Map<string, Record<string, unknown>>();
    for (const { component, outputs } of calls) {
      const key = `${(component as any).__pulumiType}::${(component as any).__name}`;
      byComponent.set(key, (await promiseOf(pulumi.output(outputs as any))) as any);
    }
    return byComponent;
  }

  it("on kubernetes: names of the accounts, the role, the policies, the flags", async () => {
    const outputs = await registered(local);
    expect(outputs.size).toBe(8);
    for (const [component, values] of outputs)
      expect(Object.keys(values), component).not.toHaveLength(0);
    expect(outputs.get("slipway:kubernetes:Identities::checkout-k8s-identities")).toEqual({
      serviceAccountNames: { blue: "checkout-blue", green: "checkout-green" },
      deployerRoleName: "checkout-deployer",
    });
    expect(outputs.get("slipway:kubernetes:NetworkPolicy::checkout-k8s-network")).toEqual({
      policyNames: ["checkout-default-deny", "checkout-allow-gateway"],
    });
    expect(outputs.get("slipway:kubernetes:Flags::checkout-k8s-flags")).toEqual({
      configMapName: "checkout-flags",
    });
  });

  it("on aws: role ARNs and names, the flag profile, the alarm names", async () => {
    const outputs = await registered(staging);
    expect(outputs.size).toBe(9);
    for (const [component, values] of outputs)
      expect(Object.keys(values), component).not.toHaveLength(0);
    expect(outputs.get("slipway:aws:DeployerRole::checkout-aws-deployer")).toMatchObject({
      roleArn: expect.stringMatching(/^arn:aws:iam::\d{12}:role\/checkout-staging-deploy-/),
      roleName: expect.stringMatching(/^checkout-staging-deploy-/),
    });
    expect(outputs.get("slipway:aws:ServiceIdentities::checkout-aws-identities")).toMatchObject({
      executionRoleArn: expect.stringContaining(":role/checkout-exec-"),
      taskRoleArn: expect.stringContaining(":role/checkout-task-"),
    });
    expect(outputs.get("slipway:aws:Flags::checkout-aws-flags")).toMatchObject({
      profileId: "cp-checkout-aws-flags-profile",
      environmentId: "env-checkout-aws-flags-env",
    });
    expect(outputs.get("slipway:aws:HealthAlarms::checkout-aws-alarms")).toEqual({
      alarmNames: {
        blue: {
          errorRatio: "checkout-staging-blue-5xx-ratio",
          p99Latency: "checkout-staging-blue-p99-latency",
        },
        green: {
          errorRatio: "checkout-staging-green-5xx-ratio",
          p99Latency: "checkout-staging-green-p99-latency",
        },
      },
    });
    expect(outputs.get("slipway:aws:Slot::checkout-aws-blue")).toMatchObject({
      serviceName: "checkout-blue",
    });
  });
});
