import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../../src/config/schema";
import { SLOTS, type Slot } from "../../src/domain";
import { slotResourceName, slotLabels } from "../naming";

export interface KubernetesIdentitiesArgs {
  stage: string;
  serviceName: string;
  namespace: pulumi.Input<string>;
  routeName: string;
  flagsConfigMapName: string;
  deployer: KubernetesConfig["deployerServiceAccount"];
}

/**
 * Who may do what in the stage's namespace: a ServiceAccount per slot without an
 * API token (the services never call the Kubernetes API), and a deployer Role
 * whose every rule names the objects it may touch.
 */
export class KubernetesIdentities extends pulumi.ComponentResource {
  readonly serviceAccounts: Record<Slot, k8s.core.v1.ServiceAccount>;
  readonly deployerRole: k8s.rbac.v1.Role;
  readonly deployerBinding: k8s.rbac.v1.RoleBinding;
  readonly serviceAccountNames: Record<Slot, pulumi.Output<string>>;
  readonly deployerRoleName: pulumi.Output<string>;

  constructor(
    name: string,
    args: KubernetesIdentitiesArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("slipway:kubernetes:Identities", name, {}, opts);
    const labels = slotLabels(args.serviceName, args.stage);
    const accounts = {} as Record<Slot, k8s.core.v1.ServiceAccount>;
    for (const slot of SLOTS) {
      accounts[slot] = new k8s.core.v1.ServiceAccount(
        `${name}-${slot}-sa`,
        {
          metadata: {
            name: slotResourceName(args.serviceName, slot),
            namespace: args.namespace,
            labels: slotLabels(args.serviceName, args.stage, slot),
          },
          automountServiceAccountToken: false,
        },
        { parent: this },
      );
    }
    this.serviceAccounts = accounts;

    const deployments = SLOTS.map((slot) => slotResourceName(args.serviceName, slot));
    this.deployerRole = new k8s.rbac.v1.Role(
      `${name}-deployer-role`,
      {
        metadata: { name: `${args.serviceName}-deployer`, namespace: args.namespace, labels },
        rules: [
          {
            apiGroups: ["gateway.networking.k8s.io"],
            resources: ["httproutes"],
            resourceNames: [args.routeName],
            verbs: ["get", "patch", "update"],
          },
          {
            apiGroups: ["apps"],
            resources: ["deployments", "deployments/scale"],
            resourceNames: deployments,
            verbs: ["get", "patch", "update"],
          },
          {
            apiGroups: [""],
            resources: ["configmaps"],
            resourceNames: [args.flagsConfigMapName],
            verbs: ["get", "patch", "update"],
          },
        ],
      },
      { parent: this },
    );
    this.deployerBinding = new k8s.rbac.v1.RoleBinding(
      `${name}-deployer-binding`,
      {
        metadata: { name: `${args.serviceName}-deployer`, namespace: args.namespace, labels },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "Role",
          name: this.deployerRole.metadata.name,
        },
        subjects: [
          { kind: "ServiceAccount", name: args.deployer.name, namespace: args.deployer.namespace },
        ],
      },
      { parent: this },
    );
    this.serviceAccountNames = {
      blue: accounts.blue.metadata.name,
      green: accounts.green.metadata.name,
    };
    this.deployerRoleName = this.deployerRole.metadata.name;
    this.registerOutputs({
      serviceAccountNames: this.serviceAccountNames,
      deployerRoleName: this.deployerRoleName,
    });
  }
}
