/**
 * A stage's AWS world in moto, created through the real AWS SDK: a VPC with two
 * subnets, an ALB with a listener, a target group per slot, the weighted
 * listener rule between them, the slots' CloudWatch alarms, an ECS cluster with
 * a service per slot — the same shapes the AWS components create — plus the
 * `aws` outputs naming them.
 */
import {
  CloudWatchClient,
  PutMetricAlarmCommand,
  PutMetricDataCommand,
  SetAlarmStateCommand,
  type MetricDatum,
} from "@aws-sdk/client-cloudwatch";
import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from "@aws-sdk/client-ec2";
import {
  CreateClusterCommand,
  CreateServiceCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateRuleCommand,
  CreateTargetGroupCommand,
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyRuleCommand,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import type { Slot } from "../../../src/domain";
import type { AwsStageOutputs } from "../../../src/contract/outputs";
import type { Weights } from "../../../src/traffic/weights";
import { freePort, requireCommand, startProcess, waitFor, type Started } from "../servers";

export const REGION = "eu-west-1";
export const CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export interface Moto {
  endpoint: string;
  server: Started;
  elb: ElasticLoadBalancingV2Client;
  cloudwatch: CloudWatchClient;
  ec2: EC2Client;
  ecs: ECSClient;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<Moto> {
  const command = requireCommand("moto_server", "PyPI moto[server]");
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const server = startProcess(command, ["-H", "127.0.0.1", "-p", String(port)]);
  await waitFor(
    "moto_server",
    async () => (await fetch(`${endpoint}/moto-api/`)).ok,
    60_000,
    server,
  );
  const config = { region: REGION, endpoint, credentials: CREDENTIALS, maxAttempts: 1 };
  const moto: Moto = {
    endpoint,
    server,
    elb: new ElasticLoadBalancingV2Client(config),
    cloudwatch: new CloudWatchClient(config),
    ec2: new EC2Client(config),
    ecs: new ECSClient(config),
    async stop() {
      moto.elb.destroy();
      moto.cloudwatch.destroy();
      moto.ec2.destroy();
      moto.ecs.destroy();
      await server.stop();
    },
  };
  return moto;
}

/** What the pipeline's own clients need to reach moto through the default SDK chain. */
export function motoEnvironment(moto: Moto): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    // Never ask the instance metadata service (a non-loopback address) for credentials.
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

export interface AwsWorld {
  name: string;
  loadBalancerArn: string;
  listenerArn: string;
  outputs: AwsStageOutputs;
  /** A change made outside the pipeline (a console edit, another tool). */
  modifyWeights(weights: Weights): Promise<void>;
  setAlarm(slot: Slot, state: "OK" | "ALARM", reason: string): Promise<void>;
  /**
   * What an update of the slots does: each slot's service on a task definition with its
   * image, at its replicas (moto reports an updated desired count as running at once), and
   * that many healthy targets in its target group (moto does not register ECS tasks there).
   */
  applySlots(slots: Record<Slot, SlotDeclared>): Promise<void>;
  /** A change made outside the pipeline: a slot's service scaled by hand. */
  scaleService(slot: Slot, desiredCount: number): Promise<void>;
  /** A change made outside the pipeline: a slot's service moved to another image. */
  setServiceImage(slot: Slot, image: string): Promise<void>;
}

export interface SlotDeclared {
  image: string;
  replicas: number;
}

/** The service name the slot component gives (`slotResourceName`). */
const SERVICE = "checkout";
const PLACEHOLDER_IMAGE = "public.ecr.aws/docker/library/busybox:1.37";

/** The LoadBalancer and TargetGroup metric dimensions, from the ARNs (what `arnSuffix` is). */
const loadBalancerDimension = (arn: string) =>
  arn.slice(arn.indexOf(":loadbalancer/") + ":loadbalancer/".length);
const targetGroupDimension = (arn: string) => arn.slice(arn.indexOf(":targetgroup/") + 1);

/** `name` must be unique per moto server (it names the ALB and the alarms). */
export async function createAwsWorld(
  moto: Moto,
  name: string,
  weights: Weights = { blue: 100, green: 0 },
): Promise<AwsWorld> {
  const vpc = (await moto.ec2.send(new CreateVpcCommand({ CidrBlock: "10.0.0.0/16" }))).Vpc!.VpcId!;
  const subnets: string[] = [];
  for (const [i, zone] of ["a", "b"].entries()) {
    const subnet = await moto.ec2.send(
      new CreateSubnetCommand({
        VpcId: vpc,
        CidrBlock: `10.0.${i + 1}.0/24`,
        AvailabilityZone: `${REGION}${zone}`,
      }),
    );
    subnets.push(subnet.Subnet!.SubnetId!);
  }
  const alb = (
    await moto.elb.send(
      new CreateLoadBalancerCommand({ Name: name, Subnets: subnets, Type: "application" }),
    )
  ).LoadBalancers![0]!;
  const listenerArn = (
    await moto.elb.send(
      new CreateListenerCommand({
        LoadBalancerArn: alb.LoadBalancerArn,
        Protocol: "HTTP",
        Port: 80,
        DefaultActions: [{ Type: "fixed-response", FixedResponseConfig: { StatusCode: "404" } }],
      }),
    )
  ).Listeners![0]!.ListenerArn!;
  const groups = {} as Record<Slot, string>;
  for (const slot of ["blue", "green"] as const) {
    // namePrefix-style names as the component's target groups get (`blue-…`), unique per world.
    const tg = await moto.elb.send(
      new CreateTargetGroupCommand({
        Name: `${slot}-${name}`.slice(0, 32),
        Protocol: "HTTP",
        Port: 8080,
        VpcId: vpc,
        TargetType: "ip",
      }),
    );
    groups[slot] = tg.TargetGroups![0]!.TargetGroupArn!;
  }
  const forward = (w: Weights) => [
    {
      Type: "forward" as const,
      ForwardConfig: {
        TargetGroups: (["blue", "green"] as const).map((slot) => ({
          TargetGroupArn: groups[slot],
          Weight: w[slot],
        })),
      },
    },
  ];
  const rule = (
    await moto.elb.send(
      new CreateRuleCommand({
        ListenerArn: listenerArn,
        Priority: 100,
        Conditions: [{ Field: "path-pattern", PathPatternConfig: { Values: ["/*"] } }],
        Actions: forward(weights),
      }),
    )
  ).Rules![0]!;
  const alarms = {} as Record<Slot, string[]>;
  for (const slot of ["blue", "green"] as const) {
    const dimensions = [
      { Name: "LoadBalancer", Value: loadBalancerDimension(alb.LoadBalancerArn!) },
      { Name: "TargetGroup", Value: targetGroupDimension(groups[slot]) },
    ];
    alarms[slot] = [`${name}-${slot}-5xx-ratio`, `${name}-${slot}-p99-latency`];
    for (const alarm of alarms[slot]) {
      await moto.cloudwatch.send(
        new PutMetricAlarmCommand({
          AlarmName: alarm,
          ComparisonOperator: "GreaterThanThreshold",
          EvaluationPeriods: 3,
          Threshold: 0.3,
          Namespace: "AWS/ApplicationELB",
          MetricName: "TargetResponseTime",
          Dimensions: dimensions,
          Period: 60,
          ExtendedStatistic: "p99",
          TreatMissingData: "notBreaching",
        }),
      );
    }
  }
  const clusterArn = (await moto.ecs.send(new CreateClusterCommand({ clusterName: name }))).cluster!
    .clusterArn!;
  const taskDefinitions = new Map<string, string>();
  /** One task definition per slot and image, as the slot component registers them. */
  const taskDefinitionOf = async (slot: Slot, image: string): Promise<string> => {
    const key = `${slot} ${image}`;
    const known = taskDefinitions.get(key);
    if (known) return known;
    const registered = await moto.ecs.send(
      new RegisterTaskDefinitionCommand({
        family: `${name}-${slot}`,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: "512",
        memory: "512",
        containerDefinitions: [
          {
            name: SERVICE,
            image,
            essential: true,
            portMappings: [{ containerPort: 8080, protocol: "tcp" }],
          },
        ],
      }),
    );
    const arn = registered.taskDefinition!.taskDefinitionArn!;
    taskDefinitions.set(key, arn);
    return arn;
  };
  const services = {} as Record<Slot, string>;
  for (const slot of ["blue", "green"] as const) {
    const created = await moto.ecs.send(
      new CreateServiceCommand({
        cluster: clusterArn,
        serviceName: `${SERVICE}-${slot}`,
        taskDefinition: await taskDefinitionOf(slot, PLACEHOLDER_IMAGE),
        desiredCount: 0,
        launchType: "FARGATE",
        loadBalancers: [
          { targetGroupArn: groups[slot], containerName: SERVICE, containerPort: 8080 },
        ],
      }),
    );
    services[slot] = created.service!.serviceArn!;
  }
  const targetIds = (slot: Slot, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      Id: `10.0.${slot === "blue" ? 1 : 2}.${10 + i}`,
      Port: 8080,
    }));
  const updateService = (slot: Slot, change: { desiredCount?: number; taskDefinition?: string }) =>
    moto.ecs.send(
      new UpdateServiceCommand({ cluster: clusterArn, service: services[slot], ...change }),
    );
  const outputs: AwsStageOutputs = {
    loadBalancerDimension: loadBalancerDimension(alb.LoadBalancerArn!),
    listenerRuleArn: rule.RuleArn!,
    targetGroups: {
      blue: { arn: groups.blue, dimension: targetGroupDimension(groups.blue) },
      green: { arn: groups.green, dimension: targetGroupDimension(groups.green) },
    },
    alarms,
    ecs: { clusterArn, services },
  };
  return {
    name,
    loadBalancerArn: alb.LoadBalancerArn!,
    listenerArn,
    outputs,
    async modifyWeights(w) {
      await moto.elb.send(new ModifyRuleCommand({ RuleArn: rule.RuleArn!, Actions: forward(w) }));
    },
    async setAlarm(slot, state, reason) {
      for (const alarm of alarms[slot].slice(0, 1))
        await moto.cloudwatch.send(
          new SetAlarmStateCommand({ AlarmName: alarm, StateValue: state, StateReason: reason }),
        );
    },
    async applySlots(slots) {
      for (const slot of ["blue", "green"] as const) {
        const { image, replicas } = slots[slot];
        await updateService(slot, {
          taskDefinition: await taskDefinitionOf(slot, image),
          desiredCount: replicas,
        });
        const registered = (
          await moto.elb.send(new DescribeTargetHealthCommand({ TargetGroupArn: groups[slot] }))
        ).TargetHealthDescriptions!.map((t) => ({ Id: t.Target!.Id!, Port: t.Target!.Port! }));
        if (registered.length > 0)
          await moto.elb.send(
            new DeregisterTargetsCommand({ TargetGroupArn: groups[slot], Targets: registered }),
          );
        if (replicas > 0)
          await moto.elb.send(
            new RegisterTargetsCommand({
              TargetGroupArn: groups[slot],
              Targets: targetIds(slot, replicas),
            }),
          );
      }
    },
    async scaleService(slot, desiredCount) {
      await updateService(slot, { desiredCount });
    },
    async setServiceImage(slot, image) {
      await updateService(slot, { taskDefinition: await taskDefinitionOf(slot, image) });
    },
  };
}

