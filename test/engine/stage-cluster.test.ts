import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClusterInfo, clusterDown, clusterUp } from "../../src/cluster";
import { KubeClient, kubePaths } from "../../src/kube/client";
import { ReleaseLog } from "../../src/pipeline/log";
import { release, type ReleaseOptions } from "../../src/pipeline/release";
import type { PipelineEvent } from "../../src/domain";
import { KubernetesApiReadBack } from "../../src/pipeline/readBack";
import { StageStack } from "../../src/pipeline/stack";
import { sendRequests } from "../../src/rehearsal/load";
import { PidFile } from "../../src/processes";
import { type Artifact, LocalRegistry } from "../../src/rehearsal/registry";
import { buildService } from "../../src/rehearsal/rehearse";
import { liveSource, servedBetween, SlotSupervisor } from "../../src/rehearsal/supervisor";
import { REPO, scratchProject, toCluster, type ScratchProject } from "./support/project";

/**
 * The local stage applied to a live cluster (kube-apiserver on kine, the
 * controller manager, scheduler, kwok's fake node, Traefik as the Gateway):
 * the Kubernetes provider creates every object for real with its readiness
 * awaits, slot processes listen on their Services' ClusterIPs, traffic goes
 * through Traefik, and weights are read back from the API server.
 * One cluster for the file, in its own state directory.
 */

const NAMESPACE = "checkout-local";
const changes = (summary: Record<string, number>) =>
  Object.fromEntries(Object.entries(summary).filter(([k, v]) => k !== "same" && v > 0));

