import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { otherSlot, SLOTS, type StageConfig } from "../src/config/schema";
import { SCHEMA_VERSION, type StageOutputs } from "../src/contract/outputs";
import { weightsFor } from "../src/traffic/weights";
import { AwsStage } from "./aws/stage";
import { KubernetesStage } from "./kubernetes/stage";
import type { PlatformStage, RoutingInputs } from "./platform";
import { SecretToken } from "./secretToken";

export interface ServiceStageArgs {
  /** A config already validated by parseStageConfig. */
  config: StageConfig;
  /**
   * The tester header's value for `headerRoute.secretGenerator: builtin`: the stage's
   * `slipway:testerToken` secret (generated once by StageStack.open). Without it a SecretToken
   * (a dynamic provider, about 1.5 s a step) generates one in state, as stacks did before.
   */
  testerToken?: pulumi.Input<string>;
}

type Outputs<T> = { [K in keyof T]: pulumi.Output<T[K]> };

/**
 * One stage of one service: identities, a blue-green pair of slots and the
 * weighted route between them, on Kubernetes or AWS. Staging and prod are two
 * instances of this with different parameters and nothing else.
 */
export class ServiceStage extends pulumi.ComponentResource {
  readonly platform: PlatformStage;
  /** The outputs contract (schemaVersion 1), field by field. */
  readonly outputs: Outputs<StageOutputs>;
  /** Secret. Sends a request to the candidate slot at any weight. */
  readonly testerHeader: pulumi.Output<{ name: string; value: string }>;

  constructor(name: string, args: ServiceStageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:stage:ServiceStage", name, {}, opts);
    const cfg = args.config;

    // A random value keeps outsiders from steering themselves onto a canary.
    const headerValue =
      cfg.traffic.headerRoute.secretGenerator === "random"
        ? new random.RandomPassword(
            `${name}-tester-header`,
            { length: 32, special: false },
            { parent: this },
          ).result
        : args.testerToken !== undefined
          ? pulumi.secret(args.testerToken)
          : new SecretToken(`${name}-tester-header`, { bytes: 24 }, { parent: this }).value;

    const stable = cfg.traffic.stable;
    const routing: RoutingInputs = {
      weights: weightsFor(stable, cfg.traffic.canaryWeight),
      candidate: otherSlot(stable),
      headerRoute: cfg.traffic.headerRoute.enabled
        ? { name: cfg.traffic.headerRoute.name, value: headerValue }
        : undefined,
    };

    if (cfg.platform === "aws") {
      // parseStageConfig refuses this already; a config built by hand may not have been through it.
      if (!cfg.aws)
        throw new Error('slipway:aws: missing; it is required when slipway:platform is "aws"');
      this.platform = new AwsStage(
        `${name}-aws`,
        { config: cfg, aws: cfg.aws, routing },
        { parent: this },
      );
    } else {
      this.platform = new KubernetesStage(
        `${name}-k8s`,
        { config: cfg, routing },
        { parent: this },
      );
    }

    const p = this.platform;
    const releaseOf = (slot: (typeof SLOTS)[number]) => {
      const r = cfg.slots[slot];
      return {
        image: r.image,
        version: r.version,
        ...(r.revision ? { revision: r.revision } : {}),
        replicas: r.replicas ?? cfg.service.replicas,
      };
    };
    const o = pulumi.output;
    this.outputs = {
      schemaVersion: o(SCHEMA_VERSION),
      stage: o(cfg.stage),
      platform: o(cfg.platform),
      service: o({ name: cfg.service.name, runtime: cfg.service.runtime, port: cfg.service.port }),
      endpoint: p.endpoint,
      stableSlot: o(stable),
      candidateSlot: o(routing.candidate),
      weights: o(routing.weights),
      releases: o({ blue: releaseOf("blue"), green: releaseOf("green") }),
      routing: pulumi.all([p.routingId, p.headerRoutingId]).apply(([id, headerRouteId]) => ({
        kind: cfg.platform === "aws" ? ("ListenerRule" as const) : ("HTTPRoute" as const),
        id,
        ...(headerRouteId ? { headerRouteId } : {}),
        ...(cfg.traffic.headerRoute.enabled ? { headerName: cfg.traffic.headerRoute.name } : {}),
      })),
      roles: pulumi
        .all([
          p.deployerIdentity,
          p.serviceIdentities.blue,
          p.serviceIdentities.green,
          p.executionIdentity,
        ])
        .apply(([deployer, blue, green, execution]) => ({
          deployer,
          services: { blue, green },
          ...(execution ? { execution } : {}),
        })),
      health: pulumi.all([o(p.health.blue), o(p.health.green)]).apply(([blue, green]) => ({
        kind: cfg.platform === "aws" ? ("cloudwatch" as const) : ("prometheus" as const),
        blue,
        green,
      })),
      aws: p.aws ?? o(undefined),
      release: o(cfg.release),
      flags: o(
        Object.fromEntries(
          Object.entries(cfg.flags).map(([k, f]) => [
            k,
            { enabled: f.enabled, owner: f.owner, expires: f.expires },
          ]),
        ),
      ),
    };
    this.testerHeader = pulumi.secret(
      headerValue.apply((value) => ({ name: cfg.traffic.headerRoute.name, value })),
    );
    this.registerOutputs({ ...this.outputs, testerHeader: this.testerHeader });
  }
}
