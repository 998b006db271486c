import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ServiceConfig, SlotRelease } from "../../src/config/schema";
import type { Slot } from "../../src/domain";
import { containerEnv, runtimeProfile } from "../../src/runtime/profiles";
import { checkReplicas } from "../arguments";
import { LABELS, slotResourceName, slotLabels } from "../naming";

export interface KubernetesSlotArgs {
  stage: string;
  slot: Slot;
  namespace: pulumi.Input<string>;
  service: ServiceConfig;
  release: SlotRelease;
  /** Replicas for this slot; never derived from traffic. */
  replicas: number;
  serviceAccountName: pulumi.Input<string>;
}

/**
 * One colour of the blue-green pair: a Deployment pinned by digest, its Service
 * and a PodDisruptionBudget. Its inputs are the slot's own release and size only,
 * so neither a canary step nor a promotion touches it.
 */
export class KubernetesSlot extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly disruptionBudget: k8s.policy.v1.PodDisruptionBudget;
  readonly serviceName: pulumi.Output<string>;
  /** What the pipeline scales and reads the rollout of. */
  readonly deploymentName: pulumi.Output<string>;

  constructor(name: string, args: KubernetesSlotArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:kubernetes:Slot", name, {}, opts);
    checkReplicas(this, args.replicas);
    const { service, release, slot } = args;
    const physicalName = slotResourceName(service.name, slot);
    const selector = { [LABELS.name]: service.name, [LABELS.slot]: slot };
    const labels = slotLabels(service.name, args.stage, slot);
    const profile = runtimeProfile(service);
    const probe = (path: string) => ({ httpGet: { path, port: "http" }, ...profile.probe });
    const resources = {
      cpu: `${Math.round(service.cpu * 1000)}m`,
      memory: `${service.memoryMiB}Mi`,
    };

    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: {
          name: physicalName,
          namespace: args.namespace,
          labels,
          // The stack is the source of truth for a slot: after someone changed its image or size
          // through the API, a rollback re-applies it instead of failing with a server-side
          // apply conflict against that other field manager (as for the HTTPRoute).
          annotations: { "pulumi.com/patchForce": "true" },
        },
        spec: {
          replicas: args.replicas,
          selector: { matchLabels: selector },
          // New pods must be ready before old ones go, so a slot never dips below its size.
          strategy: {
            type: "RollingUpdate",
            rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" },
          },
          template: {
            metadata: {
              labels: { ...labels, [LABELS.version]: release.version },
              annotations: {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": String(service.port),
                "prometheus.io/path": service.metricsPath,
              },
            },
            spec: {
              serviceAccountName: args.serviceAccountName,
              automountServiceAccountToken: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 65532,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: service.name,
                  image: release.image,
                  ports: [{ name: "http", containerPort: service.port }],
                  env: Object.entries(containerEnv(service, slot, release)).map(([n, value]) => ({
                    name: n,
                    value,
                  })),
                  resources: { requests: resources, limits: resources },
                  readinessProbe: probe(service.readyPath),
                  livenessProbe: probe(service.healthPath),
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ["ALL"] },
                  },
                },
              ],
            },
          },
        },
      },
      { parent: this },
    );

    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: physicalName, namespace: args.namespace, labels },
        spec: {
          type: "ClusterIP",
          selector,
          ports: [{ name: "http", port: 80, targetPort: "http" }],
        },
      },
      { parent: this },
    );

    this.disruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: { name: physicalName, namespace: args.namespace, labels },
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
      },
      { parent: this },
    );

    this.serviceName = this.service.metadata.name;
    this.deploymentName = this.deployment.metadata.name;
    this.registerOutputs({ serviceName: this.serviceName, deploymentName: this.deploymentName });
  }
}
