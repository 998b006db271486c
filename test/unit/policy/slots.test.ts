import { describe, expect, it } from "vitest";
import {
  routingWeightViolations,
  slotPresenceViolations,
  stableSlotViolations,
  TYPES,
  type PolicyResource,
} from "../../../src/policy/rules";
import { resource } from "./support";

// --- Kubernetes ---------------------------------------------------------------
const deployment = (slot: string, replicas: number | undefined, service = "checkout") => {
  const selector = { "app.kubernetes.io/name": service, "slipway.dev/slot": slot };
  return resource(
    TYPES.deployment,
    {
      metadata: { name: `${service}-${slot}`, labels: { ...selector } },
      spec: {
        replicas,
        selector: { matchLabels: selector },
        template: { metadata: { labels: selector } },
      },
    },
    `${service}-${slot}-deployment`,
  );
};
const k8sService = (slot: string, service = "checkout") =>
  resource(
    TYPES.service,
    {
      metadata: { name: `${service}-${slot}` },
      spec: { selector: { "app.kubernetes.io/name": service, "slipway.dev/slot": slot } },
    },
    `${service}-${slot}-service`,
  );
const httpRoute = (weights: Record<string, number | undefined>, header = true) =>
  resource(
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    {
      spec: {
        rules: [
          ...(header
            ? [
                {
                  matches: [{ headers: [{ name: "x-canary", value: "s" }] }],
                  backendRefs: [{ name: "checkout-green", weight: 1 }],
                },
              ]
            : []),
          {
            backendRefs: Object.entries(weights).map(([slot, weight]) => ({
              kind: "Service",
              name: `checkout-${slot}`,
              port: 80,
              weight,
            })),
          },
        ],
      },
    },
    "route",
  );
const k8sStage = (
  blue: number | undefined,
  green: number | undefined,
  weights: Record<string, number | undefined>,
) => [
  deployment("blue", blue),
  deployment("green", green),
  k8sService("blue"),
  k8sService("green"),
  httpRoute(weights),
];

// --- AWS ----------------------------------------------------------------------
const tgArn = (slot: string) =>
  `arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/${slot}-abc/0123`;
const ecsService = (slot: string, desiredCount: number | undefined) =>
  resource(
    TYPES.ecsService,
    {
      desiredCount,
      tags: { "slipway:service": "checkout", "slipway:slot": slot },
      loadBalancers: [{ targetGroupArn: tgArn(slot) }],
    },
    `${slot}-service`,
  );
const weightedRule = (weights: Record<string, number | undefined>) =>
  resource(
    TYPES.listenerRules[0],
    {
      priority: 100,
      actions: [
        {
          type: "forward",
          forward: {
            targetGroups: Object.entries(weights).map(([slot, weight]) => ({
              arn: tgArn(slot),
              weight,
            })),
          },
        },
      ],
    },
    "weighted",
  );
const headerRule = resource(
  TYPES.listenerRules[0],
  { priority: 99, actions: [{ type: "forward", targetGroupArn: tgArn("green") }] },
  "tester",
);
const awsStage = (
  blue: number | undefined,
  green: number | undefined,
  weights: Record<string, number | undefined>,
) => [ecsService("blue", blue), ecsService("green", green), weightedRule(weights), headerRule];

const msgs = (vs: { message: string }[]) => vs.map((v) => v.message);

