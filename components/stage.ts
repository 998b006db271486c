import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { StageConfig } from "../src/config/schema";
import { otherSlot, SLOTS } from "../src/domain";
import { SCHEMA_VERSION, type StageOutputs } from "../src/contract/outputs";
import { weightsFor } from "../src/traffic/weights";
import type { PlatformBackEnd, PlatformStage, RoutingInputs } from "./platform";
import { argumentError } from "./arguments";
import { SecretToken } from "./secretToken";
import { withoutStackTraces } from "./stackTraces";

export interface ServiceStageArgs {
  /** A config already validated by parseStageConfig. */
  config: StageConfig;
  /**
   * The tester header's value for `headerRoute.secretGenerator: builtin`: the stage's
   * `slipway:testerToken` secret (generated once by StageStack.open). Without it a SecretToken
   * (a dynamic provider, about 1.5 s a step) generates one in state, as stacks did before.
   */
  testerToken?: pulumi.Input<string>;
  /**
   * The back end of `config.platform` (kubernetesBackEnd or awsBackEnd; `backEnds[platform]`
   * from the components barrel). Passed in, so that a stage loads only its platform's SDK.
   */
  backEnd: PlatformBackEnd;
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
    if (args.backEnd === undefined)
      throw new pulumi.ResourceError(
        `ServiceStage ${name}: backEnd: missing for platform "${args.config.platform}"; allowed: the platform's back end, backEnds.${args.config.platform} from the components (or ${args.config.platform}BackEnd)`,
        this,
      );
    const declared = withoutStackTraces(() => this.declare(name, args));
    this.platform = declared.platform;
    this.outputs = declared.outputs;
    this.testerHeader = declared.testerHeader;
  }

  private declare(
    name: string,
    args: ServiceStageArgs,
  ): Pick<ServiceStage, "platform" | "outputs" | "testerHeader"> {
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
    const weight = cfg.traffic.canaryWeight;
    if (!Number.isInteger(weight) || weight < 0 || weight > 100)
      throw argumentError(this, "config.traffic.canaryWeight", weight, "an integer from 0 to 100");
    const routing: RoutingInputs = {
      weights: weightsFor(stable, weight),
      candidate: otherSlot(stable),
      headerRoute: cfg.traffic.headerRoute.enabled
        ? { name: cfg.traffic.headerRoute.name, value: headerValue }
        : undefined,
    };

    const p = args.backEnd(name, { config: cfg, routing }, { parent: this });
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
    const outputs: Outputs<StageOutputs> = {
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
    const testerHeader = pulumi.secret(
      headerValue.apply((value) => ({ name: cfg.traffic.headerRoute.name, value })),
    );
    this.registerOutputs({ ...outputs, testerHeader });
    return { platform: p, outputs, testerHeader };
  }
}
