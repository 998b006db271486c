import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderedManifests, renderedRouteWeights } from "../../src/pipeline/readBack";
import { StageStack } from "../../src/pipeline/stack";
import { previewPlan } from "../../src/releasePlan";
import { scratchProject, toKubernetesRender, type ScratchProject } from "./support/project";

/** The real engine: CLI, Node.js language host and Kubernetes provider in render mode, file backend. */

/** Changes in a preview, without the unchanged ones. */
const changes = (summary: Record<string, number>) =>
  Object.fromEntries(Object.entries(summary).filter(([k, v]) => k !== "same" && v > 0));

describe("engine: the local stage", () => {
  let project: ScratchProject;
  let stack: StageStack;

  beforeAll(async () => {
    project = scratchProject();
    stack = await StageStack.open({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      env: project.env,
    });
  });
  afterAll(() => project?.cleanup());

  it("previews and deploys; manifests pin both slots by digest and weight the HTTPRoute", async () => {
    const preview = await stack.preview();
    expect(preview.create).toBeGreaterThan(15);
    const up = await stack.up("initial deploy");
    expect(up.changes.create).toBe(preview.create);
    const docs = renderedManifests(project.renderDir("local"));
    const deployments = docs.filter((d) => d.kind === "Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
      "checkout-blue",
      "checkout-green",
    ]);
    for (const d of deployments)
      expect(d.spec.template.spec.containers[0].image).toMatch(/@sha256:[a-f0-9]{64}$/);
    const route = docs.find((d) => d.kind === "HTTPRoute");
    expect(route.apiVersion).toBe("gateway.networking.k8s.io/v1");
    expect(route.spec.rules.at(-1).backendRefs.map((b: any) => [b.name, b.weight])).toEqual([
      ["checkout-blue", 100],
      ["checkout-green", 0],
    ]);
    const outputs = await stack.outputs();
    expect(outputs!.schemaVersion).toBe(1);
    expect(outputs!.weights).toEqual({ blue: 100, green: 0 });
  });

  it("each canary step 0 → 10 → 50 is exactly one in-place update, and the rendered weights follow", async () => {
    for (const weight of [10, 50]) {
      project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = weight));
      const preview = await stack.preview();
      expect(changes(preview)).toEqual({ update: 1 });
      const up = await stack.up(`canary ${weight}`);
      expect(changes(up.changes)).toEqual({ update: 1 });
      expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
        blue: 100 - weight,
        green: weight,
      });
    }
  });

  it("promotion (stable blue → green) replaces no slot resource", async () => {
    project.editStack("local", (c) => {
      c["slipway:traffic"].stable = "green";
      c["slipway:traffic"].canaryWeight = 0;
      delete c["slipway:slots"].green.replicas;
    });
    const preview = await stack.preview();
    expect(preview.replace ?? 0).toBe(0);
    expect(preview.delete ?? 0).toBe(0);
    expect(preview.create ?? 0).toBe(0);
    // The route flips; the green Deployment grows to full size in place.
    expect(changes(preview)).toEqual({ update: 2 });
    await stack.up("promote green");
    expect(renderedRouteWeights(project.renderDir("local"), "checkout")).toEqual({
      blue: 0,
      green: 100,
    });
  });

  it("an app team reads the stage through a real StackReference and gets typed values", async () => {
    const app = await LocalWorkspace.createOrSelectStack(
      { stackName: "dev", workDir: join(project.dir, "examples", "app-team") },
      { envVars: project.env },
    );
    await app.setConfig("app-team:stageStack", { value: "organization/slipway/local" });
    const result = await app.up({ color: "never" });
    const out = result.outputs;
    expect(out.endpoint.value).toBe("gateway://gateway-system/slipway-gateway/");
    expect(out.stableSlot.value).toBe("green");
    expect(out.stableVersion.value).toBe("1.0.0");
    expect(out.candidateShare.value).toBe(0);
    expect(out.schemaVersion.value).toBe(1);
    expect(out.testerHeaderName.secret).toBe(true);
  });

  it("a bad config fails the preview with the validation message and leaves state and outputs unchanged", async () => {
    const before = await stack.stack.exportStack();
    const outputsBefore = await stack.outputs();
    project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 150));
    await expect(stack.preview()).rejects.toThrow(
      /slipway:traffic.canaryWeight: got 150; allowed: an integer from 0 to 100/,
    );
    await expect(stack.up("must not happen")).rejects.toThrow(
      /slipway:traffic.canaryWeight: got 150/,
    );
    const after = await stack.stack.exportStack();
    expect(after.deployment.resources).toEqual(before.deployment.resources);
    expect(await stack.outputs()).toEqual(outputsBefore);
    project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 0));
  });
});

