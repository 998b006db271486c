import { z } from "zod";
import { IMAGE_REF_ALLOWED, ImageRefError, parseImageRef } from "../governance/artifact";
import { artifactPolicySchema } from "../governance/artifactPolicy";
import { analysisSpecSchema, parseDurationSeconds } from "../analysis/spec";
import { hooksSchema, stepNumberProblems } from "../hooks/spec";
import { notificationsSchema } from "../notify/spec";
import { DEFAULT_PRESET, PRESET_PLANS, PRESETS, RELEASE_PHASES, SLOTS } from "../domain";

/**
 * The stack config contract: every `slipway:*` key, its shape and its defaults.
 * Pure (no Pulumi, no I/O) so the program, the pipeline and the tests validate
 * config the same way, before anything is declared or updated.
 *
 * Each default is declared once, on its field. An omitted block uses
 * `.prefault({})`: zod parses `{}` through the block's schema, so the fields'
 * own defaults fill it (`.default({...})` would return its value unparsed and
 * need a second copy of every default).
 */

export const PLATFORMS = ["kubernetes", "aws"] as const;

export const RUNTIMES = ["go", "rust"] as const;
export type Runtime = (typeof RUNTIMES)[number];

const dns1123Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const slotSchema = z.enum(SLOTS, { error: 'allowed: "blue" or "green"' });

const imageSchema = z.string({ error: IMAGE_REF_ALLOWED }).superRefine((value, ctx) => {
  try {
    parseImageRef(value, "image");
  } catch (err) {
    if (!(err instanceof ImageRefError)) throw err;
    ctx.addIssue({ code: "custom", message: `${err.reason}; ${IMAGE_REF_ALLOWED}` });
  }
});

const intIn = (min: number, max: number, what = "an integer") =>
  z
    .number({ error: `allowed: ${what} from ${min} to ${max}` })
    .int({ error: `allowed: ${what} from ${min} to ${max}` })
    .min(min, { error: `allowed: ${what} from ${min} to ${max}` })
    .max(max, { error: `allowed: ${what} from ${min} to ${max}` });

const urlPath = z
  .string()
  .regex(/^\/[\w\-./~%]*$/, { error: 'allowed: an absolute URL path such as "/healthz"' });

/** IAM actions look like `service:Action`; any `*` or `?` makes it a wildcard. */
const iamAction = z.string().regex(/^[a-z0-9-]+:[A-Za-z0-9]+$/, {
  error:
    'allowed: one exact IAM action such as "s3:GetObject"; wildcards ("*", "s3:*", "s3:Get*") are not allowed',
});

const iamResource = z
  .string()
  .min(1)
  .refine((v) => v !== "*", {
    error: 'allowed: an ARN naming what the service uses; a bare "*" resource is not allowed',
  });

export const permissionSchema = z
  .object({
    sid: z
      .string()
      .regex(/^[A-Za-z0-9]+$/)
      .optional(),
    actions: z.array(iamAction).min(1, { error: "allowed: at least one action" }),
    resources: z.array(iamResource).min(1, { error: "allowed: at least one resource ARN" }),
  })
  .strict();
export type Permission = z.infer<typeof permissionSchema>;

export const serviceSchema = z
  .object({
    name: z
      .string({
        error: "allowed: a DNS label (lowercase letters, digits, '-') of at most 24 characters",
      })
      .max(24, { error: "allowed: at most 24 characters (it prefixes AWS and Kubernetes names)" })
      .regex(dns1123Label, {
        error: "allowed: a DNS label (lowercase letters, digits, '-'), starting with a letter",
      }),
    runtime: z.enum(RUNTIMES, { error: 'allowed: "go" or "rust"' }),
    port: intIn(1, 65535, "a port number"),
    healthPath: urlPath.default("/healthz"),
    readyPath: urlPath.default("/readyz"),
    metricsPath: urlPath.default("/metrics"),
    /** vCPUs per replica (Kubernetes limit; ECS task size). */
    cpu: z
      .number({ error: "allowed: vCPUs per replica, a number from 0.125 to 16" })
      .min(0.125, { error: "allowed: vCPUs per replica, a number from 0.125 to 16" })
      .max(16, { error: "allowed: vCPUs per replica, a number from 0.125 to 16" })
      .default(0.5),
    memoryMiB: intIn(64, 122880, "MiB, an integer").default(512),
    /** Full size of a slot; the stable slot always runs at this count. */
    replicas: intIn(1, 1000).default(2),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
          error: "allowed: environment variable names [A-Za-z_][A-Za-z0-9_]*",
        }),
        z.string({ error: "allowed: a string value" }),
      )
      .default({}),
    permissions: z.array(permissionSchema).default([]),
  })
  .strict();
