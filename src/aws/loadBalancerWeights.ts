import {
  DescribeRulesCommand,
  ElasticLoadBalancingV2Client,
  type Rule,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { SLOTS, type Slot } from "../domain";
import type { AwsStageOutputs, StageOutputs } from "../contract/outputs";
import { RouteDriftedError, RoutingNotFoundError } from "../pipeline/errors";
import type { Weights } from "../traffic/weights";
import {
  awsClientSettings,
  describeAwsError,
  describeEndpoint,
  type AwsClientSettings,
} from "./client";
import { listenerRuleDifferences } from "./listenerRule";

/**
 * The weights in force on an AWS stage, read back from the load balancer:
 * DescribeRules on the weighted rule the stack says it created
 * (`outputs.aws.listenerRuleArn`), each forwarded target group mapped to its
 * slot by ARN (`outputs.aws.targetGroups`), never by name. Anything else — no
 * rule, no forward action, a target group that is not the stage's — is a
 * LoadBalancerReadBackError, never undefined weights. Given the rule as the stack
 * declared it, the live rule is compared with it whole (listenerRule.ts), and a
 * difference beyond the weights is a RouteDriftedError.
 */

export type LoadBalancerReadBackProblem =
  | "noOutputs"
  | "ruleNotFound"
  | "notForwarding"
  | "foreignTargetGroup"
  | "noTraffic"
  | "unreachable";

/** The pipeline's RoutingNotFoundError, with what exactly is wrong on the load balancer. */
export class LoadBalancerReadBackError extends RoutingNotFoundError {
  override name = "LoadBalancerReadBackError";
  constructor(
    readonly problem: LoadBalancerReadBackProblem,
    routingId: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(routingId, detail, problem === "unreachable");
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * Pure: the slot weights a rule's forward action gives, as percentages.
 * ALB weights are relative (0–999 each); the pipeline writes percentages that
 * sum to 100, and anything else (an edit by hand) is scaled to percentages, so
 * 1/1 reads as 50/50: the traffic split, which is what drift is about.
 */
export function weightsFromRule(rule: Rule, stage: AwsStageOutputs): Weights {
  const ruleArn = rule.RuleArn ?? stage.listenerRuleArn;
  const forward = (rule.Actions ?? []).find((a) => a.Type === "forward");
  if (!forward) {
    throw new LoadBalancerReadBackError(
      "notForwarding",
      ruleArn,
      `the listener rule has no forward action (actions: ${(rule.Actions ?? []).map((a) => a.Type).join(", ") || "none"}); the stage's weighted rule forwards to its two target groups`,
    );
  }
  const forwarded =
    forward.ForwardConfig?.TargetGroups && forward.ForwardConfig.TargetGroups.length > 0
      ? forward.ForwardConfig.TargetGroups.map((g) => ({
          arn: g.TargetGroupArn ?? "",
          weight: g.Weight ?? 1,
        }))
      : forward.TargetGroupArn
        ? [{ arn: forward.TargetGroupArn, weight: 1 }]
        : [];
  const slotOf = (arn: string): Slot | undefined =>
    SLOTS.find((slot) => stage.targetGroups[slot].arn === arn);
  const raw: Weights = { blue: 0, green: 0 };
  for (const group of forwarded) {
    const slot = slotOf(group.arn);
    if (!slot) {
      throw new LoadBalancerReadBackError(
        "foreignTargetGroup",
        ruleArn,
        `the listener rule forwards to target group ${group.arn || "(none)"}, which is not one of the stage's ` +
          `(blue ${stage.targetGroups.blue.arn}, green ${stage.targetGroups.green.arn})`,
      );
    }
    raw[slot] += group.weight;
  }
  const total = raw.blue + raw.green;
  if (total <= 0) {
    throw new LoadBalancerReadBackError(
      "noTraffic",
      ruleArn,
      `the listener rule gives both target groups weight 0 (blue ${raw.blue}, green ${raw.green})`,
    );
  }
  if (total === 100) return raw;
  const blue = Math.round((raw.blue * 100) / total);
  return { blue, green: 100 - blue };
}

/**
 * The routing resource's outputs as the stack last applied it (`StageStack.declaredRouting`):
 * for a listener rule, the provider's `aws.lb.ListenerRule` state. Undefined when unknown.
 */
export type DeclaredRouting = (
  routing: StageOutputs["routing"],
) => Promise<Record<string, any> | undefined>;

export interface LoadBalancerWeightsOptions {
  settings: AwsClientSettings;
  /** Use this client instead of building one (tests, a caller's own configuration). */
  client?: ElasticLoadBalancingV2Client;
  /** The rule as the stack declared it: when given, the live rule is compared with it whole. */
  declared?: DeclaredRouting;
}

export class LoadBalancerWeights {
  private readonly client: ElasticLoadBalancingV2Client;

  constructor(private readonly options: LoadBalancerWeightsOptions) {
    this.client = options.client ?? new ElasticLoadBalancingV2Client(options.settings);
  }

  static forRegion(
    region: string,
    env?: Record<string, string | undefined>,
    declared?: DeclaredRouting,
  ): LoadBalancerWeights {
    return new LoadBalancerWeights({ settings: awsClientSettings(region, env), declared });
  }

  /** `declared`: the rule as the stack declared it, for this read (default: the options'). */
  async read(
    outputs: StageOutputs,
    declared: DeclaredRouting | undefined = this.options.declared,
  ): Promise<Weights> {
    const stage = outputs.aws;
    if (!stage) {
      throw new LoadBalancerReadBackError(
        "noOutputs",
        outputs.routing.id,
        `stack ${outputs.stage} has no \`aws\` output (listener rule and target group ARNs); ` +
          "run `pulumi up` of the stage with this Slipway version once",
      );
    }
    const rule = await this.describe(stage.listenerRuleArn);
    const declaredRule = await declared?.(outputs.routing);
    // Unknown (no checkpoint, or a value kept secret): the weights are still compared.
    const differences = declaredRule ? listenerRuleDifferences(declaredRule, rule, stage) : [];
    if (differences.length === 0) return weightsFromRule(rule, stage);
    let weights: Weights;
    try {
      weights = weightsFromRule(rule, stage);
    } catch (err) {
      if (!(err instanceof LoadBalancerReadBackError)) throw err;
      throw new LoadBalancerReadBackError(
        err.problem,
        err.routingId,
        `${err.detail}; the rule differs from the stack: ${differences.join("; ")}`,
      );
    }
    throw new RouteDriftedError(outputs.routing.id, weights, differences);
  }

  private async describe(ruleArn: string): Promise<Rule> {
    let rules: Rule[];
    try {
      rules =
        (await this.client.send(new DescribeRulesCommand({ RuleArns: [ruleArn] }))).Rules ?? [];
    } catch (err) {
      if ((err as Error).name === "RuleNotFoundException")
        throw new LoadBalancerReadBackError(
          "ruleNotFound",
          ruleArn,
          "the listener rule does not exist",
          {
            cause: err,
          },
        );
      throw new LoadBalancerReadBackError(
        "unreachable",
        ruleArn,
        `DescribeRules: ${describeAwsError(err, describeEndpoint(this.options.settings, "Elastic Load Balancing"))}`,
        { cause: err },
      );
    }
    const rule = rules.find((r) => r.RuleArn === ruleArn);
    if (!rule)
      throw new LoadBalancerReadBackError(
        "ruleNotFound",
        ruleArn,
        "the listener rule does not exist",
      );
    return rule;
  }

  destroy(): void {
    this.client.destroy();
  }
}