describe("engine: the local stage on a live cluster", () => {
  let stateDir: string;
  let info: ClusterInfo;
  let project: ScratchProject;
  let stack: StageStack;
  let kube: KubeClient;
  let supervisor: SlotSupervisor;
  let images: Record<"baseline" | "candidate" | "next", Artifact>;
  const routePath = kubePaths.httpRoute(NAMESPACE, "checkout");

  /** `slipway release` of 1.2.0 on this stage, probed through the Gateway, with `extra` options. */
  const releaseNext = (extra: Partial<ReleaseOptions>) =>
    release({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      logDir: project.logDir,
      env: project.env,
      image: images.next.image,
      version: "1.2.0",
      smokeUrl: info.gatewayUrl,
      ...extra,
    });

  /** What the services serve of `count` requests sent through the Gateway. */
  const splitThroughGateway = async (count: number) => {
    const before = await supervisor.servedSoFar();
    const sent = await sendRequests({ url: `${info.gatewayUrl}/work`, count, concurrency: 8 });
    const served = servedBetween(before, await supervisor.servedSoFar());
    return { sent, served };
  };

  /** Until Traefik has taken the route's current generation (it writes it into the route's status). */
  const gatewayHasRoute = async () => {
    for (let i = 0; i < 300; i++) {
      const route = await kube.get(routePath);
      const parent = route.status?.parents?.[0];
      const accepted = parent?.conditions?.find((c: any) => c.type === "Accepted");
      if (accepted?.status === "True" && accepted.observedGeneration === route.metadata.generation)
        return route;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("Traefik never accepted the HTTPRoute's current generation");
  };

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-"));
    project = scratchProject("cluster", { local: "cluster" });
    process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
    const binary = await buildService(REPO, "go", () => {});
    const registry = new LocalRegistry(join(project.root, "registry"));
    const push = (version: string) =>
      registry.pushImage({
        service: "checkout",
        runtime: "go",
        binaryPath: binary.path,
        version,
        revision: "0000000000000000000000000000000000000001",
      });
    images = { baseline: push("1.0.0"), candidate: push("1.1.0"), next: push("1.2.0") };
    info = await clusterUp({ projectDir: project.dir, stateDir });
    project.editStack("local", (c) => {
      toCluster(info.kubeconfig)(c);
      const slot = { image: images.baseline.image, version: "1.0.0" };
      c["slipway:slots"] = { blue: slot, green: { ...slot, replicas: 0 } };
    });
    stack = await StageStack.open({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      env: project.env,
    });
    kube = KubeClient.fromKubeconfig(info.kubeconfig);
    supervisor = new SlotSupervisor({
      source: liveSource({
        client: kube,
        namespace: NAMESPACE,
        service: "checkout",
        routeName: "checkout",
      }),
      service: "checkout",
      readyPath: "/readyz",
      metricsPath: "/metrics",
      registry,
      pids: new PidFile(join(project.root, "pids.json")),
      pollMs: 300,
    });
    supervisor.start();
  });
  afterAll(async () => {
    await supervisor?.stop();
    if (info) await clusterDown({ projectDir: project.dir, stateDir });
    project?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("initial up creates every object through the API; the Gateway accepts the HTTPRoute", async () => {
    const up = await stack.up("initial deploy");
    expect(up.changes.create).toBeGreaterThan(15);
    const deployment = await kube.get(`${kubePaths.deployments(NAMESPACE)}/checkout-blue`);
    // The provider awaited readiness: kwok's pods are Ready, the Deployment available.
    expect(deployment.status.availableReplicas).toBe(2);
    expect(deployment.spec.template.spec.containers[0].image).toBe(images.baseline.image);
    for (const slot of ["blue", "green"]) {
      const svc = await kube.get(`${kubePaths.services(NAMESPACE)}/checkout-${slot}`);
      expect(svc.spec.clusterIP).toMatch(/^127\.100\.\d+\.\d+$/);
    }
    for (const path of [
      `/apis/networking.k8s.io/v1/namespaces/${NAMESPACE}/networkpolicies/checkout-default-deny`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/roles`,
      `/api/v1/namespaces/${NAMESPACE}/configmaps/checkout-flags`,
    ])
      await expect(kube.get(path)).resolves.toBeDefined();
    // The parentRef names the Gateway the cluster made, and Traefik resolved both backends.
    const route = await gatewayHasRoute();
    const parent = route.status.parents[0];
    expect(parent.parentRef).toMatchObject({
      name: "slipway-gateway",
      namespace: "gateway-system",
    });
    expect(parent.conditions.find((c: any) => c.type === "ResolvedRefs").status).toBe("True");
    const outputs = (await stack.outputs())!;
    expect(outputs.routing.id).toBe(`${NAMESPACE}/checkout`);
    expect(await new KubernetesApiReadBack(kube, "checkout").read(outputs)).toEqual({
      blue: 100,
      green: 0,
    });
  });

  it("a bad config is refused before any change reaches the cluster", async () => {
    const before = (await kube.get(routePath)).metadata.resourceVersion;
    project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 150));
    await expect(stack.preview()).rejects.toThrow(/slipway:traffic\.canaryWeight: got 150/);
    await expect(stack.up("bad")).rejects.toThrow(/slipway:traffic\.canaryWeight: got 150/);
    project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = 0));
    expect((await kube.get(routePath)).metadata.resourceVersion).toBe(before);
  });

  it("canary steps 0 → 10 → 50: each one in-place update, read back from the API, split by Traefik within 3 points", async () => {
    // The candidate into green at full size (the pipeline's deploy step), then the steps.
    project.editStack("local", (c) => {
      c["slipway:slots"].green = { image: images.candidate.image, version: "1.1.0" };
    });
    await stack.up("deploy candidate");
    await supervisor.sync();
    expect(supervisor.process("green")?.version).toBe("1.1.0");
    const readBack = new KubernetesApiReadBack(kube, "checkout");
    for (const weight of [0, 10, 50]) {
      if (weight > 0) {
        project.editStack("local", (c) => (c["slipway:traffic"].canaryWeight = weight));
        expect(changes(await stack.preview())).toEqual({ update: 1 });
        expect(changes((await stack.up(`canary ${weight}`)).changes)).toEqual({ update: 1 });
      }
      expect(await readBack.read((await stack.outputs())!)).toEqual({
        blue: 100 - weight,
        green: weight,
      });
      await gatewayHasRoute();
      const { sent, served } = await splitThroughGateway(1000);
      expect(sent.ok).toBe(1000);
      const total = served.blue.total + served.green.total;
      expect(total).toBe(1000);
      const share = (100 * served.green.total) / total;
      console.log(
        `weight ${weight}: green served ${served.green.total} of ${total} (${share.toFixed(1)}%)`,
      );
      expect(Math.abs(share - weight)).toBeLessThanOrEqual(3);
    }
  });

  it("the tester header reaches the candidate through the Gateway at any weight", async () => {
    const header = (await stack.testerHeader())!;
    const res = await sendRequests({
      url: `${info.gatewayUrl}/version`,
      count: 20,
      headers: { [header.name]: header.value },
    });
    expect(res.ok).toBe(20);
    expect(res.bodies.every((b) => JSON.parse(b).slot === "green")).toBe(true);
  });

  it("promotion (stable blue → green) replaces, creates and deletes nothing", async () => {
    project.editStack("local", (c) => {
      c["slipway:traffic"].stable = "green";
      c["slipway:traffic"].canaryWeight = 0;
    });
    const preview = await stack.preview();
    expect(preview.replace ?? 0).toBe(0);
    expect(preview.create ?? 0).toBe(0);
    expect(preview.delete ?? 0).toBe(0);
    expect(changes((await stack.up("promote green")).changes)).toEqual({ update: 1 });
    expect(
      await new KubernetesApiReadBack(kube, "checkout").read((await stack.outputs())!),
    ).toEqual({ blue: 0, green: 100 });
  });

  it("drift: weights patched through the API during a pause are caught before the next step; traffic goes back to the known-good slot", async () => {
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [{ setWeight: 20 }, { pause: { duration: "2s" } }, { setWeight: 50 }],
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 600,
      };
    });
    const events: PipelineEvent[] = [];
    let patched = false;
    const result = await releaseNext({
      smokeUrl: undefined,
      report: (e) => events.push(e),
      sleep: async (ms) => {
        if (!patched) {
          // Someone moves the traffic by hand: candidate blue to 90.
          patched = true;
          const route = await kube.get(routePath);
          const rule = route.spec.rules.length - 1;
          const index = (name: string) =>
            route.spec.rules[rule].backendRefs.findIndex((b: any) => b.name === name);
          await kube.jsonPatch(routePath, [
            {
              op: "replace",
              path: `/spec/rules/${rule}/backendRefs/${index("checkout-blue")}/weight`,
              value: 90,
            },
            {
              op: "replace",
              path: `/spec/rules/${rule}/backendRefs/${index("checkout-green")}/weight`,
              value: 10,
            },
          ]);
        }
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    expect(patched).toBe(true);
    expect(result.outcome).toBe("rolledBack");
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    const drifted = records.find((r) => r.event === "weights.drifted");
    expect(drifted?.weights).toEqual({ blue: 90, green: 10 });
    // No step after the drift: setWeight 50 never ran.
    expect(
      records
        .filter((r) => r.event === "update.succeeded")
        .map((r) => (r.figures as any).transition),
    ).toEqual(["deploy", "setWeight", "rollback"]);
    expect(
      await new KubernetesApiReadBack(kube, "checkout").read((await stack.outputs())!),
    ).toEqual({ blue: 0, green: 100 });
    await gatewayHasRoute();
    const { served } = await splitThroughGateway(300);
    expect(served).toMatchObject({ blue: { total: 0 }, green: { total: 300 } });
  });

  it("a candidate scaled to 0 in a pause is never promoted: the next read finds it not serving and rolls back; traffic ends on the stable slot", async () => {
    // Stable green (1.1.0) since the promotion above; the candidate goes into blue.
    const deploymentPath = `${kubePaths.deployments(NAMESPACE)}/checkout-blue`;
    let scaled = false;
    const result = await releaseNext({
      sleep: async (ms) => {
        if (!scaled) {
          // Someone scales the candidate's Deployment to 0 during the first pause.
          scaled = true;
          await kube.mergePatch(deploymentPath, { spec: { replicas: 0 } });
        }
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    expect(scaled).toBe(true);
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /not serving before step 3: .*blue: Deployment checkout-blue is scaled to 0, the stack declares 2/,
    );
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    expect(records.some((r) => r.event === "serving.failed")).toBe(true);
    expect(records.some((r) => r.event === "release.promoted")).toBe(false);
    expect(
      records
        .filter((r) => r.event === "update.succeeded")
        .map((r) => (r.figures as any).transition),
    ).toEqual(["deploy", "setWeight", "rollback"]);
    // Traffic on the stable slot, which serves: read back from the API server and through the Gateway.
    expect(
      await new KubernetesApiReadBack(kube, "checkout").read((await stack.outputs())!),
    ).toEqual({ blue: 0, green: 100 });
    const green = await kube.get(`${kubePaths.deployments(NAMESPACE)}/checkout-green`);
    expect(green.status.readyReplicas).toBe(2);
    await gatewayHasRoute();
    const { sent, served } = await splitThroughGateway(200);
    expect(sent.ok).toBe(200);
    expect(served).toMatchObject({ blue: { total: 0 }, green: { total: 200 } });
    // The rollback changed the route only: the hand-scaled candidate stays at 0 (nothing sends
    // it traffic). The next release's deploy reads the stage back first and puts it back: the
    // case below starts from it.
    expect((await kube.get(deploymentPath)).spec.replicas).toBe(0);
  });

  /** Releases 1.2.0 into blue with a pause in which `edit` changes the route; returns the result. */
  const releaseWithRouteEdit = async (edit: () => Promise<void>) => {
    let edited = false;
    const result = await releaseNext({
      sleep: async (ms) => {
        if (!edited) {
          edited = true;
          await edit();
        }
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    expect(edited, JSON.stringify(result)).toBe(true);
    return result;
  };

  /** After a rollback: the route is the stack's again, whole, and what serves is the stable slot. */
  const expectRouteRestored = async () => {
    const route = await kube.get(routePath);
    // The tester rule and the weighted rule, each with its declared backends and nothing else.
    expect(route.spec.rules).toHaveLength(2);
    expect(route.spec.rules[1].backendRefs.map((b: any) => `${b.name}:${b.weight}`)).toEqual([
      "checkout-blue:0",
      "checkout-green:100",
    ]);
    expect(
      await new KubernetesApiReadBack(kube, "checkout").read((await stack.outputs())!),
    ).toEqual({ blue: 0, green: 100 });
    await gatewayHasRoute();
    const { sent, served } = await splitThroughGateway(200);
    expect(sent.ok).toBe(200);
    expect(served).toMatchObject({ blue: { total: 0 }, green: { total: 200 } });
  };

  it("an added backendRef and an added rule are drift (the whole route is compared): rolled back, and the rollback takes the route back to the stack's", async () => {
    // Stable green; the candidate goes into blue, which the case above left scaled to 0 by hand:
    // the deploy reads the stage back first (--refresh) and puts blue back at its size, so the
    // release gets as far as its pause. Then someone adds a second backend for the candidate
    // (weight 900: most requests) and a rule of their own, weights left alone.
    const blueReplicas: number[] = [];
    const result = await releaseWithRouteEdit(async () => {
      blueReplicas.push(
        (await kube.get(`${kubePaths.deployments(NAMESPACE)}/checkout-blue`)).spec.replicas,
      );
      const route = await kube.get(routePath);
      const last = route.spec.rules.length - 1;
      await kube.jsonPatch(routePath, [
        {
          op: "add",
          path: `/spec/rules/${last}/backendRefs/-`,
          value: { kind: "Service", name: "checkout-blue", port: 80, weight: 900 },
        },
        {
          op: "add",
          path: "/spec/rules/-",
          value: {
            matches: [{ path: { type: "PathPrefix", value: "/admin" } }],
            backendRefs: [{ kind: "Service", name: "checkout-blue", port: 80 }],
          },
        },
      ]);
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(/the route differs from the stack: /);
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    const drifted = records.find((r) => r.event === "weights.drifted");
    const differences = ((drifted?.figures as any)?.differences ?? []).join("\n");
    expect(differences).toMatch(/rules: declared 2, found 3/);
    expect(differences).toMatch(/rule 2 names a backendRef more than once/);
    expect(blueReplicas).toEqual([2]);
    expect(records.some((r) => r.event === "release.promoted")).toBe(false);
    await expectRouteRestored();
  });

  it("a route deleted in a pause: the release rolls back, and the rollback creates the route again", async () => {
    const result = await releaseWithRouteEdit(async () => {
      await kube.delete(routePath);
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(/no HTTPRoute checkout-local\/checkout in the cluster/);
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    expect(
      records
        .filter((r) => r.event === "update.succeeded")
        .map((r) => (r.figures as any).transition),
    ).toEqual(["deploy", "setWeight", "rollback"]);
    await expectRouteRestored();
    // The stage is whole again: a plain read of the stack's routing resource finds it.
    expect((await stack.outputs())!.release?.phase).toBe("rolledBack");
  });

  it("the Gateway killed in a pause: nothing is promoted, the release rolls back; once the Gateway is back, traffic is on the stable slot", async () => {
    const traefik = info.pids.traefik!;
    const result = await releaseWithRouteEdit(async () => {
      process.kill(traefik, "SIGKILL");
    });
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(/the Gateway did not serve/);
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    expect(records.some((r) => r.event === "serving.failed")).toBe(true);
    expect(records.some((r) => r.event === "release.promoted")).toBe(false);
    // The same command brings the Gateway back (the other parts kept running, so its port too).
    info = await clusterUp({ projectDir: project.dir, stateDir });
    expect(info.started).toEqual(["traefik"]);
    await expectRouteRestored();
  });

  it("the stable slot's image changed by hand in a pause: never promoted; the rollback puts the stable Deployment back as the stack declares it", async () => {
    // Stable green runs 1.1.0; someone sets its image to 1.0.0 while 1.2.0 canaries in blue.
    const greenPath = `${kubePaths.deployments(NAMESPACE)}/checkout-green`;
    const result = await releaseWithRouteEdit(async () => {
      await kube.jsonPatch(greenPath, [
        {
          op: "replace",
          path: "/spec/template/spec/containers/0/image",
          value: images.baseline.image,
        },
      ]);
    });
    expect(result.outcome, result.reason).toBe("rolledBack");
    expect(result.reason).toMatch(
      /green: Deployment checkout-green runs \S+, the stack declares \S+/,
    );
    const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
    expect(records.some((r) => r.event === "release.promoted")).toBe(false);
    const green = await kube.get(greenPath);
    expect(green.spec.template.spec.containers[0].image).toBe(images.candidate.image);
    await expectRouteRestored();
  });
  it("an env edit in the stack file during a pause is refused: the step and the rollback change the route only, the stable's pods are not rolled", async () => {
    // Stable green (1.1.0); 1.2.0 canaries in blue.
    const greenPath = `${kubePaths.deployments(NAMESPACE)}/checkout-green`;
    const greenBefore = await kube.get(greenPath);
    const greenPid = supervisor.process("green")?.child.pid;
    expect(greenPid).toBeDefined();
    try {
      const result = await releaseWithRouteEdit(async () => {
        project.editStack("local", (c) => {
          c["slipway:service"].env = { ...c["slipway:service"].env, GREETING: "mid-canary" };
        });
      });
      expect(result.outcome, result.reason).toBe("rolledBack");
      expect(result.reason).toMatch(/slipway:service\.env\.GREETING/);
      const records = ReleaseLog.forStage(project.logDir, "local").forRelease(result.releaseId!);
      const updates = records.filter((r) => r.event === "update.succeeded");
      expect(updates.map((u) => (u.figures as any).transition)).toEqual([
        "deploy",
        "setWeight",
        "rollback",
      ]);
      // The rollback over the edit: the route alone (it does not re-apply the stable slot then).
      expect((updates[2]!.figures as any).repaired).toBeUndefined();
      expect(records.filter((r) => r.event === "config.changed")).toHaveLength(1);
      // The stable Deployment was never updated, and its process never restarted.
      const greenAfter = await kube.get(greenPath);
      expect(greenAfter.metadata.generation).toBe(greenBefore.metadata.generation);
      expect(JSON.stringify(greenAfter.spec)).not.toContain("mid-canary");
      expect(supervisor.process("green")?.child.pid).toBe(greenPid);
      await expectRouteRestored();
    } finally {
      project.editStack("local", (c) => {
        delete c["slipway:service"].env.GREETING;
      });
    }
  });

  it("the route deleted after promotion: never promoted over it, the scale-down is held; --resume creates the route again and completes", async () => {
    // Stable green runs 1.1.0; 1.2.0 canaries in blue and is promoted, then the route is deleted
    // while the release waits out its scale-down delay.
    project.editStack("local", (c) => {
      c["slipway:canary"] = {
        steps: [{ setWeight: 50 }],
        // Long enough to outlast the read-backs after the promotion; the test's sleep does not wait.
        scaleDownDelaySeconds: 60,
        progressDeadlineSeconds: 600,
      };
    });
    let promoted = false;
    let deleted = false;
    const run = (resume: boolean) =>
      releaseNext({
        ...(resume ? { resume: true } : {}),
        report: (e) => {
          if (e.type === "update" && e.phase === "succeeded" && /promote/.test(e.message))
            promoted = true;
        },
        sleep: async (ms) => {
          if (promoted) {
            // The scale-down delay: the route goes, and the delay is not waited out.
            if (!deleted) await kube.delete(routePath);
            deleted = true;
            return;
          }
          await new Promise((r) => setTimeout(r, ms));
        },
      });
    const paused = await run(false);
    expect(deleted, JSON.stringify(paused)).toBe(true);
    expect(paused.outcome, paused.reason).toBe("paused");
    expect(paused.reason).toMatch(
      /^the route could not be read back: .*no HTTPRoute checkout-local\/checkout in the cluster.* after promotion: the scale-down of green is held; slipway release --resume puts the route back/,
    );
    const records = () =>
      ReleaseLog.forStage(project.logDir, "local").forRelease(paused.releaseId!);
    expect(records().some((r) => r.event === "release.scaledDown")).toBe(false);
    // The old stable kept its pods: a rollback could still flip back to it.
    const green = await kube.get(`${kubePaths.deployments(NAMESPACE)}/checkout-green`);
    expect(green.spec.replicas).toBe(2);

    const resumed = await run(true);
    expect(resumed.outcome, resumed.reason).toBe("promoted");
    const restore = records().find(
      (r) => r.event === "update.succeeded" && (r.figures as any).transition === "restoreRoute",
    );
    expect(restore, "a restoreRoute update recorded").toBeDefined();
    expect(records().some((r) => r.event === "release.scaledDown")).toBe(true);
    // The route is the stack's again, and the Gateway sends everything to the new stable.
    const route = await kube.get(routePath);
    expect(route.spec.rules[1].backendRefs.map((b: any) => `${b.name}:${b.weight}`)).toEqual([
      "checkout-blue:100",
      "checkout-green:0",
    ]);
    await gatewayHasRoute();
    const { sent, served } = await splitThroughGateway(200);
    expect(sent.ok).toBe(200);
    expect(served).toMatchObject({ blue: { total: 200 }, green: { total: 0 } });
  });
});
