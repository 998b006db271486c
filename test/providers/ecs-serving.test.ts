/**
 * EcsServing against moto's ECS and ELBv2, through the real AWS SDK: the answers it reads
 * (DescribeServices with its failures[], DescribeTaskDefinition, DescribeTargetHealth) come
 * from the emulator, not from a stub. moto reports a service's updated desired count as
 * running at once, so "fewer tasks running" is made with an UpdateService, as a person's
 * scaling by hand would be.
 */
import { DeleteServiceCommand } from "@aws-sdk/client-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsClientSettings, EcsServing, prepareAwsRelease } from "../../src/aws";
import type { ReleaseRecord } from "../../src/config/schema";
import { NotServingError } from "../../src/pipeline/errors";
import type { StageState } from "../../src/pipeline/machine";
import {
  createAwsWorld,
  motoEnvironment,
  REGION,
  startMoto,
  type AwsWorld,
  type Moto,
} from "./support/awsWorld";
import { awsStageOutputs, stagingConfig } from "./support/stageOutputs";

const image = (c: string) =>
  `111111111111.dkr.ecr.eu-west-1.amazonaws.com/checkout@sha256:${c.repeat(64)}`;

let moto: Moto;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  moto = await startMoto();
  // The check's own clients find moto and its credentials through the default SDK chain.
  for (const [k, v] of Object.entries(motoEnvironment(moto))) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await moto?.stop();
});

/** Green at 10% as the candidate (image b), blue stable (image a); both at 2 replicas. */
function canary(): StageState {
  const record: ReleaseRecord = {
    id: "r-moto",
    phase: "canary",
    candidateSlot: "green",
    artifact: { image: image("b"), version: "2.0.0" },
    previous: { slot: "blue", image: image("a"), version: "1.0.0" },
    position: 1,
    steps: 2,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
  return {
    stable: "blue",
    canaryWeight: 10,
    slots: {
      blue: { image: image("a"), version: "1.0.0" },
      green: { image: image("b"), version: "2.0.0", replicas: 2 },
    },
    release: record,
  };
}

/** A world whose services and target groups serve `canary()`. */
async function servingWorld(name: string): Promise<AwsWorld> {
  const world = await createAwsWorld(moto, name, { blue: 90, green: 10 });
  await world.applySlots({
    blue: { image: image("a"), replicas: 2 },
    green: { image: image("b"), replicas: 2 },
  });
  return world;
}

const servingOf = (world: AwsWorld, services = world.outputs.ecs!) =>
  new EcsServing({
    settings: awsClientSettings(REGION),
    stage: world.outputs,
    services,
  });

async function problemsOf(serving: EcsServing): Promise<string[]> {
  const err = await serving.check(canary(), 2, "before promotion").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NotServingError);
  return (err as NotServingError).problems;
}