export interface SlotTraffic {
  requestsPerMinute: number;
  errorRate: number;
  latencyScale: number;
}

/**
 * Publishes `minutes` minutes of ALB metrics from `start` for both target
 * groups of a world: RequestCount, HTTPCode_Target_5XX_Count (omitted when
 * zero, as the ALB does) and a TargetResponseTime distribution.
 */
export async function publishTraffic(
  moto: Moto,
  world: AwsWorld,
  start: Date,
  minutes: number,
  traffic: Record<Slot, SlotTraffic>,
): Promise<void> {
  for (let minute = 0; minute < minutes; minute++) {
    const at = new Date(start.getTime() + minute * 60_000 + 5_000);
    const data: MetricDatum[] = [];
    for (const slot of ["blue", "green"] as const) {
      const t = traffic[slot];
      const dims = [
        { Name: "TargetGroup", Value: world.outputs.targetGroups[slot].dimension },
        { Name: "LoadBalancer", Value: world.outputs.loadBalancerDimension },
      ];
      const n = t.requestsPerMinute;
      const jitter = 1 + 0.03 * Math.sin(minute * 2.7 + (slot === "blue" ? 1 : 2));
      const errors = Math.round(n * t.errorRate * (1 + 0.2 * Math.cos(minute * 1.3)));
      data.push(
        { MetricName: "RequestCount", Dimensions: dims, Timestamp: at, Value: n, Unit: "Count" },
        {
          MetricName: "TargetResponseTime",
          Dimensions: dims,
          Timestamp: at,
          Values: [0.05, 0.08, 0.12, 0.3, 0.9].map((v) => v * t.latencyScale * jitter),
          // The latency distribution does not depend on the request rate.
          Counts: [30, 40, 20, 9, 1],
          Unit: "Seconds",
        },
      );
      if (errors > 0)
        data.push({
          MetricName: "HTTPCode_Target_5XX_Count",
          Dimensions: dims,
          Timestamp: at,
          Value: errors,
          Unit: "Count",
        });
    }
    await moto.cloudwatch.send(
      new PutMetricDataCommand({ Namespace: "AWS/ApplicationELB", MetricData: data }),
    );
  }
}
