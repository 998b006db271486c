import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { StageOutputs } from "../../../src/contract/outputs";
import { RoutingNotFoundError } from "../../../src/pipeline/errors";
import {
  RefreshedStateReadBack,
  RenderedRouteReadBack,
  KubernetesApiReadBack,
  weightsReadBackFor,
} from "../../../src/pipeline/readBack";
import type { StageStack, StateResource } from "../../../src/pipeline/stack";
import { LoadBalancerWeights } from "../../../src/aws";
import { stageConfigOf, variant } from "../support/harness";

const RULE_ARN =
  "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/platform/0123/4567/89ab";
const tgArn = (prefix: string) =>
  `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${prefix}/0123`;

function outputsFor(kind: "HTTPRoute" | "ListenerRule", id: string): StageOutputs {
  return { service: { name: "checkout" }, routing: { kind, id } } as unknown as StageOutputs;
}

function httpRoute(namespace: string, name: string, weights: { blue: number; green: number }) {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace },
    spec: {
      rules: [
        { matches: [{ headers: [{ name: "x" }] }], backendRefs: [{ name: "checkout-green" }] },
        {
          backendRefs: [
            { name: "checkout-blue", weight: weights.blue },
            { name: "checkout-green", weight: weights.green },
          ],
        },
      ],
    },
  };
}

describe("rendered HTTPRoute read-back", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "slipway-readback-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the route that outputs.routing.id names (namespace/name), not another one", async () => {
    writeFileSync(
      join(dir, "routes.yaml"),
      [
        stringify(httpRoute("other-ns", "checkout", { blue: 0, green: 100 })),
        stringify(httpRoute("checkout-local", "checkout", { blue: 90, green: 10 })),
      ].join("---\n"),
    );
    const readBack = new RenderedRouteReadBack(dir);
    expect(await readBack.read(outputsFor("HTTPRoute", "checkout-local/checkout"))).toEqual({
      blue: 90,
      green: 10,
    });
  });

  it("a missing route or slot backend is a RoutingNotFoundError, never undefined weights", async () => {
    const route = httpRoute("checkout-local", "checkout", { blue: 100, green: 0 });
    delete (route.spec.rules[1]!.backendRefs[1] as { weight?: number }).weight;
    writeFileSync(join(dir, "route.yaml"), stringify(route));
    const readBack = new RenderedRouteReadBack(dir);
    await expect(readBack.read(outputsFor("HTTPRoute", "elsewhere/checkout"))).rejects.toThrow(
      RoutingNotFoundError,
    );
    await expect(
      readBack.read(outputsFor("HTTPRoute", "checkout-local/checkout")),
    ).rejects.toMatchObject({
      name: "RoutingNotFoundError",
      routingId: "checkout-local/checkout",
      message: /no backend checkout-green with a weight/,
    });
  });
});

/** An exported AWS deployment: the AWS provider cannot run here, so its state is written out. */
function awsState(groups: Record<string, string | undefined>, weights: number[]): StateResource[] {
  const arns = Object.keys(groups);
  return [
    ...arns.map((arn, i) => ({
      urn: `urn:pulumi:staging::slipway::aws:lb/targetGroup:TargetGroup::tg${i}`,
      type: "aws:lb/targetGroup:TargetGroup",
      outputs: { arn, tags: groups[arn] ? { "slipway:slot": groups[arn] } : {} },
    })),
    {
      urn: "urn:pulumi:staging::slipway::aws:lb/listenerRule:ListenerRule::checkout-route-weighted",
      type: "aws:lb/listenerRule:ListenerRule",
      outputs: {
        arn: RULE_ARN,
        actions: [
          {
            type: "forward",
            forward: { targetGroups: arns.map((arn, i) => ({ arn, weight: weights[i] })) },
          },
        ],
      },
    },
  ];
}

function stackWith(resources: StateResource[]) {
  const refreshed: string[][] = [];
  const stack = {
    stage: "staging",
    resources: async () => resources,
    refresh: async (urns: string[]) => {
      refreshed.push(urns);
      return resources;
    },
  } as unknown as StageStack;
  return { stack, refreshed };
}

