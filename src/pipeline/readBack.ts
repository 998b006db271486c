import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parse } from "yaml";
import { AWS_TAGS, routeName, slotResourceName } from "../../components/naming";
import { LoadBalancerWeights, type DeclaredRouting } from "../aws/loadBalancerWeights";
import type { StageConfig } from "../config/schema";
import { SLOTS, type Slot } from "../domain";
import type { StageOutputs } from "../contract/outputs";
import { KubeApiError, KubeClient, kubePaths, parseKubeconfig } from "../kube/client";
import type { Weights } from "../traffic/weights";
import { RouteDriftedError, RoutingNotFoundError } from "./errors";
import { findRoutingResource } from "./routingResource";
import { SECRET_SIG, type StageStack, type StateResource } from "./stack";

/**
 * Read-back of the weights in force: what the routing resource the stack says
 * it created (`outputs.routing.id`) actually carries, so that a step is only
 * done when the route says so. An implementation locates the route by that id
 * and throws RoutingNotFoundError when it cannot find it or a slot's share in
 * it; it never returns undefined weights.
 */
export interface WeightsReadBack {
  read(outputs: StageOutputs): Promise<Weights>;
}

/**
 * The one place that picks the read-back for a stage (tests and other platforms inject theirs).
 * AWS: the listener rule itself, from the load balancer (`aws` when the release prepared it,
 * sharing its clients); it needs no engine, so it works with any stack updater, and with the
 * engine's stack the live rule is compared with the declared one whole.
 */
export function weightsReadBackFor(
  config: StageConfig,
  stack: StageStack | undefined,
  aws?: { readWeights(outputs: StageOutputs, declared?: DeclaredRouting): Promise<Weights> },
): WeightsReadBack {
  if (config.platform === "aws") {
    const declared: DeclaredRouting | undefined = stack
      ? (routing) => stack.declaredRouting(routing)
      : undefined;
    return aws
      ? { read: (outputs) => aws.readWeights(outputs, declared) }
      : LoadBalancerWeights.forRegion(config.aws!.region, undefined, declared);
  }
  if (!stack)
    throw new Error(
      `stage ${config.stage}: a stack updater other than the engine needs a weights read-back passed with it`,
    );
  if (config.platform === "kubernetes" && config.kubernetes.renderYamlToDirectory)
    return new RenderedRouteReadBack(
      resolve(stack.options.projectDir, config.kubernetes.renderYamlToDirectory),
    );
  if (config.platform === "kubernetes" && config.kubernetes.kubeconfig)
    return KubernetesApiReadBack.forStage(config, stack.options.projectDir, (routing) =>
      stack.declaredRouting(routing),
    );
  return new RefreshedStateReadBack(stack);
}

/**
 * Whether the stage's routing resource can be read back by the engine (`pulumi refresh`): on a
 * cluster or a cloud, yes; in render mode there is nothing to read (the provider would fail).
 */
export function routeRefreshable(config: StageConfig): boolean {
  return !(config.platform === "kubernetes" && config.kubernetes.renderYamlToDirectory);
}

/**
 * A Kubernetes stage's slot workload, `namespace/name` of its Deployment (in the route's
 * namespace, named as the route's backends are), for a rollback to re-apply; undefined elsewhere.
 */
export function slotWorkloadOf(
  config: StageConfig,
  outputs: StageOutputs,
): ((slot: Slot) => string) | undefined {
  if (config.platform !== "kubernetes" || !routeRefreshable(config)) return undefined;
  if (outputs.routing.kind !== "HTTPRoute") return undefined;
  const { namespace } = httpRouteRef(outputs);
  return (slot) => `${namespace}/${slotResourceName(outputs.service.name, slot)}`;
}

/** The stage's kubeconfig: a path (relative ones are relative to the project) or a kubeconfig's text. */
export function stageKubeconfig(config: StageConfig, projectDir: string): string | undefined {
  if (config.platform !== "kubernetes" || !config.kubernetes.kubeconfig) return undefined;
  const file = config.kubernetes.kubeconfig;
  return file.includes("\n") || isAbsolute(file) ? file : resolve(projectDir, file);
}

/**
 * A stage that applies to a cluster: a GET of the HTTPRoute from the API server
 * the stage's kubeconfig (and context) names. It reads the object as it is in
 * the cluster now, so a change someone made through the API (kubectl edit,
 * another tool) is seen as drift; no engine run is needed.
 */
export class KubernetesApiReadBack implements WeightsReadBack {
  private client: KubeClient | undefined;

  /** `client` or a function making it on first use (the kubeconfig may appear after the stage is opened). */
  constructor(
    client: KubeClient | (() => KubeClient),
    readonly service: string,
    /** The route as the stack last applied it: when given, the live one is compared with it whole. */
    private readonly declared?: (
      routing: StageOutputs["routing"],
    ) => Promise<Record<string, any> | undefined>,
  ) {
    if (client instanceof KubeClient) this.client = client;
    else this.makeClient = client;
  }

