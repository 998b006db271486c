import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { localStageNeeds } from "../../../src/cluster/lifecycle";
import { resourcePath } from "../../../src/kube/client";
import { fakeNode, gateway, SERVICE_CIDR, traefikConfig } from "../../../src/cluster/manifests";

const ports = {
  kine: 40001,
  apiServer: 40002,
  controllerManager: 40003,
  scheduler: 40004,
  gateway: 40005,
  traefikAdmin: 40006,
};

describe("cluster objects", () => {
  it("gives the Gateway one HTTP listener on Traefik's web entry point port, open to every namespace", () => {
    const gw = gateway({ name: "gw", namespace: "gateway-system", sectionName: "http" }, 40005);
    expect(gw.spec).toEqual({
      gatewayClassName: "traefik",
      listeners: [
        {
          name: "http",
          port: 40005,
          protocol: "HTTP",
          allowedRoutes: { namespaces: { from: "All" } },
        },
      ],
    });
    const cfg = JSON.parse(traefikConfig(ports));
    expect(cfg.entryPoints.web.address).toBe("127.0.0.1:40005");
  });

  it("configures Traefik on loopback only, routing to ClusterIPs, without dashboard or phoning home", () => {
    const cfg = JSON.parse(traefikConfig(ports));
    for (const ep of Object.values(cfg.entryPoints) as { address: string }[])
      expect(ep.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(cfg.providers.kubernetesGateway.nativeLBByDefault).toBe(true);
    expect(cfg.api.dashboard).toBe(false);
    expect(cfg.global).toEqual({ checkNewVersion: false, sendAnonymousUsage: false });
  });

  it("gives the fake node a pod range outside loopback (data only) and the kwok annotation", () => {
    const node = fakeNode() as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: { podCIDR: string };
    };
    expect(node.metadata.annotations["kwok.x-k8s.io/node"]).toBe("fake");
    expect(node.spec.podCIDR.startsWith("127.")).toBe(false);
    expect(SERVICE_CIDR).toBe("127.100.0.0/16");
  });

  it("maps kinds to REST paths and refuses unknown ones by name", () => {
    expect(resourcePath("gateway.networking.k8s.io/v1", "HTTPRoute", "ns", "r")).toBe(
      "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r",
    );
    expect(resourcePath("v1", "Namespace", undefined, "x")).toBe("/api/v1/namespaces/x");
    expect(() => resourcePath("v1", "Gadget")).toThrow(/no REST path known for v1 Gadget/);
  });

  it("reads the gateway and namespaces the local stage names, with the schema's defaults", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-stage-"));
    try {
      expect(localStageNeeds(dir)).toEqual({
        gateways: [{ name: "slipway-gateway", namespace: "gateway-system" }],
        namespaces: ["monitoring", "slipway-system"],
      });
      writeFileSync(
        join(dir, "Pulumi.local.yaml"),
        "config:\n  slipway:kubernetes:\n    gateway: {name: edge, namespace: ingress}\n    monitoringNamespace: prom\n",
      );
      expect(localStageNeeds(dir)).toEqual({
        gateways: [{ name: "edge", namespace: "ingress" }],
        namespaces: ["prom", "slipway-system"],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
