import fc from "fast-check";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { renderStage, variant, type Rendered } from "../support/harness";

/** Logical names of the resources whose inputs differ between two renders of a stage. */
function changed(a: Rendered, b: Rendered): string[] {
  expect(b.resources.map((r) => `${r.type}::${r.name}`)).toEqual(
    a.resources.map((r) => `${r.type}::${r.name}`),
  );
  return a.resources
    .filter((r, i) => !isDeepStrictEqual(r.inputs, b.resources[i]!.inputs))
    .map((r) => r.name);
}

const withWeight = (stage: string, weight: number, stable = "blue") =>
  variant(stage, (raw) => {
    raw.traffic.canaryWeight = weight;
    raw.traffic.stable = stable;
    if (stable === "green") {
      // Keep the stable slot at full size when green is stable.
      delete raw.slots.green.replicas;
      raw.slots.blue.replicas = 0;
    }
  });

const ROUTES = {
  local: "checkout-k8s-route-httproute",
  staging: "checkout-aws-route-weighted",
} as const;

function routeWeights(stage: keyof typeof ROUTES, r: Rendered): { blue: number; green: number } {
  const inputs = r.byName(ROUTES[stage]).inputs;
  if (stage === "local") {
    const rule = inputs.spec.rules.at(-1);
    const byName = Object.fromEntries(rule.backendRefs.map((b: any) => [b.name, b.weight]));
    return { blue: byName["checkout-blue"], green: byName["checkout-green"] };
  }
  const groups = inputs.actions[0].forward.targetGroups;
  const weightOf = (slot: string) =>
    groups.find((g: any) => g.arn.includes(`targetgroup/${slot}-`)).weight;
  return { blue: weightOf("blue"), green: weightOf("green") };
}

describe.each(["local", "staging"] as const)("canary step on %s", (stage) => {
  it("5 → 25 changes the inputs of exactly one resource, the routing rule, and its weights sum to 100", async () => {
    const at5 = await renderStage(withWeight(stage, 5));
    const at25 = await renderStage(withWeight(stage, 25));
    expect(changed(at5, at25)).toEqual([ROUTES[stage]]);
    expect(routeWeights(stage, at5)).toEqual({ blue: 95, green: 5 });
    expect(routeWeights(stage, at25)).toEqual({ blue: 75, green: 25 });
    expect(at25.outputs.weights).toEqual({ blue: 75, green: 25 });
  });

  it("any two weights differ in the routing rule alone (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        async (w1, w2) => {
          fc.pre(w1 !== w2);
          const a = await renderStage(withWeight(stage, w1));
          const b = await renderStage(withWeight(stage, w2));
          expect(changed(a, b)).toEqual([ROUTES[stage]]);
          const weights = routeWeights(stage, b);
          expect(weights.blue + weights.green).toBe(100);
          expect(weights.green).toBe(w2);
        },
      ),
      { numRuns: 4 },
    );
  });

  it("flipping the stable colour touches routing only: no slot resource changes or is renamed", async () => {
    const blueStable = await renderStage(withWeight(stage, 0, "blue"));
    const greenStable = await renderStage(withWeight(stage, 0, "green"));
    const diff = changed(blueStable, greenStable);
    // Slot sizes move (the new stable runs at full size); names and releases do not.
    const slotResources = diff.filter((n) => /-(blue|green)(-|$)/.test(n));
    for (const name of slotResources) {
      const before = blueStable.byName(name).inputs;
      const after = greenStable.byName(name).inputs;
      const { replicas: _a, desiredCount: _b, spec: specA, ...restA } = before;
      const { replicas: _c, desiredCount: _d, spec: specB, ...restB } = after;
      expect(restB).toEqual(restA);
      if (specA) expect({ ...specB, replicas: 0 }).toEqual({ ...specA, replicas: 0 });
    }
    const routing = diff.filter((n) => !slotResources.includes(n));
    expect(routing.length).toBeGreaterThan(0);
    for (const name of routing) expect(name).toMatch(/route/);
    expect(greenStable.outputs.stableSlot).toBe("green");
    expect(greenStable.outputs.candidateSlot).toBe("blue");
    expect(routeWeights(stage, greenStable)).toEqual({ blue: 0, green: 100 });
  });
});

describe("tester header route", () => {
  it("sends the secret header to the candidate at any weight, and exports it as a secret", async () => {
    const r = await renderStage(withWeight("local", 0));
    const rules = r.byName("checkout-k8s-route-httproute").inputs.spec.rules;
    expect(rules).toHaveLength(2);
    expect(rules[0].matches[0].headers[0]).toEqual({
      type: "Exact",
      name: "x-slipway-canary",
      value: r.testerHeader.value,
    });
    expect(rules[0].backendRefs.map((b: any) => b.name)).toEqual(["checkout-green"]);
    expect(r.testerHeader.value).toMatch(/^[A-Za-z0-9]{32,}$/);

    const aws = await renderStage(withWeight("staging", 0));
    const tester = aws.byName("checkout-aws-route-tester").inputs;
    expect(tester.priority).toBe(aws.byName("checkout-aws-route-weighted").inputs.priority - 1);
    expect(tester.conditions.at(-1).httpHeader.values).toEqual([aws.testerHeader.value]);
    expect(tester.actions[0].targetGroupArn).toContain("targetgroup/green-");
  });
});