  private makeClient: (() => KubeClient) | undefined;

  static forStage(
    config: StageConfig,
    projectDir: string,
    declared?: KubernetesApiReadBack["declared"],
  ): KubernetesApiReadBack {
    const kubeconfig = stageKubeconfig(config, projectDir);
    if (config.platform !== "kubernetes" || !kubeconfig)
      throw new Error(
        `stage ${config.stage}: slipway:kubernetes.kubeconfig is not set, so there is no API server to read the HTTPRoute from`,
      );
    const context = config.kubernetes.context;
    return new KubernetesApiReadBack(
      () =>
        kubeconfig.includes("\n")
          ? new KubeClient(
              parseKubeconfig(kubeconfig, projectDir, context, "slipway:kubernetes.kubeconfig"),
            )
          : KubeClient.fromKubeconfig(kubeconfig, context),
      config.service.name,
      declared,
    );
  }

  /** Where it reads from: the kubeconfig's API server. */
  api(): KubeClient {
    this.client ??= this.makeClient!();
    return this.client;
  }

  async read(outputs: StageOutputs): Promise<Weights> {
    const { namespace, name } = httpRouteRef(outputs);
    const client = this.api();
    let route: any;
    try {
      route = await client.get(kubePaths.httpRoute(namespace, name));
    } catch (err) {
      const missing = err instanceof KubeApiError && err.status === 404;
      throw new RoutingNotFoundError(
        outputs.routing.id,
        missing
          ? `no HTTPRoute ${namespace}/${name} in the cluster at ${client.server} (deleted outside the stack?)`
          : `cannot read it from ${client.server}: ${(err as Error).message}`,
        !(err instanceof KubeApiError),
      );
    }
    const declared = await this.declared?.(outputs.routing);
    // A spec the state keeps secret as a whole cannot be compared: the weights still are.
    const comparable = isPlainSpec(declared?.spec);
    const differences = comparable ? httpRouteDifferences(declared!.spec, route.spec) : [];
    if (differences.length === 0)
      return weightsOfHttpRoute(route.spec, this.service, outputs.routing.id);
    // The weighted rule is where the stack declared it, whatever was appended after it.
    const rules: unknown[] = route.spec?.rules ?? [];
    const at = Math.min(rules.length, declared!.spec.rules?.length ?? rules.length);
    let weights: Weights;
    try {
      weights = weightsOfHttpRoute(
        { ...route.spec, rules: rules.slice(0, at) },
        this.service,
        outputs.routing.id,
      );
    } catch (err) {
      throw new RoutingNotFoundError(
        outputs.routing.id,
        `${(err as RoutingNotFoundError).detail}; the route differs from the stack: ${differences.join("; ")}`,
      );
    }
    throw new RouteDriftedError(outputs.routing.id, weights, differences);
  }
}

/** Render mode: the HTTPRoute manifest the provider wrote is what a cluster would apply. */
export class RenderedRouteReadBack implements WeightsReadBack {
  constructor(readonly dir: string) {}

  async read(outputs: StageOutputs): Promise<Weights> {
    const { namespace, name } = httpRouteRef(outputs);
    const route = renderedManifests(this.dir).find(
      (m) =>
        m?.kind === "HTTPRoute" &&
        m?.metadata?.name === name &&
        m?.metadata?.namespace === namespace,
    );
    if (!route)
      throw new RoutingNotFoundError(outputs.routing.id, `no rendered HTTPRoute in ${this.dir}`);
    return weightsOfHttpRoute(route.spec, outputs.service.name, outputs.routing.id);
  }
}

/**
 * Everywhere else: a refresh of only the routing resource reads it back from
 * the cloud into the state, then the state says what is in force.
 */
export class RefreshedStateReadBack implements WeightsReadBack {
  constructor(readonly stack: StageStack) {}

  async read(outputs: StageOutputs): Promise<Weights> {
    const find = (resources: StateResource[]) => findRoutingResource(resources, outputs.routing);
    const route = find(await this.stack.resources());
    if (!route)
      throw new RoutingNotFoundError(
        outputs.routing.id,
        `no ${outputs.routing.kind} with that id in the state of stack ${this.stack.stage}`,
      );
    const refreshed = find(
      await this.stack.refresh([route.urn], `verify weights of ${this.stack.stage}`),
    );
    if (!refreshed)
      throw new RoutingNotFoundError(
        outputs.routing.id,
        `the refresh of stack ${this.stack.stage} found it deleted`,
      );
    if (outputs.routing.kind === "HTTPRoute")
      return weightsOfHttpRoute(refreshed.outputs?.spec, outputs.service.name, outputs.routing.id);
    return weightsOfListenerRule(
      refreshed.outputs,
      targetGroupSlots(await this.stack.resources()),
      outputs.routing.id,
    );
  }
}