describe("EcsServing on moto (ECS + ELBv2 through the AWS SDK)", () => {
  it("passes when each slot's service runs its image at its replicas behind healthy targets", async () => {
    const world = await servingWorld("ecs-good");
    await expect(servingOf(world).check(canary(), 2, "before promotion")).resolves.toBeUndefined();
    // After the scale-down only the new stable must serve: blue at 0 in ECS is no problem.
    await world.scaleService("blue", 0);
    const scaledDown: StageState = {
      ...canary(),
      stable: "green",
      canaryWeight: 0,
      slots: { ...canary().slots, blue: { ...canary().slots.blue, replicas: 0 } },
      release: { ...canary().release!, phase: "completed" },
    };
    await expect(
      servingOf(world).check(scaledDown, 2, "after the scale-down"),
    ).resolves.toBeUndefined();
  });

  it("fails naming the slot when its service runs fewer tasks than declared", async () => {
    const world = await servingWorld("ecs-scaled");
    await world.scaleService("green", 1);
    expect(await problemsOf(servingOf(world))).toEqual([
      "green: ECS service checkout-green is scaled to 1, the stack declares 2",
      "green: ECS service checkout-green has 1/2 running tasks",
    ]);
  });

  it("fails when the service's task definition runs another image", async () => {
    const world = await servingWorld("ecs-image");
    await world.setServiceImage("green", image("c"));
    const problems = await problemsOf(servingOf(world));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^green: ECS service checkout-green runs task definition arn:aws:ecs:eu-west-1:\d+:task-definition\/ecs-image-green:\d+ with /,
    );
    expect(problems[0]).toContain(`with ${image("c")}, the stack declares ${image("b")}`);
  });

  it("fails when a service is missing (failures[] MISSING) or deleted (INACTIVE)", async () => {
    const world = await servingWorld("ecs-missing");
    const ecs = world.outputs.ecs!;
    await moto.ecs.send(
      new DeleteServiceCommand({
        cluster: ecs.clusterArn,
        service: ecs.services.blue,
        force: true,
      }),
    );
    const gone = `${ecs.services.green}-gone`;
    const problems = await problemsOf(
      servingOf(world, { ...ecs, services: { ...ecs.services, green: gone } }),
    );
    expect(problems).toEqual([
      "blue: ECS service checkout-blue is INACTIVE, not ACTIVE (deleted outside the stack?)",
      `green: no ECS service ${gone} in cluster ${ecs.clusterArn} (DescribeServices: MISSING; deleted outside the stack?)`,
    ]);
  });

  it("fails when the slot's target group has no registered target", async () => {
    const world = await servingWorld("ecs-targets");
    // The pipeline's own view: green declared at 2 while its target group is empty.
    await world.applySlots({
      blue: { image: image("a"), replicas: 2 },
      green: { image: image("b"), replicas: 0 },
    });
    await world.scaleService("green", 2);
    expect(await problemsOf(servingOf(world))).toEqual([
      `green: target group ${world.outputs.targetGroups.green.arn} has no healthy target (no registered target), at least 1 expected`,
    ]);
  });

  it("a cluster that cannot be read is a problem per slot, in words", async () => {
    const world = await servingWorld("ecs-cluster");
    const ecs = world.outputs.ecs!;
    const elsewhere = ecs.clusterArn.replace(/cluster\/.*$/, "cluster/not-there");
    const problems = await problemsOf(servingOf(world, { ...ecs, clusterArn: elsewhere }));
    expect(problems).toHaveLength(2);
    for (const [i, slot] of (["blue", "green"] as const).entries())
      expect(problems[i]).toMatch(
        new RegExp(
          `^${slot}: cannot read ECS service \\S+ in cluster \\S+not-there: DescribeServices: http://127\\.0\\.0\\.1:\\d+ answered HTTP 400: ClusterNotFoundException`,
        ),
      );
  });

  it("an older stack without aws.ecs: the release's check finds the services in the stack file's cluster by name", async () => {
    const world = await servingWorld("ecs-older");
    const config = stagingConfig((raw) => {
      raw.aws.clusterArn = world.outputs.ecs!.clusterArn;
    });
    const { ecs: _ecs, ...older } = world.outputs;
    const release = await prepareAwsRelease({
      stageName: "staging",
      config,
      outputs: awsStageOutputs(config, older),
      candidate: "green",
    });
    try {
      // The stack file's stable blue at the service's 2 replicas; green idle at 0.
      await world.applySlots({
        blue: { image: config.slots.blue.image, replicas: 2 },
        green: { image: config.slots.green.image, replicas: 0 },
      });
      const state: StageState = { stable: "blue", canaryWeight: 0, slots: config.slots };
      await expect(release.serving.check(state, 2, "on resume")).resolves.toBeUndefined();
      await world.scaleService("blue", 1);
      const err = await release.serving.check(state, 2, "on resume").catch((e: unknown) => e);
      expect((err as NotServingError).problems).toEqual([
        "blue: ECS service checkout-blue is scaled to 1, the stack declares 2",
        "blue: ECS service checkout-blue has 1/2 running tasks",
      ]);
    } finally {
      release.close();
    }
  });
});
