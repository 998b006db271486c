import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parseStageOutputs, StageContractError } from "../../../src/contract/outputs";
import { readStage } from "../../../src/contract/readStage";
import { promiseOf, renderStage, stageConfigOf } from "../support/harness";

describe("outputs contract v1", () => {
  it("every stage's outputs satisfy the schema", async () => {
    for (const stage of ["local", "staging", "prod"]) {
      const r = await renderStage(stageConfigOf(stage));
      expect(parseStageOutputs(r.outputs as any).stage).toBe(stage);
    }
  });

  it("an AWS stage names what the pipeline reads: rule, target groups and their dimensions, alarms per slot", async () => {
    const r = await renderStage(stageConfigOf("staging"));
    const aws = parseStageOutputs(r.outputs as any).aws!;
    const rule = r.byName("checkout-aws-route-weighted");
    expect(aws.listenerRuleArn).toBe(r.outputs.routing.id);
    expect(aws.listenerRuleArn).toMatch(/:listener-rule\/app\//);
    // The weighted rule forwards to exactly the target groups the outputs name, by ARN.
    const forwarded = rule.inputs.actions[0].forward.targetGroups.map((g: any) => g.arn);
    expect(forwarded).toEqual([aws.targetGroups.blue.arn, aws.targetGroups.green.arn]);
    for (const slot of ["blue", "green"] as const) {
      const group = aws.targetGroups[slot];
      expect(group.dimension).toMatch(/^targetgroup\/[^/]+\/[0-9a-f]+$/);
      expect(group.arn.endsWith(`:${group.dimension}`)).toBe(true);
      const alarms = r
        .ofType("aws:cloudwatch/metricAlarm:MetricAlarm")
        .filter((a) => a.inputs.tags["slipway:slot"] === slot);
      expect(aws.alarms[slot].sort()).toEqual(alarms.map((a) => a.inputs.name).sort());
      expect(aws.alarms[slot]).toHaveLength(2);
    }
    expect(aws.loadBalancerDimension).toBe("app/platform-staging/0123456789abcdef");
    // Each slot's ECS service by ARN, in the stack file's cluster: what the serving check reads.
    expect(aws.ecs!.clusterArn).toBe(stageConfigOf("staging").aws!.clusterArn);
    for (const slot of ["blue", "green"] as const) {
      const service = r.byName(`checkout-aws-${slot}-service`);
      expect(aws.ecs!.services[slot]).toBe(
        `arn:aws:ecs:eu-west-1:123456789012:service/platform/${service.inputs.name}`,
      );
      expect(service.inputs.name).toBe(`checkout-${slot}`);
    }
  });

  it("a Kubernetes stage has no aws output", async () => {
    const r = await renderStage(stageConfigOf("local"));
    expect(parseStageOutputs(r.outputs as any).aws).toBeUndefined();
  });

  it("refuses another schema version with a message that says what to do", () => {
    expect(() => parseStageOutputs({ schemaVersion: 2 })).toThrow(StageContractError);
    expect(() => parseStageOutputs({ schemaVersion: 2 }, "stack acme/slipway/prod")).toThrow(
      /schemaVersion 2; this reader understands 1/,
    );
  });

  it("readStage gives typed values through a StackReference", async () => {
    const rendered = await renderStage(stageConfigOf("staging"));
    const published = { ...rendered.outputs, testerHeader: rendered.testerHeader };
    await pulumi.runtime.setMocks(
      {
        newResource(args) {
          if (args.type === "pulumi:pulumi:StackReference") {
            return {
              id: args.inputs.name,
              state: {
                name: args.inputs.name,
                outputs: published,
                secretOutputNames: ["testerHeader"],
              },
            };
          }
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => args.inputs,
      },
      "app-team",
      "dev",
      false,
    );
    const stage = readStage(new pulumi.StackReference("acme/slipway/staging"));
    expect(await promiseOf(stage.endpoint)).toBe("https://checkout.staging.example.com/");
    expect(await promiseOf(stage.weights)).toEqual({ blue: 100, green: 0 });
    const releases = await promiseOf(stage.releases);
    expect(releases.blue.image).toMatch(/@sha256:/);
    expect(await (stage.testerHeader as any).isSecret).toBe(true);
  });
});