export type ServiceConfig = z.infer<typeof serviceSchema>;

/**
 * A release's version label. It becomes the Kubernetes label `app.kubernetes.io/version`
 * (and an AWS tag), so it follows the label-value rule on every platform: a version the
 * cluster would refuse is refused here, before any update.
 */
export const VERSION_LABEL_ALLOWED =
  "allowed: a version label such as 1.4.2: 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
export const versionLabelSchema = z
  .string({ error: VERSION_LABEL_ALLOWED })
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, { error: VERSION_LABEL_ALLOWED });

export const slotReleaseSchema = z
  .object({
    image: imageSchema,
    version: versionLabelSchema,
    revision: z.string().max(64).optional(),
    /** Omitted: the service's full replica count. The idle slot is scaled to 0 after promotion. */
    replicas: intIn(0, 1000).optional(),
  })
  .strict();
export type SlotRelease = z.infer<typeof slotReleaseSchema>;

export const slotsSchema = z.object({ blue: slotReleaseSchema, green: slotReleaseSchema }).strict();

export const trafficSchema = z
  .object({
    stable: slotSchema,
    canaryWeight: intIn(0, 100).default(0),
    headerRoute: z
      .object({
        enabled: z.boolean().default(true),
        name: z
          .string()
          .regex(/^[a-z0-9-]+$/, { error: "allowed: a lowercase HTTP header name" })
          .default("x-slipway-canary"),
        /**
         * Where the secret header value comes from: the random provider, or
         * `slipway:testerToken`, a secret Slipway generates once into the stack
         * file (for stages where the random plugin cannot be installed, such as
         * the offline local stage; README, "tester header secret").
         */
        secretGenerator: z
          .enum(["random", "builtin"], { error: 'allowed: "random" or "builtin"' })
          .default("random"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

// A duration of 0 is refused: it meant a pause of no time that waits for no approval.
const DURATION_ALLOWED =
  'allowed: whole seconds from 1, or a duration such as "30s", "5m", "1h", "1m30s"';
const durationSchema = z.union(
  [
    z.number({ error: DURATION_ALLOWED }).int({ error: DURATION_ALLOWED }).min(1, {
      error: DURATION_ALLOWED,
    }),
    z.string().refine((v) => parseDurationSeconds(v) !== undefined, { error: DURATION_ALLOWED }),
  ],
  { error: DURATION_ALLOWED },
);
const secondsOf = (d: string | number | undefined) =>
  d === undefined ? 0 : (parseDurationSeconds(d) ?? 0);

export const stepSchema = z.union(
  [
    z.object({ setWeight: intIn(1, 100, "a weight") }).strict(),
    z
      .object({
        pause: z
          .object({ duration: durationSchema.optional(), untilApproved: z.boolean().optional() })
          .strict(),
      })
      .strict(),
    z
      .object({
        analysis: z
          .object({
            count: intIn(1, 1000).optional(),
            interval: durationSchema.optional(),
          })
          .strict(),
      })
      .strict(),
  ],
  {
    error:
      "allowed: one of {setWeight: N}, {pause: {duration | untilApproved}}, {analysis: {count, interval}}",
  },
);
export type Step = z.infer<typeof stepSchema>;

export const canarySchema = z
  .object({
    preset: z.enum(PRESETS, { error: `allowed: ${PRESETS.join(", ")}` }).optional(),
    steps: z.array(stepSchema).optional(),
    /** How each analysis step judges the candidate (src/analysis/spec.ts). */
    analysis: analysisSpecSchema.prefault({}),
    scaleDownDelaySeconds: intIn(0, 7 * 24 * 3600).default(600),
    progressDeadlineSeconds: intIn(30, 24 * 3600).default(1800),
    smokeCheck: z
      .object({ path: urlPath.default("/healthz"), requests: intIn(1, 1000).default(5) })
      .strict()
      .optional(),
    /** HTTP calls at points of a release (src/hooks/spec.ts). */
    hooks: hooksSchema.default([]),
    /**
     * Weights found in force that differ from the stack (changed outside the program):
     * roll back to the known-good slot (one update), or pause the release for a person.
     */
    onDrift: z
      .enum(["rollback", "pause"], { error: 'allowed: "rollback" or "pause"' })
      .default("rollback"),
    /** How often a long pause reads the weights back. */
    driftCheckSeconds: intIn(1, 3600).default(15),
  })
  .strict()
  .superRefine((canary, ctx) => {
    const planLength = (canary.steps ?? PRESET_PLANS[canary.preset ?? DEFAULT_PRESET]).length;
    for (const { index, step } of stepNumberProblems(canary.hooks, planLength)) {
      ctx.addIssue({
        code: "custom",
        path: ["hooks", index, "steps"],
        input: step,
        message: `step ${step} is not in the plan, which has ${planLength} step${planLength === 1 ? "" : "s"}; allowed: step numbers from 1 to ${planLength}, or "all"`,
      });
    }
    if (canary.preset && canary.steps) {
      ctx.addIssue({
        code: "custom",
        path: ["steps"],
        message: "only one of `preset` or `steps` can be given",
      });
    }
    let last = 0;
    let timedSeconds = 0;
    (canary.steps ?? []).forEach((step, i) => {
      if ("pause" in step) {
        if (step.pause.duration === undefined && step.pause.untilApproved === false)
          ctx.addIssue({
            code: "custom",
            path: ["steps", i, "pause"],
            input: step.pause,
            message:
              "a pause with untilApproved: false needs a duration; allowed: {duration: 30s} or {untilApproved: true}",
          });
        timedSeconds += secondsOf(step.pause.duration);
      }
      if ("analysis" in step && step.analysis.count)
        timedSeconds += step.analysis.count * secondsOf(step.analysis.interval);
      if ("setWeight" in step) {
        if (step.setWeight <= last) {
          ctx.addIssue({
            code: "custom",
            path: ["steps", i, "setWeight"],
            input: step.setWeight,
            message: `weights must rise step by step; ${step.setWeight} follows ${last}`,
          });
        }
        last = step.setWeight;
      }
    });
    // The deadline counts from the release's start: a plan whose timed steps alone outlast it
    // would always be rolled back at the deadline, however good the release.
    if (timedSeconds > canary.progressDeadlineSeconds)
      ctx.addIssue({
        code: "custom",
        path: ["steps"],
        message: `the plan's pauses and analyses take at least ${timedSeconds}s, longer than progressDeadlineSeconds (${canary.progressDeadlineSeconds}s): every release would roll back at the deadline; allowed: timed steps that fit within progressDeadlineSeconds, or a larger progressDeadlineSeconds (at most ${24 * 3600})`,
      });
  });
export type CanaryConfig = z.infer<typeof canarySchema>;

const arn = (what: string) =>
  z
    .string({ error: `allowed: the ARN of ${what}` })
    .regex(/^arn:aws[a-z-]*:[a-z0-9-]+:/, { error: `allowed: the ARN of ${what}` });

export const awsSchema = z
  .object({
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { error: "allowed: an AWS region such as us-east-1" })
      .default("us-east-1"),
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, { error: "allowed: a VPC id such as vpc-0abc…" }),
    subnetIds: z
      .array(
        z
          .string()
          .regex(/^subnet-[0-9a-f]+$/, { error: "allowed: subnet ids such as subnet-0abc…" }),
      )
      .min(1),
    clusterArn: arn("an existing ECS cluster"),
    listenerArn: arn("the ALB listener that carries this service"),
    /** The ALB (for alarm dimensions) and its security group (the only ingress allowed to tasks). */
    loadBalancerArn: arn("the ALB"),
    loadBalancerSecurityGroupId: z
      .string()
      .regex(/^sg-[0-9a-f]+$/, { error: "allowed: a security group id such as sg-0abc…" }),
    ecrRepositoryArn: arn("the ECR repository the images come from"),
    /** Fixed per stage so that no step or promotion renumbers (replaces) a rule. */
    rulePriority: intIn(2, 50000),
    hostHeaders: z.array(z.string().min(1)).min(1).default(["*"]),
    pathPatterns: z.array(z.string().min(1)).min(1).default(["/*"]),
    logRetentionDays: z
      .union(
        [
          z.literal(1),
          z.literal(3),
          z.literal(7),
          z.literal(14),
          z.literal(30),
          z.literal(90),
          z.literal(365),
        ],
        {
          error: "allowed: 1, 3, 7, 14, 30, 90 or 365",
        },
      )
      .default(30),
    alarms: z
      .object({
        errorRatio: z.number().min(0).max(1).default(0.01),
        p99LatencySeconds: z.number().positive().default(0.3),
        evaluationPeriods: intIn(1, 60).default(3),
        /** While a release runs, a candidate alarm in ALARM fails the step and rolls back. */
        rollbackOnAlarm: z.boolean({ error: "allowed: true or false" }).default(true),
      })
      .strict()
      .prefault({}),
    /** How the release analysis reads the ALB's CloudWatch metrics. */
    analysis: z
      .object({
        /** TargetResponseTime statistic per minute: a percentile (p99, p95, p99.9) or Average. */
        latencyStatistic: z
          .string()
          .regex(/^(p\d{1,2}(\.\d+)?|Average|Minimum|Maximum)$/, {
            error:
              'allowed: a percentile such as "p99" or "p99.9", or "Average", "Minimum", "Maximum"',
          })
          .default("p99"),
      })
      .strict()
      .prefault({}),
    /** The pipeline's identity (e.g. a CI OIDC role) that may assume the deployer role. */
    deployerPrincipalArn: arn("the principal allowed to assume the deployer role"),
  })
  .strict();
export type AwsConfig = z.infer<typeof awsSchema>;

export const kubernetesSchema = z
  .object({
    namespace: z
      .string()
      .regex(dns1123Label, { error: "allowed: a DNS label (lowercase letters, digits, '-')" })
      .optional(),
    createNamespace: z.boolean().default(true),
    /** Render manifests to this directory instead of applying them (no cluster, no credentials). */
    renderYamlToDirectory: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    gateway: z
      .object({
        name: z.string().regex(dns1123Label).default("slipway-gateway"),
        namespace: z.string().regex(dns1123Label).default("gateway-system"),
        sectionName: z.string().regex(dns1123Label).optional(),
      })
      .strict()
      .prefault({}),
    hostnames: z.array(z.string().min(1)).default([]),
    /** The in-cluster identity of the pipeline, bound to the deployer Role. */
    deployerServiceAccount: z
      .object({ name: z.string().regex(dns1123Label), namespace: z.string().regex(dns1123Label) })
      .strict()
      .default({ name: "slipway-deployer", namespace: "slipway-system" }),
    /** Namespace of the Prometheus that scrapes the pods (allowed through the NetworkPolicy). */
    monitoringNamespace: z.string().regex(dns1123Label).default("monitoring"),
    prometheusUrl: z.string().url().optional(),
    /** Resolution (and rate window) of the analysis' range queries: at least two scrape intervals. */
    prometheusStepSeconds: intIn(1, 600, "seconds, an integer").default(30),
  })
  .strict();
export type KubernetesConfig = z.infer<typeof kubernetesSchema>;

/** 2026-02-29 and 2026-13-45 match YYYY-MM-DD but name no day of the calendar. */
export function isCalendarDate(value: string): boolean {
  const t = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === value;
}

export const flagSchema = z
  .object({
    enabled: z.boolean({ error: "allowed: true or false" }),
    owner: z.string({ error: "allowed: the owning team or person" }).min(1),
    expires: z.preprocess(
      // An unquoted date in a stack file reaches the program as the engine's timestamp text.
      (v) =>
        typeof v === "string"
          ? v.replace(/^(\d{4}-\d{2}-\d{2})[ T]00:00:00(\.0+)?( ?\+0000 UTC|Z)?$/, "$1")
          : v,
      z
        .string({ error: "allowed: a date, YYYY-MM-DD" })
        .regex(/^\d{4}-\d{2}-\d{2}$/, { error: "allowed: a date, YYYY-MM-DD" })
        .refine(isCalendarDate, { error: "is not a real date; allowed: a date, YYYY-MM-DD" }),
    ),
    description: z.string().optional(),
  })
  .strict();
export type FlagConfig = z.infer<typeof flagSchema>;

export const flagsSchema = z.record(
  z.string().regex(/^[a-z][a-z0-9-]*$/, { error: "allowed: flag names in kebab-case" }),
  flagSchema,
);

export const promotionSchema = z
  .object({
    /** The stage whose promoted releases may come here (`slipway promote --from`). */
    from: z.string().optional(),
    soakSeconds: intIn(0, 30 * 24 * 3600).default(0),
    requireApproval: z.boolean().default(false),
    freezeWindows: z
      .array(
        z
          .object({
            start: z
              .string()
              .datetime({ offset: true, error: "allowed: an ISO-8601 date-time with offset" }),
            end: z
              .string()
              .datetime({ offset: true, error: "allowed: an ISO-8601 date-time with offset" }),
            reason: z.string().default("change freeze"),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

/**
 * Where the current release stands. Written by the pipeline with every update
 * and echoed in the stack outputs, so the stack is the source of truth for a
 * resumed pipeline. Nothing in the program depends on it but the outputs.
 */
export const releaseRecordSchema = z
  .object({
    id: z
      .string()
      .regex(/^r-[a-z0-9-]+$/, { error: "allowed: a release id such as r-20261126-101500-ab12" }),
    phase: z.enum(RELEASE_PHASES),
    candidateSlot: slotSchema,
    artifact: z
      .object({ image: imageSchema, version: z.string(), revision: z.string().optional() })
      .strict(),
    /** The stable release when this one started: what a rollback returns to. */
    previous: z
      .object({
        slot: slotSchema,
        image: imageSchema,
        version: z.string(),
        revision: z.string().optional(),
      })
      .strict(),
    /** Steps of the plan completed so far. */
    position: z.number().int().min(0),
    steps: z.number().int().min(0),
    startedAt: z.string(),
    updatedAt: z.string(),
    promotedAt: z.string().optional(),
    reason: z.string().optional(),
  })
  .strict();
export type ReleaseRecord = z.infer<typeof releaseRecordSchema>;

/** Raw `slipway:*` values as the engine hands them over, keyed without the namespace. */
export const stageConfigSchema = z
  .object({
    platform: z.enum(PLATFORMS, { error: 'allowed: "kubernetes" or "aws"' }).default("kubernetes"),
    service: serviceSchema,
    slots: slotsSchema,
    traffic: trafficSchema,
    canary: canarySchema.prefault({}),
    // The project default is `{}`; on the kubernetes platform an empty aws block means "not used".
    aws: z.preprocess((v) => (isEmptyObject(v) ? undefined : v), awsSchema.optional()),
    kubernetes: kubernetesSchema.prefault({}),
    flags: flagsSchema.default({}),
    promotion: promotionSchema.prefault({}),
    artifacts: artifactPolicySchema.prefault({}),
    notifications: notificationsSchema.prefault({}),
    // The project default is `{}`: no release yet.
    release: z.preprocess(
      (v) => (isEmptyObject(v) ? undefined : v),
      releaseRecordSchema.optional(),
    ),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.platform === "aws" && !cfg.aws) {
      ctx.addIssue({
        code: "custom",
        path: ["aws"],
        message: 'is required when slipway:platform is "aws"',
      });
    }
    const stable = cfg.slots[cfg.traffic.stable];
    if (stable.replicas !== undefined && stable.replicas < cfg.service.replicas) {
      ctx.addIssue({
        code: "custom",
        path: ["slots", cfg.traffic.stable, "replicas"],
        input: stable.replicas,
        message: `the stable slot must run at full size; allowed: ${cfg.service.replicas} (slipway:service.replicas) or omit it`,
      });
    }
    if (cfg.platform === "aws") {
      const problem = fargateSizeProblem(cfg.service.cpu, cfg.service.memoryMiB);
      if (problem)
        ctx.addIssue({
          code: "custom",
          path: ["service", "memoryMiB"],
          input: cfg.service.memoryMiB,
          message: problem,
        });
    }
  });

function isEmptyObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

export type StageConfig = z.infer<typeof stageConfigSchema> & { stage: string };

/** Fargate accepts only certain CPU/memory pairs; catching it here beats a failed deployment. */
export function fargateSizeProblem(cpu: number, memoryMiB: number): string | undefined {
  const ranges: Record<string, [number, number, number]> = {
    "0.25": [512, 2048, 512],
    "0.5": [1024, 4096, 1024],
    "1": [2048, 8192, 1024],
    "2": [4096, 16384, 1024],
    "4": [8192, 30720, 1024],
    "8": [16384, 61440, 4096],
    "16": [32768, 122880, 8192],
  };
  const range = ranges[String(cpu)];
  if (!range)
    return `Fargate needs slipway:service.cpu to be one of ${Object.keys(ranges).join(", ")} (got ${cpu})`;
  const [min, max, step] = range;
  if (memoryMiB < min || memoryMiB > max || memoryMiB % step !== 0) {
    return `with ${cpu} vCPU, Fargate allows ${min} to ${max} MiB in steps of ${step}`;
  }
  return undefined;
}
