import * as k8s from "@pulumi/kubernetes";
import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { StageConfig } from "../../src/config/schema";
import { SLOTS, type Slot } from "../../src/domain";
import { defaultNamespace, flagsName, routeName, namespaceLabels } from "../naming";
import { KubernetesFlags } from "./flags";
import { KubernetesIdentities } from "./identities";
import { KubernetesNetworkPolicy } from "./network";
import { KubernetesWeightedRoute } from "./route";
import { KubernetesSlot } from "./slot";
import type { PlatformBackEnd, PlatformStage, RoutingInputs } from "../platform";

export interface KubernetesStageArgs {
  config: StageConfig;
  routing: RoutingInputs;
}

/** The Kubernetes back end of ServiceStage. */
export const kubernetesBackEnd: PlatformBackEnd = (name, args, opts) =>
  new KubernetesStage(`${name}-k8s`, args, opts);

/** PromQL the analysis and the dashboards use for one slot. */
export function slotQueries(service: string, slot: Slot): Record<string, string> {
  const sel = `service="${service}",slot="${slot}"`;
  return {
    requestRate: `sum(rate(http_requests_total{${sel}}[1m]))`,
    errorRatio: `sum(rate(http_requests_total{${sel},code=~"5.."}[1m])) / sum(rate(http_requests_total{${sel}}[1m]))`,
    p99LatencySeconds: `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{${sel}}[1m])))`,
  };
}

/**
 * One stage on Kubernetes: namespace, identities, the two slots, the weighted
 * HTTPRoute, network policy and flags, applied to the cluster of
 * `kubeconfig`/`context` (the local stage: the local cluster of `slipway
 * cluster up`). With `renderYamlToDirectory` the provider writes manifests
 * instead of calling a cluster (render mode).
 */
export class KubernetesStage extends pulumi.ComponentResource implements PlatformStage {
  readonly provider: k8s.Provider;
  readonly slots: Record<Slot, KubernetesSlot>;
  readonly route: KubernetesWeightedRoute;
  readonly identities: KubernetesIdentities;
  readonly network: KubernetesNetworkPolicy;
  readonly flags: KubernetesFlags;
  readonly namespace: pulumi.Output<string>;
  readonly routingId: pulumi.Output<string>;
  readonly deployerIdentity: pulumi.Output<string>;
  readonly serviceIdentities: Record<Slot, pulumi.Output<string>>;
  readonly endpoint: pulumi.Output<string>;
  readonly health: Record<Slot, Record<string, string>>;

  constructor(name: string, args: KubernetesStageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:kubernetes:Stage", name, {}, opts);
    const cfg = args.config;
    const kube = cfg.kubernetes;
    const service = cfg.service;

    this.provider = new k8s.Provider(
      `${name}-provider`,
      {
        ...(kube.renderYamlToDirectory
          ? { renderYamlToDirectory: kube.renderYamlToDirectory }
          : {}),
        // A path, relative to the project (where the program runs), as the pipeline's read-back
        // resolves it too; a kubeconfig's text (several lines) goes as it is.
        ...(kube.kubeconfig
          ? {
              kubeconfig: kube.kubeconfig.includes("\n")
                ? kube.kubeconfig
                : resolve(kube.kubeconfig),
            }
          : {}),
        ...(kube.context ? { context: kube.context } : {}),
      },
      { parent: this },
    );
    const childOpts = { parent: this, provider: this.provider };

    const nsName = kube.namespace ?? defaultNamespace(service.name, cfg.stage);
    let namespace: pulumi.Output<string>;
    if (kube.createNamespace) {
      const ns = new k8s.core.v1.Namespace(
        `${name}-namespace`,
        {
          metadata: {
            name: nsName,
            labels: namespaceLabels(service.name, cfg.stage),
          },
        },
        childOpts,
      );
      namespace = ns.metadata.name;
    } else {
      namespace = pulumi.output(nsName);
    }
    this.namespace = namespace;

    const route = routeName(service.name);
    const configMapName = flagsName(service.name);
    this.identities = new KubernetesIdentities(
      `${name}-identities`,
      {
        stage: cfg.stage,
        serviceName: service.name,
        namespace,
        routeName: route,
        flagsConfigMapName: configMapName,
        deployer: kube.deployerServiceAccount,
      },
      childOpts,
    );

    const slots = {} as Record<Slot, KubernetesSlot>;
    for (const slot of SLOTS) {
      const release = cfg.slots[slot];
      slots[slot] = new KubernetesSlot(
        `${name}-${slot}`,
        {
          stage: cfg.stage,
          slot,
          namespace,
          service,
          release,
          replicas: release.replicas ?? service.replicas,
          serviceAccountName: this.identities.serviceAccounts[slot].metadata.name,
        },
        childOpts,
      );
    }
    this.slots = slots;

    this.route = new KubernetesWeightedRoute(
      `${name}-route`,
      {
        stage: cfg.stage,
        serviceName: service.name,
        routeName: route,
        namespace,
        gateway: kube.gateway,
        hostnames: kube.hostnames,
        serviceNames: { blue: slots.blue.serviceName, green: slots.green.serviceName },
        ...args.routing,
      },
      childOpts,
    );

    this.network = new KubernetesNetworkPolicy(
      `${name}-network`,
      {
        stage: cfg.stage,
        serviceName: service.name,
        namespace,
        port: service.port,
        gatewayNamespace: kube.gateway.namespace,
        monitoringNamespace: kube.monitoringNamespace,
      },
      childOpts,
    );

    this.flags = new KubernetesFlags(
      `${name}-flags`,
      { stage: cfg.stage, serviceName: service.name, configMapName, namespace, flags: cfg.flags },
      childOpts,
    );

    this.routingId = pulumi.interpolate`${namespace}/${this.route.name}`;
    this.deployerIdentity = pulumi.interpolate`${namespace}/Role/${this.identities.deployerRoleName}`;
    this.serviceIdentities = {
      blue: pulumi.interpolate`${namespace}/ServiceAccount/${this.identities.serviceAccountNames.blue}`,
      green: pulumi.interpolate`${namespace}/ServiceAccount/${this.identities.serviceAccountNames.green}`,
    };
    this.endpoint = kube.hostnames[0]
      ? pulumi.output(`https://${kube.hostnames[0]}/`)
      : pulumi.output(`gateway://${kube.gateway.namespace}/${kube.gateway.name}/`);
    this.health = {
      blue: slotQueries(service.name, "blue"),
      green: slotQueries(service.name, "green"),
    };
    this.registerOutputs({
      namespace: this.namespace,
      routingId: this.routingId,
      deployerIdentity: this.deployerIdentity,
      serviceIdentities: this.serviceIdentities,
      endpoint: this.endpoint,
      health: this.health,
    });
  }
}
