import { describe, expect, it } from "vitest";
import { PLATFORMS } from "../../../src/config/schema";
import {
  renderStage,
  stackConfig,
  stageConfigOf,
  variant,
  type Rendered,
} from "../support/harness";

/** The local stage last: it takes its structural switches from the first (see `structureOn`). */
const STAGES = ["staging", "prod", "local"] as const;
type Stage = (typeof STAGES)[number];

/**
 * The keys whose values may differ between any two stack files, each with why. A key covers
 * everything under it (`slots.*.image` covers both slots; `*` is one key of any name). Any
 * other difference fails the parity test: the stages are one program with parameters.
 */
const MAY_DIFFER: Record<string, string> = {
  // Sizes: prod carries more traffic than staging.
  "service.cpu": "size: vCPUs per replica",
  "service.memoryMiB": "size: memory per replica",
  "service.replicas": "size: replicas per slot",
  // Thresholds: how strict and how patient a stage is.
  "aws.alarms.errorRatio": "threshold: the 5xx ratio on-call is paged at",
  "canary.scaleDownDelaySeconds": "threshold: how long the old slot stays up for a quick way back",
  "canary.progressDeadlineSeconds": "threshold: how long a release may take",
  "promotion.soakSeconds": "threshold: how long a release soaks upstream before it may come here",
  "promotion.requireApproval": "threshold: whether a person approves a promotion into the stage",
  "kubernetes.prometheusStepSeconds":
    "threshold: the analysis' resolution follows the scrape interval of that stage's Prometheus",
  // Names: what the stage is called in its account or cluster, and where its parts are.
  "slots.*.image": "name: the image in the stage's own registry (same digest, other account)",
  "service.permissions.*.resources": "name: the ARNs of the stage's own tables and queues",
  "flags.*.description": "name: text for people, carried into the flag documents",
  "promotion.from": "name: the stage a release is promoted from (the first stage has none)",
  "aws.vpcId": "name: the stage's VPC",
  "aws.subnetIds": "name: the stage's subnets",
  "aws.clusterArn": "name: the stage's ECS cluster",
  "aws.listenerArn": "name: the stage's ALB listener",
  "aws.loadBalancerArn": "name: the stage's ALB",
  "aws.loadBalancerSecurityGroupId": "name: the stage's ALB security group",
  "aws.ecrRepositoryArn": "name: the stage's image repository",
  "aws.hostHeaders": "name: the stage's host names",
  "kubernetes.namespace": "name: the stage's namespace",
  "kubernetes.hostnames": "name: the stage's host names",
  "kubernetes.gateway": "name: the Gateway of the stage's cluster",
  "kubernetes.prometheusUrl": "name: where the stage's Prometheus answers",
  // Credentials: who may do what in the stage.
  "aws.deployerPrincipalArn": "credential: the pipeline identity of the stage's account",
  "artifacts.publicKey": "credential: the stage's release signing key",
};

/**
 * What only the local stage may do otherwise: it runs on one machine, on the local cluster
 * (`slipway cluster up`), with no cloud account, no signing key and no plugins to download,
 * and its rehearsal runs a release in seconds. Kept apart, so staging and prod are held to
 * MAY_DIFFER alone.
 */
const LOCAL_MAY_DIFFER: Record<string, string> = {
  platform: "the local stage has no cloud: it runs on kubernetes (compared there with the others)",
  aws: "no AWS account on the local stage",
  "service.permissions": "no cloud resources to be permitted on the local stage",
  "canary.preset": "the local plan is its own (seconds, for the rehearsal), not a preset",
  "canary.steps": "the local plan is its own (seconds, for the rehearsal), not a preset",
  "canary.analysis": "the rehearsal's Prometheus judges with the default analysis",
  "artifacts.requireSignature": "no release signing key on a developer's machine",
  "kubernetes.kubeconfig": "credential: the local cluster's own kubeconfig",
  // The two switches that change what is declared: aligned with the others for the comparison
  // of resource types and wiring (STRUCTURAL_SWITCHES), so nothing else may differ there.
  "kubernetes.createNamespace": "the local cluster has no platform team to create the namespace",
  "traffic.headerRoute.secretGenerator":
    "the random provider plugin cannot be installed offline: the tester secret is built in",
};

/** The keys of LOCAL_MAY_DIFFER that add or swap resources; see `structureOn`. */
const STRUCTURAL_SWITCHES = ["kubernetes.createNamespace", "traffic.headerRoute.secretGenerator"];