/** Engine type token of the target groups a listener rule's weights name. */
const TARGET_GROUP_TYPE = "aws:lb/targetGroup:TargetGroup";

/** `routing.id` of an HTTPRoute is `namespace/name`. */
export function httpRouteRef(outputs: StageOutputs): { namespace: string; name: string } {
  const [namespace, name, ...rest] = outputs.routing.id.split("/");
  if (outputs.routing.kind !== "HTTPRoute" || !namespace || !name || rest.length > 0)
    throw new RoutingNotFoundError(outputs.routing.id, "not an HTTPRoute id (namespace/name)");
  return { namespace, name };
}

/** The weighted rule is the last one (the tester rule, when present, comes first). */
export function weightsOfHttpRoute(spec: any, service: string, routingId: string): Weights {
  const rule = spec?.rules?.[spec.rules.length - 1];
  const share = (slot: Slot) => {
    const weight = rule?.backendRefs?.find(
      (b: any) => b.name === slotResourceName(service, slot),
    )?.weight;
    if (typeof weight !== "number")
      throw new RoutingNotFoundError(
        routingId,
        `its weighted rule has no backend ${slotResourceName(service, slot)} with a weight`,
      );
    return weight;
  };
  return { blue: share("blue"), green: share("green") };
}

/** Which slot each target group serves, by the slot tag the stack gave it. */
function targetGroupSlots(resources: StateResource[]): Map<string, Slot> {
  const slots = new Map<string, Slot>();
  for (const r of resources) {
    const slot = r.outputs?.tags?.[AWS_TAGS.slot];
    const arn = r.outputs?.arn;
    if (r.type === TARGET_GROUP_TYPE && arn && (SLOTS as readonly string[]).includes(slot))
      slots.set(arn, slot as Slot);
  }
  return slots;
}

function weightsOfListenerRule(
  rule: any,
  slotOfTargetGroup: Map<string, Slot>,
  routingId: string,
): Weights {
  const groups: { arn?: string; weight?: number }[] =
    rule?.actions?.find((a: any) => a?.type === "forward")?.forward?.targetGroups ?? [];
  const weights: Partial<Weights> = {};
  for (const g of groups) {
    const slot = g.arn ? slotOfTargetGroup.get(g.arn) : undefined;
    if (slot && typeof g.weight === "number") weights[slot] = g.weight;
  }
  for (const slot of SLOTS)
    if (weights[slot] === undefined)
      throw new RoutingNotFoundError(
        routingId,
        `its forward action has no weighted target group tagged ${AWS_TAGS.slot}=${slot}`,
      );
  return weights as Weights;
}

