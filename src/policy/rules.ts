import { flagHealth } from "../config/flags";
import { parseImageRef, ImageRefError } from "../governance/artifact";
import { UNSCOPABLE_ACTIONS } from "../iam/policies";
import { isSlot, SLOT_LABEL, SLOT_TAG, SLOTS } from "../domain";

/**
 * The rules of Slipway's policy pack, as pure functions over a resource's type
 * token and its properties (what the engine hands a policy: inputs during a
 * preview, outputs at the end of an update). No Pulumi, no I/O, no clock: the
 * pack in policy/ is a thin adapter, and tests call these directly.
 *
 * Every message names the resource or item at fault, the value found and what
 * is allowed, so the preview output alone says how to fix it.
 */

export interface PolicyResource {
  /** Type token, e.g. `aws:iam/rolePolicy:RolePolicy`, `kubernetes:apps/v1:Deployment`. */
  type: string;
  /** Logical name. */
  name: string;
  urn?: string;
  props: Record<string, any>;
}

export interface Violation {
  message: string;
  /** For stack-level rules: the resource the violation belongs to. */
  urn?: string;
}

export const TYPES = {
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  policy: "aws:iam/policy:Policy",
  role: "aws:iam/role:Role",
  userPolicy: "aws:iam/userPolicy:UserPolicy",
  groupPolicy: "aws:iam/groupPolicy:GroupPolicy",
  taskDefinition: "aws:ecs/taskDefinition:TaskDefinition",
  ecsService: "aws:ecs/service:Service",
  targetGroup: "aws:lb/targetGroup:TargetGroup",
  listenerRules: ["aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule"],
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  securityGroupRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  vpcIngressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  ecrRepository: "aws:ecr/repository:Repository",
  appConfigVersion: "aws:appconfig/hostedConfigurationVersion:HostedConfigurationVersion",
  deployment: "kubernetes:apps/v1:Deployment",
  service: "kubernetes:core/v1:Service",
  configMap: "kubernetes:core/v1:ConfigMap",
} as const;

export const IAM_TYPES = [
  TYPES.rolePolicy,
  TYPES.policy,
  TYPES.role,
  TYPES.userPolicy,
  TYPES.groupPolicy,
] as const;

