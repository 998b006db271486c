import type { KubeObject } from "../kube/client";

/**
 * The objects and configuration files of the local cluster, as pure
 * functions of its ports and the stage's gateways (no I/O).
 */

/** Service ClusterIPs come from a loopback range: a local process listening on ClusterIP:port receives what Traefik routes to that Service. */
export const SERVICE_CIDR = "127.100.0.0/16";
/** The first address of SERVICE_CIDR: the `kubernetes` Service (in the serving certificate). */
export const FIRST_SERVICE_IP = "127.100.0.1";
/** The fake node's pod range: data only. Nothing may ever connect to these addresses. */
export const NODE_POD_CIDR = "10.244.0.0/24";
export const NODE_NAME = "slipway-node-0";
export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";
export const GATEWAY_CLASS = "traefik";
export const GATEWAY_CONTROLLER = "traefik.io/gateway-controller";

export interface GatewayRef {
  name: string;
  namespace: string;
  /** The listener's name (the stage's `sectionName`); default "web". */
  sectionName?: string;
}

export interface ClusterPorts {
  kine: number;
  apiServer: number;
  controllerManager: number;
  scheduler: number;
  /** Traefik's `web` entry point: the Gateway's address. */
  gateway: number;
  /** Traefik's own entry point (ping, API; no dashboard). */
  traefikAdmin: number;
}

export function namespace(name: string): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

/** The one fake node kwok keeps Ready; pods scheduled to it become Running. */
export function fakeNode(): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: NODE_NAME,
      annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": NODE_NAME,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/agent": "",
        type: "kwok",
      },
    },
    spec: { podCIDR: NODE_POD_CIDR, podCIDRs: [NODE_POD_CIDR] },
  };
}

export function gatewayClass(): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name: GATEWAY_CLASS },
    spec: { controllerName: GATEWAY_CONTROLLER },
  };
}

/** A Gateway whose one HTTP listener is Traefik's `web` entry point (Traefik matches them by port). */
export function gateway(ref: GatewayRef, port: number): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: ref.name, namespace: ref.namespace },
    spec: {
      gatewayClassName: GATEWAY_CLASS,
      listeners: [
        {
          name: ref.sectionName ?? "web",
          port,
          protocol: "HTTP",
          allowedRoutes: { namespaces: { from: "All" } },
        },
      ],
    },
  };
}

/** Traefik's static configuration (YAML is a superset of JSON). */
export function traefikConfig(ports: ClusterPorts): string {
  const config = {
    global: { checkNewVersion: false, sendAnonymousUsage: false },
    entryPoints: {
      web: { address: `127.0.0.1:${ports.gateway}` },
      traefik: { address: `127.0.0.1:${ports.traefikAdmin}` },
    },
    // The dashboard's files are not in the module zip; the API stays on the
    // loopback admin entry point for debugging (/api/http/routers).
    api: { dashboard: false },
    ping: { entryPoint: "traefik" },
    log: { level: "INFO" },
    providers: {
      kubernetesGateway: {
        // Route to the Service's ClusterIP:port, not to pod endpoints (which
        // are non-loopback data here and must never receive traffic).
        nativeLBByDefault: true,
        throttleDuration: "500ms",
        statusAddress: { ip: "127.0.0.1" },
      },
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}
