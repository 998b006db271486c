import {
  DEFAULT_FLAG_WARN_DAYS,
  DEFAULT_LISTENER_PORTS,
  ecrTagViolations,
  expiringFlagWarnings,
  FLAG_TYPES,
  flagViolations,
  IAM_TYPES,
  iamViolations,
  IMAGE_TYPES,
  imageViolations,
  INGRESS_TYPES,
  isRoutingType,
  publicIngressViolations,
  routingWeightViolations,
  slotPresenceViolations,
  stableSlotViolations,
  TYPES,
  type PolicyResource,
  type Violation,
} from "./rules";

/**
 * Slipway's policies: name, level and which rule each one runs. The pack in
 * policy/ turns this list into a PolicyPack; the unit tests run the same list
 * over rendered stages, so what is tested is what the engine enforces.
 */

export type EnforcementLevel = "advisory" | "mandatory";

export interface PolicyContext {
  /** The policy's config (from the pack's config file), defaults not yet applied. */
  config: Record<string, unknown>;
  now: Date;
}

interface Common {
  name: string;
  description: string;
  enforcementLevel: EnforcementLevel;
  /** JSON schema of the policy's config, for `pulumi preview --policy-pack-config`. */
  configSchema?: { properties: Record<string, any> };
}

export interface ResourcePolicySpec extends Common {
  kind: "resource";
  appliesTo(type: string): boolean;
  check(resource: PolicyResource, ctx: PolicyContext): Violation[];
}

export interface StackPolicySpec extends Common {
  kind: "stack";
  check(resources: PolicyResource[], ctx: PolicyContext): Violation[];
}

export type PolicySpec = ResourcePolicySpec | StackPolicySpec;

const oneOf = (types: readonly string[]) => (type: string) => types.includes(type);

function numberList(value: unknown, fallback: number[]): number[] {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v))
    ? (value as number[])
    : fallback;
}

export const POLICIES: readonly PolicySpec[] = [
  {
    kind: "resource",
    name: "iam-no-wildcards",
    description:
      'IAM statements name exact actions (no * or ?, no NotAction); Resource "*" only for the actions AWS cannot scope (UNSCOPABLE_ACTIONS).',
    enforcementLevel: "mandatory",
    appliesTo: oneOf(IAM_TYPES),
    check: (r) => iamViolations(r),
  },
  {
    kind: "resource",
    name: "images-pinned-by-digest",
    description:
      "Every container image (Kubernetes workloads, ECS task definitions) is pinned by digest: repo@sha256:<64 hex>.",
    enforcementLevel: "mandatory",
    appliesTo: oneOf(IMAGE_TYPES),
    check: (r) => imageViolations(r),
  },
  {
    kind: "stack",
    name: "blue-green-slots-present",
    description: `Exactly one blue and one green slot: Deployments labelled slipway.dev/slot, or ECS services tagged slipway:slot.`,
    enforcementLevel: "mandatory",
    check: (resources) => slotPresenceViolations(resources),
  },
  {
    kind: "resource",
    name: "routing-weights-total-100",
    description:
      "The weighted routing rule (the last HTTPRoute rule, or the ALB listener rule's weighted forward) gives every backend a weight, totalling 100.",
    enforcementLevel: "mandatory",
    appliesTo: isRoutingType,
    check: (r) => routingWeightViolations(r),
  },
  {
    kind: "stack",
    name: "stable-slot-fully-scaled",
    description:
      "The stable slot (the one with the larger weight in the weighted rule) runs more than 0 replicas and at least as many as the other slot.",
    enforcementLevel: "mandatory",
    check: (resources) => stableSlotViolations(resources),
  },
  {
    kind: "resource",
    name: "no-public-ingress",
    description:
      "No security group ingress from 0.0.0.0/0 or ::/0 except TCP on the load balancer's listener ports.",
    enforcementLevel: "mandatory",
    configSchema: {
      properties: {
        allowedPorts: {
          type: "array",
          items: { type: "integer", minimum: 0, maximum: 65535 },
          default: DEFAULT_LISTENER_PORTS,
          description:
            "TCP ports that may be open to the internet (the load balancer's listener ports).",
        },
      },
    },
    appliesTo: oneOf(INGRESS_TYPES),
    check: (r, ctx) =>
      publicIngressViolations(r, numberList(ctx.config.allowedPorts, DEFAULT_LISTENER_PORTS)),
  },
  {
    kind: "resource",
    name: "ecr-immutable-tags",
    description: "Container repositories have immutable tags (imageTagMutability IMMUTABLE).",
    enforcementLevel: "mandatory",
    appliesTo: oneOf([TYPES.ecrRepository]),
    check: (r) => ecrTagViolations(r),
  },
  {
    kind: "resource",
    name: "feature-flags-owned-and-current",
    description:
      "Every feature flag has an owner and an expiry date, and no flag has expired (remove it).",
    enforcementLevel: "mandatory",
    appliesTo: oneOf(FLAG_TYPES),
    check: (r, ctx) => flagViolations(r, ctx.now),
  },
  {
    kind: "resource",
    name: "feature-flags-expiring-soon",
    description: `Warns about feature flags that expire within warnDays (default ${DEFAULT_FLAG_WARN_DAYS}).`,
    enforcementLevel: "advisory",
    configSchema: {
      properties: {
        warnDays: {
          type: "integer",
          minimum: 0,
          default: DEFAULT_FLAG_WARN_DAYS,
          description: "Warn this many days before a flag expires.",
        },
      },
    },
    appliesTo: oneOf(FLAG_TYPES),
    check: (r, ctx) =>
      expiringFlagWarnings(
        r,
        ctx.now,
        Number.isInteger(ctx.config.warnDays)
          ? (ctx.config.warnDays as number)
          : DEFAULT_FLAG_WARN_DAYS,
      ),
  },
];

export interface Finding extends Violation {
  policy: string;
  enforcementLevel: EnforcementLevel;
  resource?: string;
}

/**
 * Runs every policy over a set of resources the way the engine would (each
 * resource policy on each resource of its types, each stack policy once).
 */
export function evaluate(
  resources: PolicyResource[],
  ctx: { now: Date; config?: Record<string, Record<string, unknown>> },
  policies: readonly PolicySpec[] = POLICIES,
): Finding[] {
  const findings: Finding[] = [];
  for (const p of policies) {
    const pctx = { now: ctx.now, config: ctx.config?.[p.name] ?? {} };
    if (p.kind === "stack") {
      for (const v of p.check(resources, pctx))
        findings.push({ ...v, policy: p.name, enforcementLevel: p.enforcementLevel });
      continue;
    }
    for (const r of resources) {
      if (!p.appliesTo(r.type)) continue;
      for (const v of p.check(r, pctx)) {
        findings.push({
          ...v,
          policy: p.name,
          enforcementLevel: p.enforcementLevel,
          resource: r.name,
        });
      }
    }
  }
  return findings;
}