type Raw = Record<string, unknown>;

/** Every leaf of a config map by its dotted path (array items by index). */
function leaves(value: unknown, path: string[] = [], into = new Map<string, unknown>()) {
  if (value !== null && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) leaves(v, [...path, key], into);
  } else into.set(path.join("."), value);
  return into;
}

/** The dotted paths at which two config maps differ (a key one of them lacks included). */
function configDiff(a: Raw, b: Raw): string[] {
  const la = leaves(a);
  const lb = leaves(b);
  const paths = new Set([...la.keys(), ...lb.keys()]);
  return [...paths].filter((p) => la.get(p) !== lb.get(p)).sort();
}

/** Whether `allowed` (a key, `*` matching any one key) covers `path` or a key above it. */
function covers(allowed: string, path: string): boolean {
  const want = allowed.split(".");
  const have = path.split(".");
  return want.length <= have.length && want.every((w, i) => w === "*" || w === have[i]);
}

function outsideAllowed(a: Stage, b: Stage): string[] {
  const allowed = Object.keys({
    ...MAY_DIFFER,
    ...(a === "local" || b === "local" ? LOCAL_MAY_DIFFER : {}),
  });
  return configDiff(stackConfig(a), stackConfig(b)).filter(
    (path) => !allowed.some((key) => covers(key, path)),
  );
}

function setPath(raw: any, path: string, value: unknown): void {
  const keys = path.split(".");
  let at = raw;
  for (const key of keys.slice(0, -1)) at = at[key] ??= {};
  if (value === undefined) delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = value;
}

function getPath(raw: any, path: string): unknown {
  return path.split(".").reduce((at, key) => at?.[key], raw);
}

/** The stage files that carry a platform's block (or run on it): those that can run on it. */
const coveringStages = (platform: string) =>
  STAGES.filter((s) => {
    const raw = stackConfig(s);
    return raw.platform === platform || raw[platform] !== undefined;
  });

/**
 * A stage file rendered on `platform`. The local stage takes the structural switches of
 * `reference` (the others must agree with it as they are).
 */
function structureOn(stage: Stage, platform: string, reference: Stage): Promise<Rendered> {
  return renderStage(
    variant(stage, (raw) => {
      raw.platform = platform;
      if (stage === "local")
        for (const key of STRUCTURAL_SWITCHES)
          setPath(raw, key, getPath(stackConfig(reference), key));
    }),
  );
}

/** A resource by its role: its type and logical name, with the service's name taken out. */
const roleOf = (ref: string, service: string) => ref.replaceAll(service, "<service>");

/** The set of resource types a stage declares. */
function typeSet(r: Rendered): string[] {
  return [...new Set(r.resources.map((x) => x.type))].sort();
}

/** Parent and dependency edges between resources, by role. */
function roleWiring(r: Rendered, service: string): string[] {
  return r.resources
    .flatMap((x) => {
      const self = roleOf(`${x.type}::${x.name}`, service);
      return [
        `${self} <parent- ${x.parent ? roleOf(x.parent, service) : "(root)"}`,
        ...x.dependsOn.map((d) => `${self} <- ${roleOf(d, service)}`),
      ];
    })
    .sort();
}

/** Resource types with their counts, e.g. "aws:ecs/service:Service x2". */
function typeMultiset(r: Rendered): string[] {
  const counts = new Map<string, number>();
  for (const x of r.resources) counts.set(x.type, (counts.get(x.type) ?? 0) + 1);
  return [...counts].map(([t, n]) => `${t} x${n}`).sort();
}

/** Parent and data-flow edges between resources, by type and logical name. */
function wiring(r: Rendered): string[] {
  return r.resources
    .flatMap((x) => [
      `${x.type}::${x.name} <parent- ${x.parent ?? "(root)"}`,
      ...x.dependsOn.map((d) => `${x.type}::${x.name} <- ${d}`),
    ])
    .sort();
}