/** Pod templates live at different paths in each workload kind. */
const POD_SPEC_PATHS: Record<string, string[]> = {
  "kubernetes:core/v1:Pod": ["spec"],
  "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
  "kubernetes:batch/v1:Job": ["spec", "template", "spec"],
  "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};
export const WORKLOAD_TYPES = Object.keys(POD_SPEC_PATHS);
export const IMAGE_TYPES = [...WORKLOAD_TYPES, TYPES.taskDefinition];

export const isHttpRoute = (type: string) =>
  type.startsWith("kubernetes:gateway.networking.k8s.io/") && type.endsWith(":HTTPRoute");
export const isListenerRule = (type: string) =>
  (TYPES.listenerRules as readonly string[]).includes(type);
export const isRoutingType = (type: string) => isHttpRoute(type) || isListenerRule(type);

export const INGRESS_TYPES = [
  TYPES.securityGroup,
  TYPES.securityGroupRule,
  TYPES.vpcIngressRule,
] as const;
export const FLAG_TYPES = [TYPES.configMap, TYPES.appConfigVersion] as const;

export const FLAGD_DATA_KEY = "flags.flagd.json";

const isObject = (v: unknown): v is Record<string, any> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const asArray = <T>(v: T | T[] | undefined | null): T[] =>
  v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
const show = (v: unknown) => JSON.stringify(v);

/** A JSON document given as a string (the usual form) or already as an object. */
function parseJson(value: unknown): { ok: true; value: any } | { ok: false; error: string } {
  if (typeof value !== "string") return { ok: true, value };
  try {
    return { ok: true, value: JSON.parse(value) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function at(obj: unknown, path: string[]): unknown {
  let cur: any = obj;
  for (const key of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

// ---------------------------------------------------------------------------
// IAM: no wildcard actions; `*` resources only for actions AWS cannot scope.
// ---------------------------------------------------------------------------

interface Statement {
  Sid?: string;
  Effect?: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
}

/** `*`, or an ARN whose resource part is `*` (e.g. `arn:aws:s3:::*`): it names everything of a kind. */
export function isUnscopedResource(resource: string): boolean {
  if (resource === "*") return true;
  const parts = resource.split(":");
  return (
    parts[0] === "arn" &&
    parts.length >= 6 &&
    (parts.slice(5).join(":") === "*" || parts[2] === "*")
  );
}

export const hasWildcard = (action: string) => action.includes("*") || action.includes("?");

function policyDocuments(r: PolicyResource): { where: string; document: unknown }[] {
  if (r.type === TYPES.role) {
    return asArray(r.props.inlinePolicies as any[]).map((p, i) => ({
      where: `inline policy ${p?.name ? show(p.name) : `#${i}`}`,
      document: p?.policy,
    }));
  }
  return [{ where: "policy", document: r.props.policy }];
}

/**
 * IAM documents of a role policy, managed policy, user/group policy or a role's
 * inline policies. Deny statements may be broad (they only take away).
 */
export function iamViolations(
  r: PolicyResource,
  unscopable: readonly string[] = UNSCOPABLE_ACTIONS,
): Violation[] {
  if (!(IAM_TYPES as readonly string[]).includes(r.type)) return [];
  const out: Violation[] = [];
  for (const { where, document } of policyDocuments(r)) {
    if (document === undefined || document === null || document === "") continue;
    const parsed = parseJson(document);
    if (!parsed.ok) {
      out.push({
        message: `${where} is not valid JSON (${parsed.error}); allowed: an IAM policy document`,
      });
      continue;
    }
    const statements = asArray<Statement>(parsed.value?.Statement);
    statements.forEach((s, i) => {
      if (!isObject(s) || s.Effect === "Deny") return;
      const label = `${where} statement ${s.Sid ? show(s.Sid) : `#${i}`}`;
      const actions = asArray(s.Action);
      if (s.NotAction !== undefined) {
        out.push({
          message: `${label} allows NotAction ${show(s.NotAction)}, which grants every other action; allowed: an Action list of exact actions`,
        });
      }
      const wild = actions.filter(hasWildcard);
      if (wild.length > 0) {
        out.push({
          message: `${label} allows wildcard action${wild.length > 1 ? "s" : ""} ${wild.map(show).join(", ")}; allowed: exact actions (service:Action), no * or ?`,
        });
      }
      if (s.NotResource !== undefined) {
        out.push({
          message: `${label} uses NotResource ${show(s.NotResource)}, which grants every other resource; allowed: a Resource list of ARNs`,
        });
      }
      const unscoped = asArray(s.Resource).filter(
        (res) => typeof res === "string" && isUnscopedResource(res),
      );
      if (unscoped.length > 0) {
        const scopable = actions.filter((a) => !hasWildcard(a) && !unscopable.includes(a));
        if (scopable.length > 0) {
          out.push({
            message:
              `${label} grants Resource ${unscoped.map(show).join(", ")} to ${scopable.join(", ")}, which AWS can scope to resource ARNs; ` +
              `allowed: name the ARNs (only actions without resource-level permissions may use "*": ${unscopable.join(", ")})`,
          });
        }
      }
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Images pinned by digest.
// ---------------------------------------------------------------------------

function imageProblem(image: unknown): string | undefined {
  try {
    parseImageRef(image, "image");
    return undefined;
  } catch (err) {
    if (err instanceof ImageRefError) return err.problem;
    throw err;
  }
}

/** Every container and init container of a Kubernetes workload, every container of an ECS task definition. */
export function imageViolations(r: PolicyResource): Violation[] {
  const out: Violation[] = [];
  const check = (where: string, image: unknown) => {
    const problem = imageProblem(image);
    if (problem)
      out.push({
        message: `${where} image ${image === undefined ? "(none)" : show(image)} ${problem}`,
      });
  };
  const podPath = POD_SPEC_PATHS[r.type];
  if (podPath) {
    const pod = at(r.props, podPath);
    if (!isObject(pod)) return out;
    for (const field of ["initContainers", "containers", "ephemeralContainers"] as const) {
      const kind =
        field === "containers"
          ? "container"
          : field === "initContainers"
            ? "init container"
            : "ephemeral container";
      asArray(pod[field] as any[]).forEach((c, i) =>
        check(`${kind} ${c?.name ? show(c.name) : `#${i}`}`, c?.image),
      );
    }
    return out;
  }
  if (r.type === TYPES.taskDefinition) {
    const parsed = parseJson(r.props.containerDefinitions);
    if (!parsed.ok)
      return [{ message: `containerDefinitions is not valid JSON (${parsed.error})` }];
    asArray(parsed.value as any[]).forEach((c, i) =>
      check(`container ${c?.name ? show(c.name) : `#${i}`}`, c?.image),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------
// Routing: the weighted rule's weights total 100.
// ---------------------------------------------------------------------------

export interface WeightedBackend {
  /** For messages: the Service name (Kubernetes) or `targetGroups[i]` (AWS). */
  label: string;
  /**
   * The Service name or target group ARN. A function: an ARN is unknown during a
   * first preview, and reading an unknown value stops the policy that reads it.
   */
  ref: () => string;
  weight: number | undefined;
}

/**
 * The weighted rule of a routing resource: the LAST HTTPRoute rule (the first
 * may be the tester header rule), or the ALB rule's weighted `forward` action.
 * A forward to a single target group without a weight is a header rule: none.
 */
export function weightedBackends(r: PolicyResource): WeightedBackend[] | undefined {
  if (isHttpRoute(r.type)) {
    const rules = asArray(at(r.props, ["spec", "rules"]) as any[]);
    const last = rules[rules.length - 1];
    if (!isObject(last)) return undefined;
    return asArray(last.backendRefs as any[]).map((b) => ({
      label: String(b?.name),
      ref: () => String(b?.name),
      weight: b?.weight,
    }));
  }
  if (isListenerRule(r.type)) {
    for (const action of asArray(r.props.actions as any[])) {
      if (!isObject(action) || action.type !== "forward") continue;
      const groups = asArray(action.forward?.targetGroups as any[]);
      if (groups.length === 0) continue;
      if (groups.length === 1 && groups[0]?.weight === undefined) continue;
      return groups.map((g, i) => ({
        label: `targetGroups[${i}]`,
        ref: () => String(g?.arn),
        weight: g?.weight,
      }));
    }
  }
  return undefined;
}

export function routingWeightViolations(r: PolicyResource): Violation[] {
  if (!isRoutingType(r.type)) return [];
  const backends = weightedBackends(r);
  const what = isHttpRoute(r.type)
    ? "HTTPRoute weighted rule (the last rule)"
    : "listener rule weighted forward";
  if (!backends || backends.length === 0) {
    return isHttpRoute(r.type)
      ? [
          {
            message: `${what} has no backendRefs; allowed: the blue and green Services with weights totalling 100`,
          },
        ]
      : [];
  }
  const missing = backends.filter((b) => typeof b.weight !== "number");
  if (missing.length > 0) {
    return [
      {
        message: `${what} has backends without a weight (${missing.map((b) => b.label).join(", ")}); allowed: an explicit weight on every backend, totalling 100`,
      },
    ];
  }
  const total = backends.reduce((sum, b) => sum + (b.weight as number), 0);
  if (total !== 100) {
    return [
      {
        message: `${what} weights total ${total} (${backends.map((b) => `${b.label}: ${b.weight}`).join(", ")}); allowed: weights totalling 100`,
      },
    ];
  }
  return [];
}

// ---------------------------------------------------------------------------
// Blue and green slots present; the stable slot fully scaled.
// ---------------------------------------------------------------------------

interface SlotWorkload {
  slot: string;
  group: string;
  replicas: number;
  resource: PolicyResource;
  /**
   * How routes refer to this slot: Kubernetes Service names or target group ARNs.
   * A function, so that only the rule that needs them reads them: an ARN is
   * unknown during the first preview, and reading an unknown value stops a policy.
   */
  refs: () => string[];
  kind: "Deployment" | "ECS service";
}

function slotWorkloads(resources: PolicyResource[]): SlotWorkload[] {
  const services = resources.filter((r) => r.type === TYPES.service);
  const targetGroups = resources.filter((r) => r.type === TYPES.targetGroup);
  const out: SlotWorkload[] = [];
  for (const r of resources) {
    if (r.type === TYPES.deployment) {
      const labels = at(r.props, ["metadata", "labels"]) as Record<string, string> | undefined;
      const slot = labels?.[SLOT_LABEL];
      if (slot === undefined) continue;
      const group = labels?.["app.kubernetes.io/name"] ?? "";
      // Kubernetes defaults replicas to 1.
      const replicas = typeof r.props.spec?.replicas === "number" ? r.props.spec.replicas : 1;
      const refs = () => {
        const podLabels = (at(r.props, ["spec", "template", "metadata", "labels"]) ?? {}) as Record<
          string,
          string
        >;
        return services
          .filter((s) => {
            const selector = at(s.props, ["spec", "selector"]) as
              Record<string, string> | undefined;
            return (
              isObject(selector) &&
              Object.keys(selector).length > 0 &&
              Object.entries(selector).every(([k, v]) => podLabels[k] === v)
            );
          })
          .map((s) => at(s.props, ["metadata", "name"]))
          .filter((n): n is string => typeof n === "string");
      };
      out.push({ slot, group, replicas, resource: r, refs, kind: "Deployment" });
    } else if (r.type === TYPES.ecsService) {
      const tags = (r.props.tags ?? {}) as Record<string, string>;
      const slot = tags[SLOT_TAG];
      if (slot === undefined) continue;
      const group = tags["slipway:service"] ?? "";
      const replicas = typeof r.props.desiredCount === "number" ? r.props.desiredCount : 0;
      const refs = () => {
        const arns = asArray(r.props.loadBalancers as any[])
          .map((lb) => lb?.targetGroupArn)
          .filter((a): a is string => typeof a === "string");
        // A target group tagged with the same slot and service also names this slot.
        for (const tg of targetGroups) {
          const t = (tg.props.tags ?? {}) as Record<string, string>;
          if (
            t[SLOT_TAG] === slot &&
            (t["slipway:service"] ?? "") === group &&
            typeof tg.props.arn === "string"
          )
            arns.push(tg.props.arn);
        }
        return arns;
      };
      out.push({ slot, group, replicas, resource: r, refs, kind: "ECS service" });
    }
  }
  return out;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const item of items) m.set(key(item), [...(m.get(key(item)) ?? []), item]);
  return m;
}

const groupLabel = (group: string) => (group ? `service ${show(group)}` : "the stack");

/**
 * Exactly one blue and one green workload per service: Deployments labelled
 * `slipway.dev/slot`, or ECS services tagged `slipway:slot`.
 */
export function slotPresenceViolations(resources: PolicyResource[]): Violation[] {
  const workloads = slotWorkloads(resources);
  if (workloads.length === 0) {
    return [
      {
        message: `no slots found: expected a blue and a green Deployment (label ${SLOT_LABEL}) or ECS service (tag ${SLOT_TAG})`,
      },
    ];
  }
  const out: Violation[] = [];
  for (const [key, items] of groupBy(workloads, (w) => `${w.kind}\u0000${w.group}`)) {
    const [kind, group] = key.split("\u0000") as [string, string];
    const counts = groupBy(items, (w) => w.slot);
    const found = [...counts].map(([slot, ws]) => `${slot} ×${ws.length}`).join(", ");
    const ok = counts.size === 2 && SLOTS.every((s) => counts.get(s)?.length === 1);
    if (!ok) {
      out.push({
        message: `${groupLabel(group)}: expected exactly one blue and one green ${kind}; found ${found}`,
        urn: items[0]!.resource.urn,
      });
    }
  }
  return out;
}

/**
 * The stack config is not visible to policies, so "stable" is derived from
 * what is deployed: the slot with the larger weight in the weighted rule. It
 * must run more than 0 replicas and at least as many as the other slot. On a
 * tie either slot may be the stable one, so one of them must satisfy that.
 */
export function stableSlotViolations(resources: PolicyResource[]): Violation[] {
  const workloads = slotWorkloads(resources);
  const out: Violation[] = [];
  for (const route of resources.filter((r) => isRoutingType(r.type))) {
    const backends = weightedBackends(route);
    if (!backends || backends.some((b) => typeof b.weight !== "number")) continue;
    const bySlot = new Map<string, { weight: number; workload: SlotWorkload }>();
    for (const b of backends) {
      const ref = b.ref();
      const w = workloads.find((x) => x.refs().includes(ref));
      if (!w || !isSlot(w.slot)) continue;
      const prev = bySlot.get(w.slot);
      bySlot.set(w.slot, { weight: (prev?.weight ?? 0) + (b.weight as number), workload: w });
    }
    const blue = bySlot.get("blue");
    const green = bySlot.get("green");
    // A route whose backends are not both slots is not a blue-green route (the presence rule reports missing slots).
    if (!blue || !green) continue;
    const top = Math.max(blue.weight, green.weight);
    const stableCandidates = [blue, green].filter((s) => s.weight === top);
    const satisfied = stableCandidates.some((s) => {
      const other = s === blue ? green : blue;
      return s.workload.replicas > 0 && s.workload.replicas >= other.workload.replicas;
    });
    if (satisfied) continue;
    const stable = stableCandidates[0]!;
    const other = stable === blue ? green : blue;
    const tie = stableCandidates.length > 1;
    out.push({
      message: tie
        ? `neither slot can serve as stable: both have weight ${top} and run ${blue.workload.replicas} (blue) and ${green.workload.replicas} (green) replicas; allowed: at least one slot with more than 0 replicas`
        : `stable slot ${stable.workload.slot} (weight ${stable.weight}, the larger) runs ${stable.workload.replicas} replica(s)` +
          ` while ${other.workload.slot} (weight ${other.weight}) runs ${other.workload.replicas}; allowed: the stable slot at full size,` +
          ` more than 0 replicas and at least as many as the other slot, so a rollback never waits for capacity`,
      urn: stable.workload.resource.urn,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------
// No ingress from the internet except the load balancer's listener ports.
// ---------------------------------------------------------------------------

export const DEFAULT_LISTENER_PORTS = [80, 443];
const WORLD = new Set(["0.0.0.0/0", "::/0"]);

interface IngressRule {
  where: string;
  protocol: unknown;
  fromPort: unknown;
  toPort: unknown;
  sources: unknown[];
}

function ingressRules(r: PolicyResource): IngressRule[] {
  const p = r.props;
  if (r.type === TYPES.securityGroup) {
    return asArray(p.ingress as any[]).map((rule, i) => ({
      where: `ingress rule #${i}${rule?.description ? ` (${show(rule.description)})` : ""}`,
      protocol: rule?.protocol,
      fromPort: rule?.fromPort,
      toPort: rule?.toPort,
      sources: [...asArray(rule?.cidrBlocks), ...asArray(rule?.ipv6CidrBlocks)],
    }));
  }
  if (r.type === TYPES.securityGroupRule) {
    if (p.type !== "ingress") return [];
    return [
      {
        where: "ingress rule",
        protocol: p.protocol,
        fromPort: p.fromPort,
        toPort: p.toPort,
        sources: [...asArray(p.cidrBlocks), ...asArray(p.ipv6CidrBlocks)],
      },
    ];
  }
  if (r.type === TYPES.vpcIngressRule) {
    return [
      {
        where: "ingress rule",
        protocol: p.ipProtocol,
        fromPort: p.fromPort,
        toPort: p.toPort,
        sources: [p.cidrIpv4, p.cidrIpv6],
      },
    ];
  }
  return [];
}

const ALL_PROTOCOLS = new Set(["-1", "all", -1]);
const TCP = new Set(["tcp", "6", 6]);

export function publicIngressViolations(
  r: PolicyResource,
  allowedPorts: readonly number[] = DEFAULT_LISTENER_PORTS,
): Violation[] {
  const out: Violation[] = [];
  const allowed = `allowed from the internet: tcp ${allowedPorts.join(", ")} (the load balancer's listener ports); anything else from a security group or a private range`;
  for (const rule of ingressRules(r)) {
    const world = rule.sources.filter((s): s is string => typeof s === "string" && WORLD.has(s));
    if (world.length === 0) continue;
    const proto = typeof rule.protocol === "string" ? rule.protocol.toLowerCase() : rule.protocol;
    const from = Number(rule.fromPort);
    const to = Number(rule.toPort);
    let problem: string | undefined;
    if (ALL_PROTOCOLS.has(proto as any)) {
      problem = "all protocols and ports";
    } else if (!TCP.has(proto as any)) {
      problem = `protocol ${show(rule.protocol)}`;
    } else if (!Number.isInteger(from) || !Number.isInteger(to) || from > to) {
      problem = `tcp ports ${show(rule.fromPort)}-${show(rule.toPort)}`;
    } else {
      const open: number[] = [];
      for (let port = from; port <= to && open.length <= 3; port++)
        if (!allowedPorts.includes(port)) open.push(port);
      if (open.length > 0) problem = from === to ? `tcp port ${from}` : `tcp ports ${from}-${to}`;
    }
    if (problem)
      out.push({ message: `${rule.where} opens ${problem} to ${world.join(" and ")}; ${allowed}` });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Container repositories with immutable tags.
// ---------------------------------------------------------------------------

export function ecrTagViolations(r: PolicyResource): Violation[] {
  if (r.type !== TYPES.ecrRepository) return [];
  const value = r.props.imageTagMutability ?? "MUTABLE";
  if (value === "IMMUTABLE") return [];
  return [
    {
      message: `ECR repository ${show(r.props.name ?? r.name)} has imageTagMutability ${show(value)}${r.props.imageTagMutability === undefined ? " (the default)" : ""}, so a tag can be moved to other bytes; allowed: "IMMUTABLE"`,
    },
  ];
}

// ---------------------------------------------------------------------------
// Feature flags: owned, dated, not expired.
// ---------------------------------------------------------------------------

export interface FlagFacts {
  name: string;
  owner: unknown;
  expires: unknown;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const validDate = (v: unknown): v is string =>
  typeof v === "string" &&
  DATE.test(v) &&
  !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) &&
  new Date(`${v}T00:00:00Z`).toISOString().startsWith(v);

/**
 * The flags a resource carries, with their owner and expiry: the flagd
 * ConfigMap (`metadata.owner` / `metadata.expires` per flag), or the AppConfig
 * feature-flag document (`values.<flag>.owner` attribute, `_deprecation.date`).
 * Undefined when the resource holds no flag document.
 */
export function flagsOf(r: PolicyResource): { flags: FlagFacts[] } | { error: string } | undefined {
  if (r.type === TYPES.configMap) {
    const data = r.props.data;
    if (!isObject(data) || data[FLAGD_DATA_KEY] === undefined) return undefined;
    const parsed = parseJson(data[FLAGD_DATA_KEY]);
    if (!parsed.ok)
      return { error: `data[${show(FLAGD_DATA_KEY)}] is not valid JSON (${parsed.error})` };
    const flags = isObject(parsed.value?.flags) ? parsed.value.flags : {};
    return {
      flags: Object.entries(flags).map(([name, f]: [string, any]) => ({
        name,
        owner: f?.metadata?.owner,
        expires: f?.metadata?.expires,
      })),
    };
  }
  if (r.type === TYPES.appConfigVersion) {
    const parsed = parseJson(r.props.content);
    if (!parsed.ok) return undefined;
    const doc = parsed.value;
    if (!isObject(doc) || !isObject(doc.flags)) return undefined;
    return {
      flags: Object.entries(doc.flags).map(([name, f]: [string, any]) => ({
        name,
        owner: doc.values?.[name]?.owner,
        expires: f?._deprecation?.date,
      })),
    };
  }
  return undefined;
}

/** Mandatory: every flag has an owner and a valid expiry date, and has not expired. */
export function flagViolations(r: PolicyResource, now: Date): Violation[] {
  const found = flagsOf(r);
  if (!found) return [];
  if ("error" in found) return [{ message: found.error }];
  const out: Violation[] = [];
  for (const f of found.flags) {
    if (typeof f.owner !== "string" || f.owner.trim() === "") {
      out.push({
        message: `flag ${show(f.name)} has no owner; allowed: the owning team or person (slipway:flags.${f.name}.owner)`,
      });
    }
    if (!validDate(f.expires)) {
      out.push({
        message: `flag ${show(f.name)} has ${f.expires === undefined ? "no expiry date" : `an invalid expiry date ${show(f.expires)}`}; allowed: a date, YYYY-MM-DD (slipway:flags.${f.name}.expires)`,
      });
    } else if (flagHealth({ expires: f.expires }, now) === "expired") {
      out.push({
        message: `flag ${show(f.name)}${typeof f.owner === "string" ? ` (owner ${f.owner})` : ""} expired on ${f.expires}: remove it from slipway:flags and from the code that reads it`,
      });
    }
  }
  return out;
}

export const DEFAULT_FLAG_WARN_DAYS = 14;

/** Advisory: flags that expire within `warnDays`. */
export function expiringFlagWarnings(
  r: PolicyResource,
  now: Date,
  warnDays = DEFAULT_FLAG_WARN_DAYS,
): Violation[] {
  const found = flagsOf(r);
  if (!found || "error" in found) return [];
  const out: Violation[] = [];
  for (const f of found.flags) {
    if (!validDate(f.expires) || flagHealth({ expires: f.expires }, now, warnDays) !== "expiring")
      continue;
    const days = Math.max(
      0,
      Math.floor((Date.parse(`${f.expires}T23:59:59Z`) - now.getTime()) / 86_400_000),
    );
    out.push({
      message: `flag ${show(f.name)}${typeof f.owner === "string" ? ` (owner ${f.owner})` : ""} expires on ${f.expires}, in ${days} day(s): remove it, or extend slipway:flags.${f.name}.expires if it must stay`,
    });
  }
  return out;
}
