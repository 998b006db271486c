import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReleaseRecord } from "../../../src/config/schema";
import type { PlanStep } from "../../../src/domain";
import { KubeApiError, type KubeClient } from "../../../src/kube/client";
import { NotServingError, RoutingNotFoundError } from "../../../src/pipeline/errors";
import {
  nextState,
  runMachine,
  type Effects,
  type StageState,
  type Transition,
} from "../../../src/pipeline/machine";
import { KubernetesServing, servingSlots } from "../../../src/pipeline/serving";

/** Issue 25: a release never promotes into, or scales down towards, a slot that does not serve. */
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const plan: PlanStep[] = [
  { kind: "setWeight", weight: 10 },
  { kind: "pause", seconds: 5, untilApproved: false },
  { kind: "setWeight", weight: 50 },
];

function deploying(): StageState {
  const record: ReleaseRecord = {
    id: "r-test",
    phase: "deploying",
    candidateSlot: "green",
    artifact: { image: image("b"), version: "2.0.0" },
    previous: { slot: "blue", image: image("a"), version: "1.0.0" },
    position: 0,
    steps: plan.length,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
  return {
    stable: "blue",
    canaryWeight: 0,
    slots: {
      blue: { image: image("a"), version: "1.0.0" },
      green: { image: image("a"), version: "1.0.0", replicas: 0 },
    },
    release: record,
  };
}

/** Effects whose serving check fails from the moment `failWhen` says so. */
function harness(failWhen: (state: StageState, when: string) => boolean) {
  const trail: string[] = [];
  const fx: Effects = {
    async apply(_next, t: Transition) {
      trail.push(`apply ${t.kind}${t.kind === "setWeight" ? ` ${t.weight}` : ""}`);
    },
    async verify() {},
    async serving(state, when) {
      if (failWhen(state, when)) {
        trail.push(`not serving ${when}`);
        throw new NotServingError(when, [
          "green: Deployment checkout-green has 0/2 ready replicas",
        ]);
      }
    },
    async smoke() {
      return { ok: true, detail: "" };
    },
    async analyse() {
      return { verdict: "pass", reasons: [] };
    },
    async sleep() {
      trail.push("sleep");
    },
    async approved() {
      return false;
    },
    note() {},
    now: () => 0,
  };
  return { fx, trail };
}

const input = (state: StageState) => ({
  state,
  plan,
  fullReplicas: 2,
  smokeCheck: false,
  scaleDownDelaySeconds: 0,
  progressDeadlineSeconds: 3600,
  inconclusiveRetries: 0,
});

describe("the machine answers a slot that does not serve", () => {
  it("a candidate that stops serving in a pause is rolled back before the next step: no promotion", async () => {
    let slept = false;
    // Green's pods are gone from the pause on: it fails the check wherever it must serve.
    const { fx, trail } = harness((state, when) => {
      if (when.startsWith("before step 3")) slept = true;
      return slept && servingSlots(state).includes("green");
    });
    const result = await runMachine(input(deploying()), fx);
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /^not serving before step 3: green: Deployment checkout-green has 0\/2 ready/,
    );
    expect(trail).toEqual([
      "apply deploy",
      "apply setWeight 10",
      "sleep",
      "not serving before step 3",
      "apply rollback",
    ]);
    expect(result.state.canaryWeight).toBe(0);
    expect(result.state.stable).toBe("blue");
  });

  it("is probed right before the flip: a failure there rolls back instead of promoting", async () => {
    const { fx, trail } = harness((_s, when) => when === "before promotion");
    const result = await runMachine(input(deploying()), fx);
    expect(result.outcome).toBe("rolledBack");
    expect(trail).not.toContain("apply promote");
    expect(trail.slice(-2)).toEqual(["not serving before promotion", "apply rollback"]);
  });

  it("never scales the old slot down while the new stable does not serve: traffic flips back to it", async () => {
    const { fx, trail } = harness((_s, when) => when === "before the scale-down");
    const result = await runMachine(input(deploying()), fx);
    expect(result.outcome).toBe("rolledBack");
    expect(trail).toContain("apply promote");
    expect(trail).not.toContain("apply scaleDown");
    expect(trail.slice(-2)).toEqual(["not serving before the scale-down", "apply flipBack"]);
    expect(result.state.stable).toBe("blue");
    expect(result.state.release!.phase).toBe("rolledBack");
    expect(result.reason).toMatch(/the scale-down is held and traffic returns to blue/);
  });
});

describe("which slots must serve", () => {
  it("during a canary both; after a rollback or a promotion only the slot with traffic", () => {
    const s0 = deploying();
    const deployed = nextState(s0, { kind: "deploy", release: s0.release!, replicas: 2 }, 2, "t");
    expect(servingSlots(deployed)).toEqual(["blue", "green"]);
    const rolledBack = nextState(deployed, { kind: "rollback", reason: "x" }, 2, "t");
    expect(servingSlots(rolledBack)).toEqual(["blue"]);
    const promoted = nextState(deployed, { kind: "promote", at: "t" }, 2, "t");
    expect(servingSlots(promoted)).toEqual(["green"]);
  });
});

