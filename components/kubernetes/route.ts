import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../../src/config/schema";
import type { Slot } from "../../src/domain";
import type { RoutingInputs } from "../platform";
import { checkWeights } from "../arguments";
import { slotLabels } from "../naming";

export interface KubernetesWeightedRouteArgs extends RoutingInputs {
  stage: string;
  routeName: string;
  namespace: pulumi.Input<string>;
  gateway: KubernetesConfig["gateway"];
  hostnames: string[];
  serviceNames: Record<Slot, pulumi.Input<string>>;
  serviceName: string;
}

/**
 * The Gateway API HTTPRoute that splits traffic between the slots. It is the
 * one resource a canary step or a rollback updates.
 */
export class KubernetesWeightedRoute extends pulumi.ComponentResource {
  readonly route: k8s.apiextensions.CustomResource;
  readonly name: pulumi.Output<string>;

  constructor(
    name: string,
    args: KubernetesWeightedRouteArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("slipway:kubernetes:WeightedRoute", name, {}, opts);
    checkWeights(this, args.weights);
    const backend = (slot: Slot, weight: number) => ({
      kind: "Service",
      name: args.serviceNames[slot],
      port: 80,
      weight,
    });
    const rules: unknown[] = [];
    if (args.headerRoute) {
      // More header matches win over the plain rule (Gateway API precedence), at any weight.
      rules.push({
        matches: [
          {
            path: { type: "PathPrefix", value: "/" },
            headers: [
              { type: "Exact", name: args.headerRoute.name, value: args.headerRoute.value },
            ],
          },
        ],
        backendRefs: [backend(args.candidate, 1)],
      });
    }
    rules.push({
      matches: [{ path: { type: "PathPrefix", value: "/" } }],
      backendRefs: [backend("blue", args.weights.blue), backend("green", args.weights.green)],
    });

    this.route = new k8s.apiextensions.CustomResource(
      `${name}-httproute`,
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: {
          name: args.routeName,
          namespace: args.namespace,
          labels: slotLabels(args.serviceName, args.stage),
          // The stack is the source of truth for the weights: after someone changed them through
          // the API (drift), the next update or rollback takes the fields back instead of failing
          // with a server-side apply conflict against that other field manager.
          annotations: { "pulumi.com/patchForce": "true" },
        },
        spec: {
          parentRefs: [
            {
              group: "gateway.networking.k8s.io",
              kind: "Gateway",
              name: args.gateway.name,
              namespace: args.gateway.namespace,
              ...(args.gateway.sectionName ? { sectionName: args.gateway.sectionName } : {}),
            },
          ],
          ...(args.hostnames.length > 0 ? { hostnames: args.hostnames } : {}),
          rules,
        },
      },
      { parent: this },
    );
    this.name = this.route.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
