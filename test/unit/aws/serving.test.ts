import {
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  type ECSClient,
  type Service,
} from "@aws-sdk/client-ecs";
import {
  DescribeTargetHealthCommand,
  type ElasticLoadBalancingV2Client,
  type TargetHealthStateEnum,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { describe, expect, it } from "vitest";
import { EcsServing } from "../../../src/aws";
import type { AwsStageOutputs } from "../../../src/contract/outputs";
import { canaryState, digestImage } from "../support/canary";
import type { Slot } from "../../../src/domain";
import { NotServingError } from "../../../src/pipeline/errors";
import type { StageState } from "../../../src/pipeline/machine";

/** Issue 25 on AWS: each slot that must serve is read from ECS and its target group. */
const ACCOUNT = "123456789012";
const CLUSTER = `arn:aws:ecs:eu-west-1:${ACCOUNT}:cluster/platform`;
const serviceArn = (slot: Slot) =>
  `arn:aws:ecs:eu-west-1:${ACCOUNT}:service/platform/checkout-${slot}`;
const taskDefinitionArn = (slot: Slot, revision: number) =>
  `arn:aws:ecs:eu-west-1:${ACCOUNT}:task-definition/checkout-${slot}:${revision}`;
const targetGroupArn = (slot: Slot) =>
  `arn:aws:elasticloadbalancing:eu-west-1:${ACCOUNT}:targetgroup/${slot}-tg/0123456789abcdef`;
const image = digestImage;

const stage: AwsStageOutputs = {
  loadBalancerDimension: "app/platform/0123456789abcdef",
  listenerRuleArn: `arn:aws:elasticloadbalancing:eu-west-1:${ACCOUNT}:listener-rule/app/x/1/2/3`,
  targetGroups: {
    blue: { arn: targetGroupArn("blue"), dimension: "targetgroup/blue-tg/0123456789abcdef" },
    green: { arn: targetGroupArn("green"), dimension: "targetgroup/green-tg/0123456789abcdef" },
  },
  alarms: { blue: [], green: [] },
};

/** A canary at 10% of green (2.0.0, image b) next to blue (1.0.0, image a), both at 2 replicas. */
const canary = (greenReplicas?: number): StageState =>
  canaryState({ canaryWeight: greenReplicas === 0 ? 0 : 10, greenReplicas });

/** An AWS error as the SDK raises it: a name and the HTTP status of the answer. */
function awsError(name: string, status: number, message: string): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/**
 * ECS and ELBv2 as the SDK clients' `send` sees them: services by ARN, task definitions'
 * images by ARN, target states by target group; `fail` makes one command throw.
 */
class FakeAws {
  services = new Map<string, Service>();
  taskImages = new Map<string, string[]>();
  targets = new Map<string, TargetHealthStateEnum[]>();
  fail = new Map<string, Error>();
  calls: string[] = [];

  constructor() {
    for (const [slot, c] of [
      ["blue", "a"],
      ["green", "b"],
    ] as const) {
      this.taskImages.set(taskDefinitionArn(slot, 1), [image(c), "public.ecr.aws/xray:3"]);
      this.services.set(serviceArn(slot), {
        serviceArn: serviceArn(slot),
        serviceName: `checkout-${slot}`,
        clusterArn: CLUSTER,
        status: "ACTIVE",
        taskDefinition: taskDefinitionArn(slot, 1),
        desiredCount: 2,
        runningCount: 2,
      });
      this.targets.set(targetGroupArn(slot), ["healthy", "healthy"]);
    }
  }

  readonly ecs = {
    send: async (command: unknown) => {
      if (command instanceof DescribeServicesCommand) {
        const ids = command.input.services ?? [];
        this.calls.push(`DescribeServices ${ids.join(",")}`);
        this.throwIfFailing("DescribeServices");
        expect(command.input.cluster).toBe(CLUSTER);
        return {
          services: ids.flatMap((id) => this.services.get(id) ?? []),
          failures: ids
            .filter((id) => !this.services.has(id))
            .map((arn) => ({ arn, reason: "MISSING" })),
        };
      }
      if (command instanceof DescribeTaskDefinitionCommand) {
        const arn = command.input.taskDefinition!;
        this.calls.push(`DescribeTaskDefinition ${arn}`);
        this.throwIfFailing("DescribeTaskDefinition");
        const images = this.taskImages.get(arn);
        if (!images) throw awsError("ClientException", 400, "Unable to describe task definition.");
        return {
          taskDefinition: {
            taskDefinitionArn: arn,
            containerDefinitions: images.map((i, n) => ({ name: `c${n}`, image: i })),
          },
        };
      }
      throw new Error(`unexpected ECS command ${(command as object).constructor.name}`);
    },
  } as unknown as ECSClient;

  readonly elb = {
    send: async (command: unknown) => {
      if (!(command instanceof DescribeTargetHealthCommand))
        throw new Error(`unexpected ELB command ${(command as object).constructor.name}`);
      const arn = command.input.TargetGroupArn!;
      this.calls.push(`DescribeTargetHealth ${arn}`);
      this.throwIfFailing("DescribeTargetHealth");
      return {
        TargetHealthDescriptions: (this.targets.get(arn) ?? []).map((State, i) => ({
          Target: { Id: `10.0.1.${i + 10}`, Port: 8080 },
          TargetHealth: {
            State,
            ...(State === "unhealthy" ? { Reason: "Target.ResponseCodeMismatch" } : {}),
          },
        })),
      };
    },
  } as unknown as ElasticLoadBalancingV2Client;

  private throwIfFailing(operation: string): void {
    const err = this.fail.get(operation);
    if (err) throw err;
  }
}

function servingOn(aws: FakeAws): EcsServing {
  return new EcsServing({
    settings: { region: "eu-west-1", maxAttempts: 1 },
    stage,
    services: {
      clusterArn: CLUSTER,
      services: { blue: serviceArn("blue"), green: serviceArn("green") },
    },
    ecs: aws.ecs,
    elb: aws.elb,
  });
}

/** The problems of a failed check; fails the test when the check passes. */
async function problemsOf(serving: EcsServing, state: StageState): Promise<string[]> {
  const err = await serving.check(state, 2, "before step 2").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NotServingError);
  expect((err as NotServingError).when).toBe("before step 2");
  return (err as NotServingError).problems;
}