describe("KubernetesServing reads the live Deployments and probes the Gateway", () => {
  let gateway: Server;
  let url = "";
  let healthy = true;
  const seenHeaders: Record<string, string | string[] | undefined>[] = [];
  beforeAll(async () => {
    gateway = createServer((req, res) => {
      seenHeaders.push(req.headers);
      res.writeHead(healthy ? 200 : 503).end();
    });
    await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/`;
  });
  afterAll(() => gateway.close());

  /** The API server's answer for each Deployment, as kube-apiserver shapes it. */
  const api = (deployments: Record<string, unknown>) =>
    ({
      server: "https://127.0.0.1:1",
      async get(path: string) {
        const name = path.split("/").at(-1)!;
        if (!(name in deployments))
          throw new KubeApiError("GET", path, 404, '{"kind":"Status","reason":"NotFound"}');
        return deployments[name];
      },
    }) as unknown as KubeClient;
  const deployment = (img: string, replicas: number, ready: number) => ({
    spec: { replicas, template: { spec: { containers: [{ image: img }] } } },
    status: { readyReplicas: ready },
  });
  const s0 = deploying();
  const canary = nextState(
    nextState(s0, { kind: "deploy", release: s0.release!, replicas: 2 }, 2, "t"),
    { kind: "setWeight", weight: 10, position: 1 },
    2,
    "t",
  );

  it("passes when each slot runs its declared image with its declared ready replicas", async () => {
    const check = new KubernetesServing(
      () =>
        api({
          "checkout-blue": deployment(image("a"), 2, 2),
          "checkout-green": deployment(image("b"), 2, 2),
        }),
      "checkout",
      "shop",
      { url, healthPath: "/healthz", testerHeader: async () => ({ name: "x-t", value: "v" }) },
    );
    await expect(check.check(canary, 2, "before step 2")).resolves.toBeUndefined();
    // A plain probe and a tester-header probe, both through the Gateway.
    expect(seenHeaders.slice(-2).map((h) => h["x-t"])).toEqual([undefined, "v"]);
  });

  it("names each problem: scaled to 0, a foreign image, a deleted Deployment, a Gateway that answers 503", async () => {
    healthy = false;
    try {
      const check = new KubernetesServing(
        () =>
          api({
            "checkout-blue": deployment(image("c"), 2, 2),
            "checkout-green": deployment(image("b"), 0, 0),
          }),
        "checkout",
        "shop",
        { url, healthPath: "/healthz", testerHeader: async () => undefined },
      );
      const err = await check.check(canary, 2, "before promotion").catch((e) => e);
      expect(err).toBeInstanceOf(NotServingError);
      expect(err.problems).toEqual([
        `blue: Deployment checkout-blue runs ${image("c")}, the stack declares ${image("a")}`,
        "green: Deployment checkout-green is scaled to 0, the stack declares 2",
        "green: Deployment checkout-green has 0/2 ready replicas",
        `the Gateway did not serve a plain request to ${url}healthz: status 503 (3 attempts)`,
      ]);
      const gone = new KubernetesServing(() => api({}), "checkout", "shop");
      const missing = await gone.check(canary, 2, "before step 2").catch((e) => e);
      expect(missing.problems).toEqual([
        "blue: no Deployment shop/checkout-blue in the cluster (deleted outside the stack?)",
        "green: no Deployment shop/checkout-green in the cluster (deleted outside the stack?)",
      ]);
    } finally {
      healthy = true;
    }
  });
});

describe("messages say what failed (issue 25, point 12)", () => {
  it("a route that cannot be read back is named as such, not as a failed stack update", async () => {
    const { fx } = harness(() => false);
    fx.sleep = async () => {
      throw new RoutingNotFoundError(
        "shop/checkout",
        "no HTTPRoute shop/checkout in the cluster (deleted outside the stack?)",
      );
    };
    const result = await runMachine(input(deploying()), fx);
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /^the route could not be read back: routing shop\/checkout: no HTTPRoute/,
    );
    expect(result.reason).not.toMatch(/stack update failed/);
  });

  it("a rollback whose read-back fails is reported as landed but not confirmed", async () => {
    const { fx } = harness(() => false);
    let rolledBack = false;
    const apply = fx.apply;
    fx.apply = async (next, t, message) => {
      if (t.kind === "rollback") rolledBack = true;
      return apply(next, t, message);
    };
    fx.analyse = async () => ({ verdict: "fail", reasons: ["errors 15% vs 0%"] });
    fx.verify = async () => {
      if (rolledBack)
        throw new RoutingNotFoundError("shop/checkout", "cannot read it: ECONNREFUSED");
    };
    const result = await runMachine(
      { ...input(deploying()), plan: [{ kind: "setWeight", weight: 10 }, { kind: "analysis" }] },
      fx,
    );
    expect(result.outcome).toBe("rolledBack");
    expect(result.reason).toMatch(
      /^analysis failed at step 2: errors 15% vs 0%; the rollback landed but what is in force could not be confirmed: .*ECONNREFUSED/,
    );
  });
});
