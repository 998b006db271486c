import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { FlagConfig } from "../../src/config/schema";
import { flagdDocument } from "../../src/config/flags";
import { slotLabels } from "../naming";

export interface KubernetesFlagsArgs {
  stage: string;
  serviceName: string;
  configMapName: string;
  namespace: pulumi.Input<string>;
  flags: Record<string, FlagConfig>;
}

/**
 * The stage's feature flags as a flagd/OpenFeature ConfigMap. A flagd sidecar or
 * the OpenFeature operator watches it, so flags change without redeploying.
 */
export class KubernetesFlags extends pulumi.ComponentResource {
  readonly configMap: k8s.core.v1.ConfigMap;
  /** What a flagd sidecar or the OpenFeature operator is pointed at. */
  readonly configMapName: pulumi.Output<string>;

  constructor(name: string, args: KubernetesFlagsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:kubernetes:Flags", name, {}, opts);
    this.configMap = new k8s.core.v1.ConfigMap(
      `${name}-configmap`,
      {
        metadata: {
          name: args.configMapName,
          namespace: args.namespace,
          labels: slotLabels(args.serviceName, args.stage),
        },
        data: { "flags.flagd.json": flagdDocument(args.flags) },
      },
      { parent: this },
    );
    this.configMapName = this.configMap.metadata.name;
    this.registerOutputs({ configMapName: this.configMapName });
  }
}
