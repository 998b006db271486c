import { describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import type { StageState } from "../../../src/pipeline/machine";
import { planSteps } from "../../../src/pipeline/plan";
import {
  changesAgainstState,
  changesBetween,
  checkInvariants,
  diffPaths,
  planTransitions,
  snapshotOf,
  summarize,
  timeBudget,
  type TransitionPreview,
} from "../../../src/releasePlan";

const img = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const start: StageState = {
  stable: "blue",
  canaryWeight: 0,
  slots: {
    blue: { image: img("1"), version: "1.0.0" },
    green: { image: img("1"), version: "1.0.0", replicas: 0 },
  },
};
const record: ReleaseRecord = {
  id: "r-20261201-100000-ab12",
  phase: "deploying",
  candidateSlot: "green",
  artifact: { image: img("2"), version: "1.1.0" },
  previous: { slot: "blue", image: img("1"), version: "1.0.0" },
  position: 0,
  steps: 4,
  startedAt: "2026-12-01T10:00:00Z",
  updatedAt: "2026-12-01T10:00:00Z",
};
const plan = planSteps({
  steps: [
    { setWeight: 10 },
    { pause: { duration: "30s" } },
    { analysis: { count: 2, interval: "1m" } },
    { setWeight: 50 },
    { pause: {} },
  ],
});

describe("the release plan's transitions", () => {
  it("lists deploy, each setWeight, promote, scale down, and the rollback from each point, with weights", () => {
    const t = planTransitions(start, record, plan, 2, "2026-12-01T10:00:00Z");
    expect(
      t.map((x) => `${x.label} <- ${x.from ?? "stage"} ${x.weights.blue}/${x.weights.green}`),
    ).toEqual([
      "deploy <- stage 100/0",
      "rollback after deploy <- deploy 100/0",
      "step 1 setWeight 10 <- deploy 90/10",
      "rollback after step 1 setWeight 10 <- step 1 setWeight 10 100/0",
      "step 4 setWeight 50 <- step 1 setWeight 10 50/50",
      "rollback after step 4 setWeight 50 <- step 4 setWeight 50 100/0",
      "promote <- step 4 setWeight 50 0/100",
      "rollback after promote <- promote 100/0",
      "scale down <- promote 0/100",
    ]);
    expect(t[0]!.state.slots.green).toEqual({ image: img("2"), version: "1.1.0", replicas: 2 });
    expect(t.at(-1)!.state.slots.blue.replicas).toBe(0);
    // The flip back keeps the candidate running at full size.
    expect(t[7]!.state.stable).toBe("blue");
    expect(t[7]!.state.slots.green.replicas).toBeUndefined();
  });

  it("adds up the time budget against the progress deadline", () => {
    expect(timeBudget(plan, { count: 5, interval: 60 }, 600, 100)).toEqual({
      pauseSeconds: 30,
      approvalPauses: 1,
      analysisSeconds: 120,
      scaleDownDelaySeconds: 600,
      canarySeconds: 150,
      progressDeadlineSeconds: 100,
      fitsDeadline: false,
    });
  });
});

describe("changes and invariants", () => {
  const route =
    "urn:pulumi:local::slipway::slipway:stage:ServiceStage$kubernetes:gateway.networking.k8s.io/v1:HTTPRoute::checkout";
  const dep = "urn:pulumi:local::slipway::kubernetes:apps/v1:Deployment::checkout-green";
  const step = (urn: string, op: string, inputs: any, extra: any = {}) => ({
    urn,
    op,
    type:
      urn === dep
        ? "kubernetes:apps/v1:Deployment"
        : "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    new: { inputs },
    ...extra,
  });
  const routeAt = (w: number) => ({
    spec: { rules: [{ backendRefs: [{ weight: 100 - w }, { weight: w }] }] },
  });
  const depWith = (labels: any) => ({ metadata: { labels }, spec: { replicas: 2 } });

  it("diffs JSON leaves by path", () => {
    expect(diffPaths({ a: [1, { b: 2 }], c: 1 }, { a: [1, { b: 3 }], d: 1 })).toEqual([
      "a[1].b",
      "c",
      "d",
    ]);
  });

  it("takes the deploy from the engine, later transitions from the inputs planned before them", () => {
    const deploy = snapshotOf([
      step(dep, "update", depWith({ slot: "green" }), {
        detailedDiff: { "spec.template.spec.containers[0].image": {} },
      }),
      step(route, "same", routeAt(0)),
      {
        urn: "urn:pulumi:local::slipway::pulumi:pulumi:Stack::slipway-local",
        op: "same",
        type: "pulumi:pulumi:Stack",
      },
    ]);
    expect(changesAgainstState(deploy).map((c) => `${c.op} ${c.name} ${c.paths}`)).toEqual([
      "update checkout-green spec.template.spec.containers[0].image",
    ]);
    const sw = snapshotOf([
      step(dep, "update", depWith({ slot: "green" })),
      step(route, "update", routeAt(10)),
    ]);
    expect(changesBetween(deploy, sw).map((c) => `${c.op} ${c.name} ${c.paths}`)).toEqual([
      "update checkout spec.rules[0].backendRefs[0].weight,spec.rules[0].backendRefs[1].weight",
    ]);
  });

  it("names the invariant a weight-dependent Deployment label breaks", () => {
    const at = (w: number) =>
      snapshotOf([
        step(dep, "update", depWith({ weight: String(w) })),
        step(route, "update", routeAt(w)),
      ]);
    const planned = planTransitions(
      start,
      record,
      planSteps({ steps: [{ setWeight: 10 }] }),
      2,
      "t",
    );
    const previews: TransitionPreview[] = planned.map((t, i) => {
      const changes =
        i === 0
          ? changesAgainstState(at(0))
          : changesBetween(at(planned[i - 1]!.weights.green), at(t.weights.green));
      return {
        label: t.label,
        kind: t.kind,
        weights: t.weights,
        changes,
        summary: summarize(changes),
      };
    });
    const violations = checkInvariants(previews, planned);
    expect(violations.map((v) => `${v.invariant} @ ${v.transition}`)).toContain(
      "canary-step-changes-only-routing @ step 1 setWeight 10",
    );
    expect(
      violations.find((v) => v.invariant === "canary-step-changes-only-routing")!.detail,
    ).toMatch(/update kubernetes:apps\/v1:Deployment checkout-green \(metadata\.labels\.weight\)/);
  });

  it("refuses a replace, a delete, and a create after the deploy", () => {
    const planned = planTransitions(start, record, [], 2, "t");
    const previews: TransitionPreview[] = planned.map((t) => ({
      label: t.label,
      kind: t.kind,
      weights: t.weights,
      changes:
        t.kind === "promote"
          ? [
              {
                op: "replace",
                type: "kubernetes:apps/v1:Deployment",
                name: "checkout-green",
                urn: dep,
                paths: ["metadata.name"],
              },
              { op: "create", type: "kubernetes:core/v1:Service", name: "x", urn: "u", paths: [] },
            ]
          : [],
      summary: {},
    }));
    expect(checkInvariants(previews, planned).map((v) => v.invariant)).toEqual([
      "slots-never-replaced",
      "creates-only-on-deploy",
    ]);
  });
});

describe("a stage first brought up by a hand-run pulumi up", () => {
  it("its legacy tester-token resource may be deleted by the deploy, and by nothing else", () => {
    const planned = planTransitions(start, record, [], 2, "t");
    const token = {
      op: "delete" as const,
      type: "pulumi-nodejs:dynamic/slipway:SecretToken",
      name: "checkout-tester-header",
      urn: "urn:pulumi:local::slipway::pulumi-nodejs:dynamic/slipway:SecretToken::checkout-tester-header",
      paths: [],
    };
    const previews = (at: string): TransitionPreview[] =>
      planned.map((t) => ({
        label: t.label,
        kind: t.kind,
        weights: t.weights,
        changes: t.kind === at ? [token] : [],
        summary: {},
      }));
    expect(checkInvariants(previews("deploy"), planned)).toEqual([]);
    expect(checkInvariants(previews("promote"), planned).map((v) => v.invariant)).toEqual([
      "slots-never-replaced",
    ]);
  });
});

describe("slipway plan's refusals and output", () => {
  it("refuses a tag-only image before the engine starts (exit 6)", async () => {
    const { previewPlan } = await import("../../../src/releasePlan");
    const { ROOT } = await import("../support/harness");
    const report = await previewPlan({
      stage: "local",
      projectDir: ROOT,
      image: "registry.local/checkout:1.1",
      version: "1.1.0",
    });
    expect(report.exitCode).toBe(6);
    expect(report.refused).toMatch(/--image.*not pinned by digest/);
  });

  it("prints each transition's weights and changes, the budget, and the broken invariant", async () => {
    const { formatPlan } = await import("../../../src/releasePlan");
    const text = formatPlan({
      stage: "local",
      exitCode: 6,
      artifact: { image: img("2"), version: "1.1.0", candidateSlot: "green" },
      transitions: [
        {
          label: "step 1 setWeight 10",
          kind: "setWeight",
          weights: { blue: 90, green: 10 },
          changes: [
            {
              op: "update",
              type: "kubernetes:apps/v1:Deployment",
              name: "x",
              urn: "u",
              paths: ["metadata.labels.w"],
            },
          ],
          summary: { update: 1 },
        },
      ],
      budget: timeBudget(plan, { count: 1, interval: 60 }, 600, 1800),
      violations: [
        {
          invariant: "canary-step-changes-only-routing",
          transition: "step 1 setWeight 10",
          detail: "update kubernetes:apps/v1:Deployment x",
        },
      ],
    });
    expect(text).toContain("step 1 setWeight 10  blue  90 / green  10  update 1");
    expect(text).toContain("      update kubernetes:apps/v1:Deployment x: metadata.labels.w");
    expect(text).toMatch(/time budget: pauses 30s \+ 1 until approved, analyses 120s/);
    expect(text).toContain(
      "✗ invariant canary-step-changes-only-routing broken by step 1 setWeight 10",
    );
  });
});

describe("provider inputs", () => {
  it("a provider whose inputs follow the config changes only when the engine says so", () => {
    const urn = "urn:pulumi:local::slipway::pulumi:providers:pulumi-nodejs::default";
    const at = (release: string, op: string) =>
      snapshotOf([
        {
          urn,
          op,
          type: "pulumi:providers:pulumi-nodejs",
          new: { inputs: { "slipway:release": release } },
        },
      ]);
    expect(changesBetween(at("a", "same"), at("b", "same"))).toEqual([]);
    expect(changesBetween(at("a", "same"), at("b", "update")).map((c) => c.op)).toEqual(["update"]);
  });
});

describe("masked (secret-bearing) inputs", () => {
  const urn =
    "urn:pulumi:local::slipway::kubernetes:gateway.networking.k8s.io/v1:HTTPRoute::checkout";
  const type = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute";
  const at = (op: string, diff: string[] = []) =>
    snapshotOf([
      {
        urn,
        op,
        type,
        new: { inputs: { spec: "[secret]" } },
        detailedDiff: Object.fromEntries(diff.map((d) => [d, {}])),
      },
    ]);
  const w = ["spec.rules[1].backendRefs[0].weight"];
  it("takes the engine's diff where one side equals the stage, and infers the route from the weights otherwise", () => {
    expect(changesBetween(at("same"), at("update", w)).map((c) => c.paths)).toEqual([w]);
    expect(changesBetween(at("update", w), at("same")).map((c) => c.paths)).toEqual([w]);
    expect(changesBetween(at("update", w), at("update", w), { routingChanged: true })).toHaveLength(
      1,
    );
    expect(changesBetween(at("update", w), at("update", w), { routingChanged: false })).toEqual([]);
  });
});