describe("engine: staging and prod on Kubernetes (render mode)", () => {
  let project: ScratchProject;
  beforeAll(() => {
    project = scratchProject();
  });
  afterAll(() => project?.cleanup());

  it("preview with identical resource type sets", async () => {
    const typesOf = async (stage: string) => {
      project.editStack(stage, toKubernetesRender(stage));
      const stack = await StageStack.open({
        stage,
        projectDir: project.dir,
        backendUrl: project.backendUrl,
        env: project.env,
      });
      const types = new Map<string, number>();
      await stack.stack.preview({
        color: "never",
        onEvent: (e) => {
          const meta = e.resourcePreEvent?.metadata;
          if (meta) types.set(meta.type, (types.get(meta.type) ?? 0) + 1);
        },
      });
      return [...types].sort();
    };
    const staging = await typesOf("staging");
    const prod = await typesOf("prod");
    expect(staging.length).toBeGreaterThan(10);
    expect(prod).toEqual(staging);
    expect(existsSync(project.renderDir("staging"))).toBe(false); // a preview renders nothing
  });
});

describe("engine: the tester token", () => {
  let project: ScratchProject;
  beforeAll(() => {
    project = scratchProject();
  });
  afterAll(() => project?.cleanup());

  it("a stack deployed with the SecretToken resource keeps its header: the token moves to a config secret and the next update only deletes that resource", async () => {
    // Deployed as before slipway:testerToken: no StageStack, so no token in the stack file.
    const legacy = await LocalWorkspace.createOrSelectStack(
      { stackName: "local", workDir: project.dir },
      { envVars: project.env },
    );
    await legacy.up({ color: "never" });
    const before = (await legacy.outputs()).testerHeader!;
    expect(before.secret).toBe(true);
    const routeBefore = renderedManifests(project.renderDir("local")).find(
      (d) => d.kind === "HTTPRoute",
    );
    expect(
      (await legacy.exportStack()).deployment.resources.some((r: any) =>
        String(r.type).includes("dynamic"),
      ),
    ).toBe(true);

    // `slipway plan` on it: the first deploy deletes that resource, which no invariant forbids.
    const plan = await previewPlan({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      logDir: project.logDir,
      env: project.env,
      image: `registry.local/checkout@sha256:${"2".repeat(64)}`,
      version: "1.1.0",
    });
    expect(plan.error).toBeUndefined();
    expect(plan.violations).toEqual([]);
    expect(plan.exitCode).toBe(0);

    const stack = await StageStack.open({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      env: project.env,
    });
    const stackFile = readFileSync(join(project.dir, "Pulumi.local.yaml"), "utf8");
    expect(project.readStack("local")["slipway:testerToken"].secure).toMatch(/^v1:/);
    expect(stackFile).not.toContain((before.value as { value: string }).value);

    const up = await stack.up("tester token in config");
    expect(changes(up.changes)).toEqual({ delete: 1 });
    expect(await stack.testerHeader()).toEqual(before.value);
    expect((await legacy.outputs()).testerHeader!.secret).toBe(true);
    expect(
      renderedManifests(project.renderDir("local")).find((d) => d.kind === "HTTPRoute"),
    ).toEqual(routeBefore);
    expect((await stack.resources()).some((r) => r.type.includes("dynamic"))).toBe(false);
  });
});
