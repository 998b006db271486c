import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABELS, slotLabels } from "../naming";

export interface KubernetesNetworkPolicyArgs {
  stage: string;
  serviceName: string;
  namespace: pulumi.Input<string>;
  port: number;
  gatewayNamespace: string;
  monitoringNamespace: string;
}

/**
 * Default-deny ingress for the namespace, then one allow: the gateway (traffic)
 * and the monitoring namespace (scrapes) may reach the service's port.
 */
export class KubernetesNetworkPolicy extends pulumi.ComponentResource {
  readonly denyAll: k8s.networking.v1.NetworkPolicy;
  readonly allowGateway: k8s.networking.v1.NetworkPolicy;
  readonly policyNames: pulumi.Output<string[]>;

  constructor(
    name: string,
    args: KubernetesNetworkPolicyArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("slipway:kubernetes:NetworkPolicy", name, {}, opts);
    const labels = slotLabels(args.serviceName, args.stage);
    this.denyAll = new k8s.networking.v1.NetworkPolicy(
      `${name}-default-deny`,
      {
        metadata: { name: `${args.serviceName}-default-deny`, namespace: args.namespace, labels },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      },
      { parent: this },
    );
    const fromNamespace = (ns: string) => ({
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
    });
    this.allowGateway = new k8s.networking.v1.NetworkPolicy(
      `${name}-allow-gateway`,
      {
        metadata: { name: `${args.serviceName}-allow-gateway`, namespace: args.namespace, labels },
        spec: {
          podSelector: { matchLabels: { [LABELS.name]: args.serviceName } },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [fromNamespace(args.gatewayNamespace), fromNamespace(args.monitoringNamespace)],
              ports: [{ protocol: "TCP", port: args.port }],
            },
          ],
        },
      },
      { parent: this },
    );
    this.policyNames = pulumi
      .all([this.denyAll.metadata.name, this.allowGateway.metadata.name])
      .apply((names) => [...names]);
    this.registerOutputs({ policyNames: this.policyNames });
  }
}
