import { describe, expect, it } from "vitest";
import { evaluate } from "../../../src/policy/catalog";
import { renderStage, stageConfigOf, variant } from "../support/harness";
import { NOW, policyResources } from "./support";

describe.each(["local", "staging", "prod"])("the shipped %s stage", (stage) => {
  it("passes every mandatory policy today", async () => {
    const resources = policyResources(await renderStage(stageConfigOf(stage)));
    // The real clock on purpose: a shipped flag that has expired must fail here as it fails the preview.
    const findings = evaluate(resources, { now: new Date() });
    expect(findings.filter((f) => f.enforcementLevel === "mandatory")).toEqual([]);
  });

  it("is seen whole by the stack policies: both slots and the weighted rule", async () => {
    const resources = policyResources(await renderStage(stageConfigOf(stage)));
    const { slotPresenceViolations, stableSlotViolations, weightedBackends, isRoutingType } =
      await import("../../../src/policy/rules");
    expect(slotPresenceViolations(resources)).toEqual([]);
    expect(stableSlotViolations(resources)).toEqual([]);
    const weighted = resources
      .filter((r) => isRoutingType(r.type))
      .map(weightedBackends)
      .filter(Boolean);
    expect(weighted).toHaveLength(1);
    expect(weighted[0]!.map((b) => b.weight)).toEqual([100, 0]);
  });
});

describe.each(["local", "staging"])(
  "variants of the %s stage the config allows but a policy refuses",
  (stage) => {
    const policiesFailing = async (change: (raw: any) => void) => {
      const resources = policyResources(await renderStage(variant(stage, change)));
      return evaluate(resources, { now: NOW }).filter((f) => f.enforcementLevel === "mandatory");
    };

    it("mid-canary (weight 30) and after a flip (green stable) still pass", async () => {
      expect(await policiesFailing((raw) => (raw.traffic.canaryWeight = 30))).toEqual([]);
      expect(
        await policiesFailing((raw) => {
          raw.traffic.stable = "green";
          delete raw.slots.green.replicas;
          raw.slots.blue.replicas = 0;
        }),
      ).toEqual([]);
    });

    it("an expired flag fails feature-flags-owned-and-current", async () => {
      const findings = await policiesFailing(
        (raw) => (raw.flags["new-checkout-flow"].expires = "2026-01-01"),
      );
      expect(findings.map((f) => [f.policy, f.message])).toEqual([
        [
          "feature-flags-owned-and-current",
          'flag "new-checkout-flow" (owner team-payments) expired on 2026-01-01: remove it from slipway:flags and from the code that reads it',
        ],
      ]);
    });

    it("a flag expiring within 14 days is advisory", async () => {
      const resources = policyResources(
        await renderStage(
          variant(stage, (raw) => (raw.flags["new-checkout-flow"].expires = "2026-01-20")),
        ),
      );
      const findings = evaluate(resources, { now: NOW });
      expect(findings.map((f) => [f.policy, f.enforcementLevel])).toEqual([
        ["feature-flags-expiring-soon", "advisory"],
      ]);
    });

    it("a candidate larger than the stable slot fails stable-slot-fully-scaled", async () => {
      const findings = await policiesFailing((raw) => (raw.slots.green.replicas = 5));
      expect(findings.map((f) => f.policy)).toEqual(["stable-slot-fully-scaled"]);
      expect(findings[0]!.message).toMatch(
        /^stable slot blue \(weight 100, the larger\) runs 2 replica\(s\) while green \(weight 0\) runs 5/,
      );
    });
  },
);

describe("rendered resources edited the way the config never would", () => {
  it("a tag-only image or an extra slot is caught on the rendered shape", async () => {
    const resources = policyResources(await renderStage(stageConfigOf("local")));
    const blue = resources.find((r) => r.name === "checkout-k8s-blue-deployment")!;
    blue.props.spec.template.spec.containers[0].image = "registry.local/checkout:latest";
    const extra = structuredClone(blue);
    extra.name = "checkout-k8s-purple-deployment";
    extra.props.metadata.labels["slipway.dev/slot"] = "purple";
    const findings = evaluate([...resources, extra], { now: NOW });
    expect(findings.map((f) => f.policy).sort()).toEqual([
      "blue-green-slots-present",
      "images-pinned-by-digest",
      "images-pinned-by-digest",
    ]);
  });

  it("an IAM wildcard and a public SSH port are caught on the rendered AWS shape", async () => {
    const resources = policyResources(await renderStage(stageConfigOf("staging")));
    const task = resources.find((r) => r.name === "checkout-aws-identities-task-policy")!;
    const doc = JSON.parse(task.props.policy);
    doc.Statement[0].Action = ["dynamodb:*"];
    task.props.policy = JSON.stringify(doc);
    const sg = resources.find((r) => r.type === "aws:ec2/securityGroup:SecurityGroup")!;
    sg.props.ingress.push({ protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"] });
    const findings = evaluate(resources, { now: NOW });
    expect(findings.map((f) => f.policy).sort()).toEqual(["iam-no-wildcards", "no-public-ingress"]);
  });
});