describe("refreshed listener rule read-back", () => {
  it("refreshes only the rule named by routing.id and maps target groups by their slot tag", async () => {
    // Physical names say nothing about the slot: namePrefix may be anything.
    const { stack, refreshed } = stackWith(
      awsState({ [tgArn("tg-a1b2")]: "green", [tgArn("tg-c3d4")]: "blue" }, [25, 75]),
    );
    const weights = await new RefreshedStateReadBack(stack).read(
      outputsFor("ListenerRule", RULE_ARN),
    );
    expect(weights).toEqual({ blue: 75, green: 25 });
    expect(refreshed).toEqual([
      ["urn:pulumi:staging::slipway::aws:lb/listenerRule:ListenerRule::checkout-route-weighted"],
    ]);
  });

  it("an unknown rule ARN or an untagged target group is a RoutingNotFoundError", async () => {
    const { stack } = stackWith(
      awsState({ [tgArn("blue-x")]: "blue", [tgArn("green-x")]: undefined }, [100, 0]),
    );
    const readBack = new RefreshedStateReadBack(stack);
    await expect(readBack.read(outputsFor("ListenerRule", `${RULE_ARN}0`))).rejects.toThrow(
      RoutingNotFoundError,
    );
    await expect(readBack.read(outputsFor("ListenerRule", RULE_ARN))).rejects.toThrow(
      /no weighted target group tagged slipway:slot=green/,
    );
  });
});

describe("weightsReadBackFor", () => {
  it("render mode reads the rendered files; a stage with a kubeconfig the API server; another cluster stage refreshes its state; AWS asks the load balancer", () => {
    const stack = { options: { projectDir: "/project" } } as unknown as StageStack;
    const rendered = stageConfigOf("local");
    if (rendered.platform !== "kubernetes") throw new Error("local is kubernetes");
    const render = weightsReadBackFor(
      { ...rendered, kubernetes: { ...rendered.kubernetes, renderYamlToDirectory: ".slipway/r" } },
      stack,
    );
    expect(render).toBeInstanceOf(RenderedRouteReadBack);
    expect((render as RenderedRouteReadBack).dir).toBe("/project/.slipway/r");
    // Pulumi.local.yaml applies to the local cluster: its kubeconfig, relative to the project.
    const live = weightsReadBackFor(stageConfigOf("local"), stack);
    expect(live).toBeInstanceOf(KubernetesApiReadBack);
    expect(() => (live as KubernetesApiReadBack).api()).toThrow(
      /kubeconfig \/project\/\.slipway\/cluster\/kubeconfig: cannot be read/,
    );
    const cluster = variant("staging", (raw) => {
      raw.platform = "kubernetes";
    });
    expect(weightsReadBackFor(cluster, stack)).toBeInstanceOf(RefreshedStateReadBack);
    // DescribeRules on the rule the outputs name (src/aws; tested against moto).
    const aws = weightsReadBackFor(stageConfigOf("staging"), undefined);
    expect(aws).toBeInstanceOf(LoadBalancerWeights);
    (aws as LoadBalancerWeights).destroy();
  });

  it("AWS: with the engine's stack, the rule the stack declared goes to the read-back; without, none", async () => {
    const declaredRule = { arn: RULE_ARN, priority: 100 };
    const asked: unknown[] = [];
    const stack = {
      options: { projectDir: "/project" },
      declaredRouting: async (routing: StageOutputs["routing"]) => {
        asked.push(routing);
        return declaredRule;
      },
    } as unknown as StageStack;
    const given: unknown[] = [];
    const aws = {
      readWeights: async (
        o: StageOutputs,
        declared?: (r: StageOutputs["routing"]) => Promise<unknown>,
      ) => {
        given.push(declared ? await declared(o.routing) : undefined);
        return { blue: 100, green: 0 };
      },
    };
    const outputs = outputsFor("ListenerRule", RULE_ARN);
    await weightsReadBackFor(stageConfigOf("staging"), stack, aws).read(outputs);
    await weightsReadBackFor(stageConfigOf("staging"), undefined, aws).read(outputs);
    expect(given).toEqual([declaredRule, undefined]);
    expect(asked).toEqual([{ kind: "ListenerRule", id: RULE_ARN }]);
  });
});