describe("stage parity", () => {
  it("staging and prod declare the same resource types, as often, wired the same way", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const prod = await renderStage(stageConfigOf("prod"));
    expect(staging.resources.length).toBeGreaterThan(20);
    expect(typeMultiset(prod)).toEqual(typeMultiset(staging));
    expect(wiring(prod)).toEqual(wiring(staging));
    // The wiring is not trivially empty: the weighted rule takes both target groups.
    expect(wiring(staging)).toContain(
      "aws:lb/listenerRule:ListenerRule::checkout-aws-route-weighted <- aws:lb/targetGroup:TargetGroup::checkout-aws-route-green-tg",
    );
  });

  it("the same stack files switched to kubernetes are also identical in types and wiring", async () => {
    const toK8s = (raw: any) => {
      raw.platform = "kubernetes";
    };
    const staging = await renderStage(variant("staging", toK8s));
    const prod = await renderStage(variant("prod", toK8s));
    expect(staging.ofType("kubernetes:apps/v1:Deployment")).toHaveLength(2);
    expect(typeMultiset(prod)).toEqual(typeMultiset(staging));
    expect(wiring(prod)).toEqual(wiring(staging));
  });

  for (const platform of PLATFORMS) {
    it(`on ${platform}, every stage file that can run there declares the same resource types, as often, wired the same way`, async () => {
      const stages = coveringStages(platform);
      // staging and prod carry both platforms' blocks; the local stage only kubernetes'.
      expect(stages.length).toBeGreaterThanOrEqual(2);
      const [reference, ...others] = stages as [Stage, ...Stage[]];
      const expected = await structureOn(reference, platform, reference);
      const service = stageConfigOf(reference).service.name;
      expect(expected.resources.length).toBeGreaterThan(15);
      for (const stage of others) {
        const actual = await structureOn(stage, platform, reference);
        const ownService = stageConfigOf(stage).service.name;
        expect(typeSet(actual), `${stage} vs ${reference}`).toEqual(typeSet(expected));
        expect(typeMultiset(actual), `${stage} vs ${reference}`).toEqual(typeMultiset(expected));
        expect(roleWiring(actual, ownService), `${stage} vs ${reference}`).toEqual(
          roleWiring(expected, service),
        );
      }
    });
  }

  it("stages differ only in parameters: sizes, thresholds, names, credentials", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const prod = await renderStage(stageConfigOf("prod"));
    const stagingTask = staging.byName("checkout-aws-blue-task").inputs;
    const prodTask = prod.byName("checkout-aws-blue-task").inputs;
    expect(stagingTask.cpu).toBe("512");
    expect(prodTask.cpu).toBe("1024");
    expect(prod.byName("checkout-aws-blue-service").inputs.desiredCount).toBe(4);
    expect(staging.byName("checkout-aws-blue-service").inputs.desiredCount).toBe(2);

    // Every difference between two stack files is a key the lists above allow, and says why.
    for (const [a, b] of [
      ["staging", "prod"],
      ["local", "staging"],
      ["local", "prod"],
    ] as const) {
      expect(outsideAllowed(a, b), `Pulumi.${a}.yaml vs Pulumi.${b}.yaml`).toEqual([]);
    }
    // The diff sees the differences the lists allow (it is not blind to them).
    expect(configDiff(stackConfig("staging"), stackConfig("prod"))).toContain("service.cpu");
    expect(configDiff(stackConfig("local"), stackConfig("staging"))).toContain("platform");
  });

  it("the lists of keys that may differ name only keys that do differ", () => {
    const pairs = [
      ["staging", "prod"],
      ["local", "staging"],
      ["local", "prod"],
    ] as const;
    const differing = pairs.flatMap(([a, b]) => configDiff(stackConfig(a), stackConfig(b)));
    for (const key of [...Object.keys(MAY_DIFFER), ...Object.keys(LOCAL_MAY_DIFFER)])
      expect(
        differing.some((path) => covers(key, path)),
        `${key} is allowed to differ but does not`,
      ).toBe(true);
  });

  it("the local stage renders a complete Kubernetes stage", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const types = typeMultiset(local);
    for (const expected of [
      "kubernetes:apps/v1:Deployment x2",
      "kubernetes:core/v1:Service x2",
      "kubernetes:core/v1:ServiceAccount x2",
      "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute x1",
      "kubernetes:rbac.authorization.k8s.io/v1:Role x1",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding x1",
      "kubernetes:networking.k8s.io/v1:NetworkPolicy x2",
      "kubernetes:policy/v1:PodDisruptionBudget x2",
      "kubernetes:core/v1:ConfigMap x1",
      "kubernetes:core/v1:Namespace x1",
    ]) {
      expect(types).toContain(expected);
    }
  });
});
