import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StageOutputs } from "../../../src/contract/outputs";
import { RouteDriftedError } from "../../../src/pipeline/errors";
import { FileStore } from "../../../src/store/fileStore";
import { releaseRecords } from "../../../src/store/store";
import { httpRouteDifferences, KubernetesApiReadBack } from "../../../src/pipeline/readBack";
import { recordCutShortUpdate, RESTORE_ROUTE } from "../../../src/pipeline/recovery";
import type { KubeClient } from "../../../src/kube/client";
import { SECRET_SIG } from "../../../src/pipeline/stack";

/** The route as the component declares it (inputs: no server defaults), tester value secret. */
const declared = (weights = { blue: 80, green: 20 }) => ({
  parentRefs: [{ name: "slipway", namespace: "gateway" }],
  hostnames: ["checkout.local"],
  rules: [
    {
      matches: [
        {
          path: { type: "PathPrefix", value: "/" },
          headers: [{ type: "Exact", name: "x-slipway-tester", value: "[secret]" }],
        },
      ],
      backendRefs: [{ kind: "Service", name: "checkout-green", port: 80, weight: 1 }],
    },
    {
      matches: [{ path: { type: "PathPrefix", value: "/" } }],
      backendRefs: [
        { kind: "Service", name: "checkout-blue", port: 80, weight: weights.blue },
        { kind: "Service", name: "checkout-green", port: 80, weight: weights.green },
      ],
    },
  ],
});

/** The same route as the API server returns it: defaults filled in, the secret in clear. */
const live = (weights = { blue: 80, green: 20 }) => {
  const spec: any = structuredClone(declared(weights));
  spec.parentRefs[0] = {
    group: "gateway.networking.k8s.io",
    kind: "Gateway",
    ...spec.parentRefs[0],
  };
  spec.rules[0].matches[0].headers[0].value = "d41d8cd98f00b204e9800998ecf8427e";
  for (const rule of spec.rules) for (const b of rule.backendRefs) b.group = "";
  return spec;
};

describe("the live HTTPRoute compared whole with the declared one", () => {
  it("finds nothing when only server defaults, the secret's value and the weights differ", async () => {
    expect(httpRouteDifferences(declared(), live())).toEqual([]);
    // Weights are the release's to compare (it knows the step), not the structure's.
    expect(httpRouteDifferences(declared(), live({ blue: 0, green: 100 }))).toEqual([]);
    // A rule without matches means PathPrefix / (the API's default).
    const noMatch = declared();
    delete (noMatch.rules[1] as any).matches;
    expect(httpRouteDifferences(noMatch, live())).toEqual([]);
  });

  it("names an added backendRef, as the first-backend-per-slot read never could", async () => {
    const spec = live();
    spec.rules[1].backendRefs.push({
      kind: "Service",
      name: "checkout-green-2",
      port: 80,
      weight: 900,
    });
    const found = httpRouteDifferences(declared(), spec);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/rule 2 has a backendRef .*checkout-green-2.* that is not declared/);
    // The same slot named twice (a second weight for the candidate) is caught too.
    const twice = live();
    twice.rules[1].backendRefs.push({
      kind: "Service",
      name: "checkout-green",
      port: 80,
      weight: 900,
    });
    expect(httpRouteDifferences(declared(), twice).join("\n")).toMatch(
      /rule 2 names a backendRef more than once/,
    );
  });

  it("names an extra rule, a changed parentRef, a changed port and a missing backend", async () => {
    const extraRule = live();
    extraRule.rules.push({ backendRefs: [{ name: "elsewhere", port: 80 }] });
    expect(httpRouteDifferences(declared(), extraRule)).toEqual([
      "rules: declared 2, found 3",
      expect.stringMatching(/^rule 3 is not declared: .*elsewhere/),
    ]);

    const parent = live();
    parent.parentRefs[0].name = "other-gateway";
    expect(httpRouteDifferences(declared(), parent)).toEqual([
      expect.stringMatching(/^parentRefs: declared .*"slipway".*, found .*"other-gateway"/),
    ]);

    const port = live();
    port.rules[1].backendRefs[0].port = 8080;
    expect(httpRouteDifferences(declared(), port)).toEqual([
      expect.stringMatching(
        /^rule 2 backendRef checkout-blue: declared .*"port":80.*found .*"port":8080/,
      ),
    ]);

    const missing = live();
    missing.rules[1].backendRefs.pop();
    expect(httpRouteDifferences(declared(), missing)).toEqual([
      "rule 2 is missing its declared backendRef checkout-green",
    ]);

    const filter = live();
    filter.rules[1].filters = [{ type: "RequestRedirect", requestRedirect: { hostname: "evil" } }];
    expect(httpRouteDifferences(declared(), filter)).toEqual([
      expect.stringMatching(/^rule 2 filters: declared nothing, found .*RequestRedirect/),
    ]);

    const header = live();
    header.rules[0].matches[0].headers[0].name = "x-other";
    expect(httpRouteDifferences(declared(), header).join("\n")).toMatch(/^rule 1 matches:/);
  });

  it("the API read-back throws RouteDriftedError with the live weights and what differs", async () => {
    const outputs = {
      service: { name: "checkout" },
      routing: { kind: "HTTPRoute", id: "apps/checkout" },
    } as unknown as StageOutputs;
    const spec = live({ blue: 80, green: 20 });
    const client = { server: "https://127.0.0.1:1", get: async () => ({ spec }) };
    const readBack = new KubernetesApiReadBack(
      () => client as unknown as KubeClient,
      "checkout",
      async () => ({ spec: declared() }),
    );
    await expect(readBack.read(outputs)).resolves.toEqual({ blue: 80, green: 20 });
    spec.rules.push({ backendRefs: [{ name: "elsewhere" }] });
    const err = await readBack.read(outputs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteDriftedError);
    expect((err as RouteDriftedError).weights).toEqual({ blue: 80, green: 20 });
    expect((err as RouteDriftedError).message).toMatch(
      /apps\/checkout differs from the stack: rules: declared 2, found 3/,
    );
    // Without a declared route (a stand-in stack), or one the state keeps secret whole, only
    // the weights are read: never a difference made up from a value that cannot be compared.
    spec.rules.pop();
    const secretWhole = new KubernetesApiReadBack(
      () => client as unknown as KubeClient,
      "checkout",
      async () => ({ spec: "[secret]" }),
    );
    spec.rules[1].backendRefs[0].port = 8080;
    await expect(secretWhole.read(outputs)).resolves.toEqual({ blue: 80, green: 20 });
    const secretRules = new KubernetesApiReadBack(
      () => client as unknown as KubeClient,
      "checkout",
      // As a checkpoint exported without --show-secrets holds it.
      async () => ({
        spec: {
          ...declared(),
          rules: { [SECRET_SIG]: "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:x" },
        },
      }),
    );
    await expect(secretRules.read(outputs)).resolves.toEqual({ blue: 80, green: 20 });
    spec.rules[1].backendRefs[0].port = 80;
    const weightsOnly = new KubernetesApiReadBack(
      () => client as unknown as KubeClient,
      "checkout",
    );
    await expect(weightsOnly.read(outputs)).resolves.toEqual({ blue: 80, green: 20 });
  });
});

