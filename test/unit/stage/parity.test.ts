import { describe, expect, it } from "vitest";
import { renderStage, stageConfigOf, variant, type Rendered } from "../support/harness";

/** Resource types with their counts, e.g. "aws:ecs/service:Service x2". */
function typeMultiset(r: Rendered): string[] {
  const counts = new Map<string, number>();
  for (const x of r.resources) counts.set(x.type, (counts.get(x.type) ?? 0) + 1);
  return [...counts].map(([t, n]) => `${t} x${n}`).sort();
}

/** Parent and data-flow edges between resources, by type and logical name. */
function wiring(r: Rendered): string[] {
  return r.resources
    .flatMap((x) => [
      `${x.type}::${x.name} <parent- ${x.parent ?? "(root)"}`,
      ...x.dependsOn.map((d) => `${x.type}::${x.name} <- ${d}`),
    ])
    .sort();
}

describe("stage parity", () => {
  it("staging and prod declare the same resource types, as often, wired the same way", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const prod = await renderStage(stageConfigOf("prod"));
    expect(staging.resources.length).toBeGreaterThan(20);
    expect(typeMultiset(prod)).toEqual(typeMultiset(staging));
    expect(wiring(prod)).toEqual(wiring(staging));
    // The wiring is not trivially empty: the weighted rule takes both target groups.
    expect(wiring(staging)).toContain(
      "aws:lb/listenerRule:ListenerRule::checkout-aws-route-weighted <- aws:lb/targetGroup:TargetGroup::checkout-aws-route-green-tg",
    );
  });

  it("the same stack files switched to kubernetes are also identical in types and wiring", async () => {
    const toK8s = (raw: any) => {
      raw.platform = "kubernetes";
    };
    const staging = await renderStage(variant("staging", toK8s));
    const prod = await renderStage(variant("prod", toK8s));
    expect(staging.ofType("kubernetes:apps/v1:Deployment")).toHaveLength(2);
    expect(typeMultiset(prod)).toEqual(typeMultiset(staging));
    expect(wiring(prod)).toEqual(wiring(staging));
  });

  it("stages differ only in parameters: sizes, thresholds, names, credentials", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const prod = await renderStage(stageConfigOf("prod"));
    const stagingTask = staging.byName("checkout-aws-blue-task").inputs;
    const prodTask = prod.byName("checkout-aws-blue-task").inputs;
    expect(stagingTask.cpu).toBe("512");
    expect(prodTask.cpu).toBe("1024");
    expect(prod.byName("checkout-aws-blue-service").inputs.desiredCount).toBe(4);
    expect(staging.byName("checkout-aws-blue-service").inputs.desiredCount).toBe(2);
  });

  it("the local stage renders a complete Kubernetes stage", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const types = typeMultiset(local);
    for (const expected of [
      "kubernetes:apps/v1:Deployment x2",
      "kubernetes:core/v1:Service x2",
      "kubernetes:core/v1:ServiceAccount x2",
      "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute x1",
      "kubernetes:rbac.authorization.k8s.io/v1:Role x1",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding x1",
      "kubernetes:networking.k8s.io/v1:NetworkPolicy x2",
      "kubernetes:policy/v1:PodDisruptionBudget x2",
      "kubernetes:core/v1:ConfigMap x1",
      "kubernetes:core/v1:Namespace x1",
    ]) {
      expect(types).toContain(expected);
    }
  });
});