/** Every manifest the Kubernetes provider rendered under `dir` (render mode), parsed. */
export function renderedManifests(dir: string): any[] {
  if (!existsSync(dir)) throw new Error(`no rendered manifests in ${dir}`);
  const out: any[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(f)) {
        for (const text of readFileSync(p, "utf8").split(/^---$/m))
          if (text.trim()) out.push(parse(text));
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * The weights of the rendered HTTPRoute of `service`, found by its name: for
 * readers without the stack's outputs (the rehearsal's traffic, the tests).
 */
export function renderedRouteWeights(dir: string, service: string): Weights {
  const route = renderedManifests(dir).find(
    (m) => m?.kind === "HTTPRoute" && m?.metadata?.name === routeName(service),
  );
  if (!route)
    throw new RoutingNotFoundError(
      routeName(service),
      `no rendered HTTPRoute named ${routeName(service)} in ${dir}`,
    );
  return weightsOfHttpRoute(route.spec, service, routeName(service));
}

/**
 * How the live HTTPRoute's spec differs from the declared one (the state's, as the stack last
 * applied it), in words, each naming the rule and field: parentRefs, hostnames, every rule's
 * matches and filters, and every backendRef (an added, missing or changed one). The weights of
 * the declared backends are left out: they are compared with what the release expects, which
 * knows the step. Both sides are normalised with the Gateway API's defaults (backendRef kind
 * Service and weight 1, path match PathPrefix /, parentRef group and kind), and a value the
 * state keeps secret (the tester header's) matches any value.
 */
export function httpRouteDifferences(declared: any, live: any): string[] {
  const want = normaliseRouteSpec(declared);
  const got = normaliseRouteSpec(live);
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => canonical(a, b) === canonical(b, a);
  for (const key of ["parentRefs", "hostnames"] as const)
    if (!same(want[key], got[key]))
      out.push(`${key}: declared ${brief(want[key])}, found ${brief(got[key])}`);
  const other = Object.keys({ ...want.rest, ...got.rest }).sort();
  for (const key of other)
    if (!same(want.rest[key], got.rest[key]))
      out.push(`spec.${key}: declared ${brief(want.rest[key])}, found ${brief(got.rest[key])}`);
  if (want.rules.length !== got.rules.length)
    out.push(`rules: declared ${want.rules.length}, found ${got.rules.length}`);
  const n = Math.max(want.rules.length, got.rules.length);
  for (let i = 0; i < n; i++) {
    const w = want.rules[i];
    const g = got.rules[i];
    const at = `rule ${i + 1}`;
    if (!w) {
      out.push(`${at} is not declared: ${brief(g)}`);
      continue;
    }
    if (!g) {
      out.push(`${at} is missing: declared ${brief(w)}`);
      continue;
    }
    for (const key of Object.keys({ ...w.rest, ...g.rest }).sort())
      if (!same(w.rest[key], g.rest[key]))
        out.push(`${at} ${key}: declared ${brief(w.rest[key])}, found ${brief(g.rest[key])}`);
    const wanted = new Map(w.backendRefs.map((b) => [b.name, b]));
    const found = new Map(g.backendRefs.map((b) => [b.name, b]));
    for (const [name, b] of found) {
      const d = wanted.get(name);
      if (!d) out.push(`${at} has a backendRef ${brief(b)} that is not declared`);
      else {
        const { weight: _dw, ...dRest } = d;
        const { weight: _gw, ...gRest } = b;
        if (!same(dRest, gRest))
          out.push(`${at} backendRef ${name}: declared ${brief(dRest)}, found ${brief(gRest)}`);
      }
    }
    for (const name of wanted.keys())
      if (!found.has(name)) out.push(`${at} is missing its declared backendRef ${name}`);
    if (g.backendRefs.length !== found.size) out.push(`${at} names a backendRef more than once`);
  }
  return out;
}

/** An object spec, not a value the state keeps secret whole. */
function isPlainSpec(spec: unknown): spec is Record<string, unknown> {
  if (!spec || typeof spec !== "object" || Array.isArray(spec) || SECRET_SIG in spec) return false;
  const { rules, parentRefs } = spec as { rules?: unknown; parentRefs?: unknown };
  return Array.isArray(rules) && (parentRefs === undefined || Array.isArray(parentRefs));
}

/** Marks the state gives a secret: the event log's, and the checkpoint's signature key. */
const SECRET = "<secret>";

interface NormalisedRule {
  backendRefs: Record<string, any>[];
  rest: Record<string, unknown>;
}

function normaliseRouteSpec(spec: any): {
  parentRefs: unknown;
  hostnames: unknown;
  rules: NormalisedRule[];
  rest: Record<string, unknown>;
} {
  const { parentRefs, hostnames, rules, ...rest } = unsecret(spec ?? {});
  return {
    parentRefs: (parentRefs ?? []).map((p: any) => ({
      group: "gateway.networking.k8s.io",
      kind: "Gateway",
      ...p,
    })),
    hostnames: hostnames ?? [],
    rules: (rules ?? []).map((r: any) => {
      const { backendRefs, matches, ...other } = r ?? {};
      return {
        backendRefs: (backendRefs ?? []).map((b: any) => ({
          group: "",
          kind: "Service",
          weight: 1,
          ...b,
        })),
        rest: {
          ...other,
          matches: (matches?.length ? matches : [{}]).map((m: any) => ({
            ...m,
            path: m?.path ?? { type: "PathPrefix", value: "/" },
          })),
        },
      };
    }),
    rest,
  };
}

/** A copy with the state's secret values replaced by one marker. */
function unsecret(value: any): any {
  if (value === "[secret]") return SECRET;
  if (Array.isArray(value)) return value.map(unsecret);
  if (value && typeof value === "object") {
    if (SECRET_SIG in value) return SECRET;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unsecret(v)]));
  }
  return value;
}

/**
 * `a` as canonical JSON (keys sorted, empty lists and objects and undefined dropped), where a
 * secret marker in `against` at the same place stands for whatever `a` holds there.
 */
function canonical(a: unknown, against: unknown): string {
  const walk = (x: any, y: any): unknown => {
    if (y === SECRET || x === SECRET) return SECRET;
    if (Array.isArray(x)) return x.map((v, i) => walk(v, Array.isArray(y) ? y[i] : undefined));
    if (x && typeof x === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) {
        const v = walk(x[k], y && typeof y === "object" ? y[k] : undefined);
        const empty =
          v === undefined ||
          (Array.isArray(v) && v.length === 0) ||
          (v !== null && typeof v === "object" && Object.keys(v).length === 0);
        if (!empty) out[k] = v;
      }
      return out;
    }
    return x;
  };
  return JSON.stringify(walk(a, against)) ?? "undefined";
}

/** A value in a message: compact JSON, cut at 200 characters. */
function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? "nothing";
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