describe("routing-weights-total-100", () => {
  it("passes weighted rules totalling 100 and ignores the header rule", () => {
    expect(routingWeightViolations(httpRoute({ blue: 90, green: 10 }))).toEqual([]);
    expect(routingWeightViolations(httpRoute({ blue: 100, green: 0 }, false))).toEqual([]);
    expect(routingWeightViolations(weightedRule({ blue: 0, green: 100 }))).toEqual([]);
    expect(routingWeightViolations(headerRule)).toEqual([]);
    expect(
      routingWeightViolations(
        resource(TYPES.listenerRules[0], {
          actions: [{ type: "forward", forward: { targetGroups: [{ arn: tgArn("blue") }] } }],
        }),
      ),
    ).toEqual([]);
    expect(
      routingWeightViolations(
        resource(TYPES.listenerRules[1], { actions: [{ type: "fixed-response" }] }),
      ),
    ).toEqual([]);
  });

  it("fails weights that do not total 100, on the last HTTPRoute rule", () => {
    expect(msgs(routingWeightViolations(httpRoute({ blue: 60, green: 30 })))).toEqual([
      "HTTPRoute weighted rule (the last rule) weights total 90 (checkout-blue: 60, checkout-green: 30); allowed: weights totalling 100",
    ]);
    expect(msgs(routingWeightViolations(weightedRule({ blue: 90, green: 20 })))).toEqual([
      "listener rule weighted forward weights total 110 (targetGroups[0]: 90, targetGroups[1]: 20); allowed: weights totalling 100",
    ]);
  });

  it("fails a backend without a weight and a route without backends", () => {
    expect(msgs(routingWeightViolations(httpRoute({ blue: 100, green: undefined })))).toEqual([
      "HTTPRoute weighted rule (the last rule) has backends without a weight (checkout-green); allowed: an explicit weight on every backend, totalling 100",
    ]);
    expect(
      msgs(
        routingWeightViolations(
          resource("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", { spec: { rules: [] } }),
        ),
      ),
    ).toEqual([expect.stringContaining("has no backendRefs")]);
  });
});

describe("blue-green-slots-present", () => {
  it("passes exactly one blue and one green per platform", () => {
    expect(slotPresenceViolations(k8sStage(2, 0, { blue: 100, green: 0 }))).toEqual([]);
    expect(slotPresenceViolations(awsStage(2, 0, { blue: 100, green: 0 }))).toEqual([]);
  });

  it("fails a missing, duplicated or unknown slot", () => {
    expect(msgs(slotPresenceViolations([deployment("blue", 2), k8sService("blue")]))).toEqual([
      'service "checkout": expected exactly one blue and one green Deployment; found blue ×1',
    ]);
    expect(
      msgs(
        slotPresenceViolations([
          ecsService("blue", 2),
          ecsService("green", 1),
          ecsService("green", 1),
        ]),
      ),
    ).toEqual([
      'service "checkout": expected exactly one blue and one green ECS service; found blue ×1, green ×2',
    ]);
    expect(
      msgs(slotPresenceViolations([deployment("blue", 2), deployment("purple", 2)]))[0],
    ).toContain("found blue ×1, purple ×1");
  });

  it("fails a stack with no slots at all, and carries the resource's URN", () => {
    expect(msgs(slotPresenceViolations([resource(TYPES.configMap, {})]))).toEqual([
      "no slots found: expected a blue and a green Deployment (label slipway.dev/slot) or ECS service (tag slipway:slot)",
    ]);
    expect(slotPresenceViolations([deployment("green", 1)])[0]!.urn).toBe(
      `${TYPES.deployment}::checkout-green-deployment`,
    );
  });
});

