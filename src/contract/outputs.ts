import { z } from "zod";
import { PLATFORMS, releaseRecordSchema, RUNTIMES } from "../config/schema";
import { SLOTS } from "../domain";

/**
 * The stage outputs contract, version 1. App teams read it through
 * `readStage(new pulumi.StackReference(...))`; the pipeline reads it through the
 * Automation API. Adding a field is compatible; renaming or removing one needs
 * schemaVersion 2 (and both exported for a while).
 */
export const SCHEMA_VERSION = 1 as const;

const slot = z.enum(SLOTS);
const targetGroup = z.object({
  arn: z.string(),
  /** The TargetGroup dimension of its CloudWatch metrics: `targetgroup/<name>/<id>`. */
  dimension: z.string(),
});

/**
 * What the pipeline reads and calls on an AWS stage, straight from what the
 * stack created: the weighted rule (read back with DescribeRules), the target
 * groups its weights point at (matched by ARN), the metric dimensions of the
 * analysis and the alarms consulted while a release runs.
 */
export const awsStageOutputsSchema = z.object({
  /** The LoadBalancer dimension of the ALB's metrics: `app/<name>/<id>`. */
  loadBalancerDimension: z.string(),
  listenerRuleArn: z.string(),
  targetGroups: z.object({ blue: targetGroup, green: targetGroup }),
  /** CloudWatch alarm names per slot. */
  alarms: z.object({ blue: z.array(z.string()), green: z.array(z.string()) }),
  /**
   * The ECS cluster and each slot's service ARN, read with DescribeServices before each
   * release transition. Absent from stacks last updated before it was added.
   */
  ecs: z
    .object({
      clusterArn: z.string(),
      services: z.object({ blue: z.string(), green: z.string() }),
    })
    .optional(),
});
export type AwsStageOutputs = z.infer<typeof awsStageOutputsSchema>;

const release = z.object({
  image: z.string(),
  version: z.string(),
  revision: z.string().optional(),
  replicas: z.number().int(),
});

export const stageOutputsSchema = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  stage: z.string(),
  platform: z.enum(PLATFORMS),
  service: z.object({ name: z.string(), runtime: z.enum(RUNTIMES), port: z.number().int() }),
  endpoint: z.string(),
  stableSlot: slot,
  candidateSlot: slot,
  weights: z.object({ blue: z.number().int(), green: z.number().int() }),
  releases: z.object({ blue: release, green: release }),
  routing: z.object({
    kind: z.enum(["HTTPRoute", "ListenerRule"]),
    /** HTTPRoute `namespace/name`, or the weighted listener rule's ARN. */
    id: z.string(),
    headerRouteId: z.string().optional(),
    headerName: z.string().optional(),
  }),
  roles: z.object({
    deployer: z.string(),
    services: z.object({ blue: z.string(), green: z.string() }),
    execution: z.string().optional(),
  }),
  health: z.object({
    kind: z.enum(["prometheus", "cloudwatch"]),
    /** PromQL per slot (kubernetes) or CloudWatch alarm names per slot (aws). */
    blue: z.record(z.string(), z.string()),
    green: z.record(z.string(), z.string()),
  }),
  flags: z.record(
    z.string(),
    z.object({ enabled: z.boolean(), owner: z.string(), expires: z.string() }),
  ),
  /** AWS stages only (added in schemaVersion 1; absent from stacks deployed before it). */
  aws: awsStageOutputsSchema.optional(),
  /** The release in progress or last finished, as the pipeline recorded it (absent before the first release). */
  release: releaseRecordSchema.optional(),
});

export type StageOutputs = z.infer<typeof stageOutputsSchema>;
export const STAGE_OUTPUT_KEYS = Object.keys(stageOutputsSchema.shape) as (keyof StageOutputs)[];

/** The tester header (name and secret value) is exported separately, as a secret. */
export const TESTER_HEADER_OUTPUT = "testerHeader";

export class StageContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StageContractError";
  }
}

/** Validates plain outputs (Automation API `outputs()` values, or a StackReference's). */
export function parseStageOutputs(values: Record<string, unknown>, source = "stack"): StageOutputs {
  if (values.schemaVersion !== SCHEMA_VERSION) {
    throw new StageContractError(
      `${source}: outputs have schemaVersion ${JSON.stringify(values.schemaVersion)}; this reader understands ${SCHEMA_VERSION}. ` +
        "Upgrade the consumer or read it with a matching Slipway version.",
    );
  }
  const result = stageOutputsSchema.safeParse(values);
  if (!result.success) {
    const first = result.error.issues[0]!;
    throw new StageContractError(`${source}: output ${first.path.join(".")}: ${first.message}`);
  }
  return result.data;
}