describe("a resume reads the live route to tell whether a cut-short update landed", () => {
  const id = "r-20260101-000000-abcd";
  const outputs = {
    stableSlot: "blue",
    weights: { blue: 80, green: 20 },
    release: { id, phase: "canary", updatedAt: "2026-01-01T00:01:00.000Z" },
  } as unknown as StageOutputs;
  const cutShort = async () => {
    const log = new FileStore(mkdtempSync(join(tmpdir(), "slipway-route-ahead-"))).log("local");
    await log.append({
      stage: "local",
      releaseId: id,
      event: "update.started",
      weights: { blue: 50, green: 50 },
      reason: `release ${id}: setWeight 50`,
      figures: { transition: "setWeight", updatedAt: "2026-01-01T00:02:00.000Z" },
    });
    return log;
  };

  it("the route carries the update's weights, the outputs the old ones: the route is ahead", async () => {
    const log = await cutShort();
    expect(await recordCutShortUpdate(log, "local", id, outputs, { blue: 50, green: 50 })).toBe(
      "routeAhead",
    );
    expect((await releaseRecords(log, id)).at(-1)).toMatchObject({
      event: "update.failed",
      reason: expect.stringMatching(
        /cut short after it changed the route \(live blue 50 \/ green 50/,
      ),
      figures: { cutShort: true, routeLanded: { blue: 50, green: 50 } },
    });
  });

  it("a restoration of the route cut short in turn: the live route says whether it landed", async () => {
    const restoring = async () => {
      const log = await cutShort();
      await recordCutShortUpdate(log, "local", id, outputs, { blue: 50, green: 50 });
      await log.append({
        stage: "local",
        releaseId: id,
        event: "update.started",
        weights: { blue: 80, green: 20 },
        reason: "restore the route",
        figures: { transition: RESTORE_ROUTE },
      });
      return log;
    };
    // Still ahead: the next resume restores it again (never read as drift).
    const ahead = await restoring();
    expect(await recordCutShortUpdate(ahead, "local", id, outputs, { blue: 50, green: 50 })).toBe(
      "routeAhead",
    );
    expect((await releaseRecords(ahead, id)).at(-1)).toMatchObject({
      event: "update.failed",
      figures: { transition: RESTORE_ROUTE, cutShort: true },
    });
    // Restored: recorded as landed, and the resume goes on from the stack.
    const restored = await restoring();
    expect(
      await recordCutShortUpdate(restored, "local", id, outputs, { blue: 80, green: 20 }),
    ).toBeUndefined();
    expect((await releaseRecords(restored, id)).at(-1)).toMatchObject({
      event: "update.succeeded",
      figures: { transition: RESTORE_ROUTE, recovered: true },
    });
  });

  it("an update that failed (a Ctrl-C cancelled the engine) after it changed the route: ahead too", async () => {
    const log = await cutShort();
    await log.append({
      stage: "local",
      releaseId: id,
      event: "update.failed",
      reason: "update cancelled",
    });
    expect(await recordCutShortUpdate(log, "local", id, outputs, { blue: 50, green: 50 })).toBe(
      "routeAhead",
    );
    // Nothing is appended: the failure is already recorded.
    expect(await releaseRecords(log, id)).toHaveLength(2);
    // The route at the stack's weights, or somewhere else entirely: not ahead.
    expect(
      await recordCutShortUpdate(log, "local", id, outputs, { blue: 80, green: 20 }),
    ).toBeUndefined();
    expect(
      await recordCutShortUpdate(log, "local", id, outputs, { blue: 10, green: 90 }),
    ).toBeUndefined();
  });

  it("the route still has the old weights (or cannot be read): it did not land", async () => {
    for (const liveWeights of [{ blue: 80, green: 20 }, undefined, { blue: 0, green: 100 }]) {
      const log = await cutShort();
      expect(await recordCutShortUpdate(log, "local", id, outputs, liveWeights)).toBeUndefined();
      expect((await releaseRecords(log, id)).at(-1)).toMatchObject({
        event: "update.failed",
        reason: expect.stringMatching(/cut short, did not land/),
      });
    }
  });
});