describe("stable-slot-fully-scaled", () => {
  const cases: [
    string,
    (
      b: number | undefined,
      g: number | undefined,
      w: Record<string, number | undefined>,
    ) => PolicyResource[],
  ][] = [
    ["Kubernetes", k8sStage],
    ["AWS", awsStage],
  ];
  describe.each(cases)("on %s", (_platform, stage) => {
    it("passes when the slot with the larger weight is at least as large as the other", () => {
      expect(stableSlotViolations(stage(2, 0, { blue: 100, green: 0 }))).toEqual([]);
      expect(stableSlotViolations(stage(2, 1, { blue: 90, green: 10 }))).toEqual([]);
      expect(stableSlotViolations(stage(0, 3, { blue: 0, green: 100 }))).toEqual([]);
      // A tie: either slot may be stable; one of them must carry the load.
      expect(stableSlotViolations(stage(1, 2, { blue: 50, green: 50 }))).toEqual([]);
    });

    it("fails when the stable slot is scaled down or smaller than the candidate", () => {
      const [down] = stableSlotViolations(stage(0, 0, { blue: 100, green: 0 }));
      expect(down!.message).toMatch(
        /^stable slot blue \(weight 100, the larger\) runs 0 replica\(s\) while green \(weight 0\) runs 0; allowed: the stable slot at full size/,
      );
      expect(down!.urn).toContain("blue");
      expect(stableSlotViolations(stage(1, 2, { blue: 80, green: 20 }))[0]!.message).toContain(
        "stable slot blue (weight 80, the larger) runs 1 replica(s) while green (weight 20) runs 2",
      );
      expect(stableSlotViolations(stage(0, 0, { blue: 50, green: 50 }))[0]!.message).toContain(
        "neither slot can serve as stable",
      );
    });
  });

  it("takes a Deployment without replicas as Kubernetes does (1)", () => {
    expect(stableSlotViolations(k8sStage(undefined, 1, { blue: 100, green: 0 }))).toEqual([]);
    expect(stableSlotViolations(k8sStage(undefined, 2, { blue: 100, green: 0 }))).toHaveLength(1);
  });

  it("skips routes it cannot map to both slots (the presence rule reports those)", () => {
    expect(
      stableSlotViolations([deployment("blue", 0), k8sService("blue"), httpRoute({ blue: 100 })]),
    ).toEqual([]);
  });

  it("maps target groups by their slot tag when the ECS service does not name them", () => {
    const tg = (slot: string) =>
      resource(TYPES.targetGroup, {
        arn: tgArn(slot),
        tags: { "slipway:service": "checkout", "slipway:slot": slot },
      });
    const bare = (slot: string, n: number) =>
      resource(
        TYPES.ecsService,
        { desiredCount: n, tags: { "slipway:service": "checkout", "slipway:slot": slot } },
        slot,
      );
    expect(
      stableSlotViolations([
        bare("blue", 0),
        bare("green", 2),
        tg("blue"),
        tg("green"),
        weightedRule({ blue: 100, green: 0 }),
      ]),
    ).toHaveLength(1);
  });
});

describe("during a first AWS preview, with target group ARNs unknown", () => {
  // The SDK's own proxy: reading an unknown value throws UnknownValueError, which the
  // pack turns into an advisory "can't run policy during preview".
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const proxy = require("@pulumi/policy/proxy") as {
    unknownCheckingProxy<T>(v: T): T;
    UnknownValueError: new (...a: any[]) => Error;
    unknownStringValue: string;
  };
  const unknownArns = (resources: PolicyResource[]) =>
    resources.map((r) => {
      const props = JSON.parse(
        JSON.stringify(r.props).replaceAll(
          /arn:aws:elasticloadbalancing[^"]*/g,
          proxy.unknownStringValue,
        ),
      );
      return { ...r, props: proxy.unknownCheckingProxy(props) };
    });

  it("still checks slot presence and weights, which need no ARN", () => {
    expect(slotPresenceViolations(unknownArns(awsStage(2, 0, { blue: 100, green: 0 })))).toEqual(
      [],
    );
    expect(msgs(slotPresenceViolations(unknownArns([ecsService("blue", 2)])))[0]).toContain(
      "found blue ×1",
    );
    expect(
      routingWeightViolations(unknownArns([weightedRule({ blue: 70, green: 20 })])[0]!),
    ).toHaveLength(1);
  });

  it("leaves the stable-slot check to the update, when the ARNs are known", () => {
    expect(() =>
      stableSlotViolations(unknownArns(awsStage(2, 0, { blue: 100, green: 0 }))),
    ).toThrow(proxy.UnknownValueError);
  });
});