describe("EcsServing reads each slot's ECS service and target group", () => {
  it("passes when both slots run their declared image and replicas behind healthy targets", async () => {
    const aws = new FakeAws();
    await expect(servingOn(aws).check(canary(), 2, "before step 2")).resolves.toBeUndefined();
    expect(aws.calls).toEqual([
      `DescribeServices ${serviceArn("blue")}`,
      `DescribeTaskDefinition ${taskDefinitionArn("blue", 1)}`,
      `DescribeTargetHealth ${targetGroupArn("blue")}`,
      `DescribeServices ${serviceArn("green")}`,
      `DescribeTaskDefinition ${taskDefinitionArn("green", 1)}`,
      `DescribeTargetHealth ${targetGroupArn("green")}`,
    ]);
  });

  it("reads each task definition once: a second check asks ECS only for the services and targets", async () => {
    const aws = new FakeAws();
    const serving = servingOn(aws);
    await serving.check(canary(), 2, "before step 1");
    aws.calls = [];
    await serving.check(canary(), 2, "before step 2");
    expect(aws.calls.filter((c) => c.startsWith("DescribeTaskDefinition"))).toEqual([]);
    expect(aws.calls.filter((c) => c.startsWith("DescribeServices"))).toHaveLength(2);
  });

  it("fails naming the slot when fewer tasks run than the stack declares", async () => {
    const aws = new FakeAws();
    aws.services.get(serviceArn("green"))!.runningCount = 1;
    expect(await problemsOf(servingOn(aws), canary())).toEqual([
      "green: ECS service checkout-green has 1/2 running tasks",
    ]);
  });

  it("fails when the service is scaled below the declared replicas", async () => {
    const aws = new FakeAws();
    Object.assign(aws.services.get(serviceArn("blue"))!, { desiredCount: 0, runningCount: 0 });
    expect(await problemsOf(servingOn(aws), canary())).toEqual([
      "blue: ECS service checkout-blue is scaled to 0, the stack declares 2",
      "blue: ECS service checkout-blue has 0/2 running tasks",
    ]);
  });

  it("fails when the task definition runs another image than the stack declares", async () => {
    const aws = new FakeAws();
    aws.taskImages.set(taskDefinitionArn("green", 2), [image("c")]);
    aws.services.get(serviceArn("green"))!.taskDefinition = taskDefinitionArn("green", 2);
    expect(await problemsOf(servingOn(aws), canary())).toEqual([
      `green: ECS service checkout-green runs task definition ${taskDefinitionArn("green", 2)} with ${image("c")}, the stack declares ${image("b")}`,
    ]);
  });

  it("fails when the service is missing (DescribeServices failures[] MISSING) or no longer ACTIVE", async () => {
    const aws = new FakeAws();
    aws.services.delete(serviceArn("green"));
    aws.services.get(serviceArn("blue"))!.status = "DRAINING";
    expect(await problemsOf(servingOn(aws), canary())).toEqual([
      "blue: ECS service checkout-blue is DRAINING, not ACTIVE (deleted outside the stack?)",
      `green: no ECS service ${serviceArn("green")} in cluster ${CLUSTER} (DescribeServices: MISSING; deleted outside the stack?)`,
    ]);
  });

  it("fails when the slot's target group has no healthy target, saying what it has", async () => {
    const aws = new FakeAws();
    aws.targets.set(targetGroupArn("green"), ["unhealthy", "initial", "unhealthy"]);
    aws.targets.set(targetGroupArn("blue"), []);
    expect(await problemsOf(servingOn(aws), canary())).toEqual([
      `blue: target group ${targetGroupArn("blue")} has no healthy target (no registered target), at least 1 expected`,
      `green: target group ${targetGroupArn("green")} has no healthy target (3 registered: 2 unhealthy (Target.ResponseCodeMismatch), 1 initial), at least 1 expected`,
    ]);
  });

  it("does not check a slot scaled to 0, even the candidate of a canary", async () => {
    const aws = new FakeAws();
    // Green would fail every check: no service, no targets.
    aws.services.delete(serviceArn("green"));
    aws.targets.delete(targetGroupArn("green"));
    await expect(servingOn(aws).check(canary(0), 2, "before step 1")).resolves.toBeUndefined();
    expect(aws.calls.some((c) => c.includes("green"))).toBe(false);
    expect(aws.calls).toContain(`DescribeServices ${serviceArn("blue")}`);
  });

  it("a read error (throttling, access denied) is a problem in words, not a crash", async () => {
    const aws = new FakeAws();
    aws.fail.set("DescribeServices", awsError("ThrottlingException", 400, "Rate exceeded"));
    aws.fail.set(
      "DescribeTargetHealth",
      awsError(
        "AccessDenied",
        403,
        "not authorized to perform: elasticloadbalancing:DescribeTargetHealth",
      ),
    );
    const problems = await problemsOf(servingOn(aws), canary());
    expect(problems).toHaveLength(4);
    expect(problems[0]).toBe(
      `blue: cannot read ECS service ${serviceArn("blue")} in cluster ${CLUSTER}: DescribeServices: ECS in eu-west-1 answered HTTP 400: ThrottlingException: Rate exceeded`,
    );
    expect(problems[3]).toBe(
      `green: cannot read the target health of target group ${targetGroupArn("green")}: DescribeTargetHealth: Elastic Load Balancing in eu-west-1 answered HTTP 403: AccessDenied: not authorized to perform: elasticloadbalancing:DescribeTargetHealth`,
    );
  });

  it("a task definition that cannot be read is a problem, and is read again next time", async () => {
    const aws = new FakeAws();
    aws.fail.set("DescribeTaskDefinition", awsError("AccessDeniedException", 403, "denied"));
    const serving = servingOn(aws);
    const problems = await problemsOf(serving, canary());
    expect(problems[0]).toMatch(
      /^blue: cannot read task definition .*checkout-blue:1 of ECS service checkout-blue: DescribeTaskDefinition: .*HTTP 403: AccessDeniedException: denied$/,
    );
    aws.fail.clear();
    await expect(serving.check(canary(), 2, "before step 2")).resolves.toBeUndefined();
  });
});
