import { request } from "node:https";

/**
 * A small client for the local cluster's API server: HTTPS with the admin
 * client certificate, server-side apply for idempotent writes. The cluster
 * code needs a handful of calls (apply, get, list, patch, delete, readyz), so
 * plain node:https keeps the dependency list short; see README, "Local cluster".
 */

export interface KubeCredentials {
  server: string; // https://127.0.0.1:<port>
  ca: string; // PEM
  cert: string; // PEM
  key: string; // PEM
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${method} ${path}: HTTP ${status}: ${KubeError.reason(body)}`);
    this.name = "KubeError";
  }

  private static reason(body: string): string {
    try {
      const s = JSON.parse(body) as { message?: string };
      if (s.message) return s.message;
    } catch {
      // not a Status object
    }
    return body.slice(0, 300);
  }
}

/** Resource paths of the kinds Slipway's cluster code writes or reads. */
const KINDS: Record<string, { plural: string; namespaced: boolean }> = {
  "v1/Namespace": { plural: "namespaces", namespaced: false },
  "v1/Node": { plural: "nodes", namespaced: false },
  "v1/Service": { plural: "services", namespaced: true },
  "v1/ServiceAccount": { plural: "serviceaccounts", namespaced: true },
  "v1/ConfigMap": { plural: "configmaps", namespaced: true },
  "v1/Pod": { plural: "pods", namespaced: true },
  "apps/v1/Deployment": { plural: "deployments", namespaced: true },
  "apiextensions.k8s.io/v1/CustomResourceDefinition": {
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  "gateway.networking.k8s.io/v1/GatewayClass": { plural: "gatewayclasses", namespaced: false },
  "gateway.networking.k8s.io/v1/Gateway": { plural: "gateways", namespaced: true },
  "gateway.networking.k8s.io/v1/HTTPRoute": { plural: "httproutes", namespaced: true },
  "gateway.networking.k8s.io/v1beta1/ReferenceGrant": {
    plural: "referencegrants",
    namespaced: true,
  },
  "networking.k8s.io/v1/NetworkPolicy": { plural: "networkpolicies", namespaced: true },
};

/** The REST path of a kind (collection, or one object when `name` is given). */
export function resourcePath(
  apiVersion: string,
  kind: string,
  namespace?: string,
  name?: string,
): string {
  const k = KINDS[`${apiVersion}/${kind}`];
  if (!k)
    throw new Error(
      `kube: no REST path known for ${apiVersion} ${kind}; known: ${Object.keys(KINDS).join(", ")}`,
    );
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (k.namespaced && !namespace) throw new Error(`kube: ${kind} ${name ?? ""} needs a namespace`);
  const ns = k.namespaced ? `/namespaces/${encodeURIComponent(namespace!)}` : "";
  return `${base}${ns}/${k.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

const FIELD_MANAGER = "slipway-cluster";

export class KubeClient {
  constructor(
    readonly creds: KubeCredentials,
    private readonly timeoutMs = 10_000,
  ) {}

  /** One request; resolves with the status and body, never throws on an HTTP status. */
  raw(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.creds.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.creds.ca,
          cert: this.creds.cert,
          key: this.creds.key,
          headers: {
            accept: "application/json",
            ...(payload !== undefined
              ? { "content-type": contentType, "content-length": Buffer.byteLength(payload) }
              : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  private async json<T>(method: string, path: string, body?: unknown, ct?: string): Promise<T> {
    const r = await this.raw(method, path, body, ct);
    if (r.status < 200 || r.status >= 300) throw new KubeError(r.status, method, path, r.body);
    return JSON.parse(r.body) as T;
  }

  /** `GET /readyz`: true when the API server reports ready. */
  async ready(): Promise<boolean> {
    const r = await this.raw("GET", "/readyz");
    return r.status === 200;
  }

  /** Server-side apply (create or update, owned by the field manager "slipway-cluster"). */
  apply<T extends KubeObject>(obj: T): Promise<T> {
    const path = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    return this.json<T>(
      "PATCH",
      `${path}?fieldManager=${FIELD_MANAGER}&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
  }

  /** The object, or undefined when it does not exist. */
  async get<T = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    const path = resourcePath(apiVersion, kind, namespace, name);
    const r = await this.raw("GET", path);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new KubeError(r.status, "GET", path, r.body);
    return JSON.parse(r.body) as T;
  }

  async list<T = KubeObject>(apiVersion: string, kind: string, namespace?: string): Promise<T[]> {
    const k = KINDS[`${apiVersion}/${kind}`];
    const path = resourcePath(
      apiVersion,
      kind,
      k?.namespaced ? (namespace ?? "default") : undefined,
    );
    return (await this.json<{ items: T[] }>("GET", path)).items;
  }

  /** JSON merge patch (RFC 7386) of one object; `subresource` e.g. "status". */
  mergePatch<T = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    patch: unknown,
    namespace?: string,
    subresource?: string,
  ): Promise<T> {
    const path =
      resourcePath(apiVersion, kind, namespace, name) + (subresource ? `/${subresource}` : "");
    return this.json<T>("PATCH", path, patch, "application/merge-patch+json");
  }

  /** Deletes the object; true when it existed. */
  async delete(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<boolean> {
    const path = resourcePath(apiVersion, kind, namespace, name);
    const r = await this.raw("DELETE", path);
    if (r.status === 404) return false;
    if (r.status < 200 || r.status >= 300) throw new KubeError(r.status, "DELETE", path, r.body);
    return true;
  }
}

/** The `type` condition's status of an object ("True", "False", "Unknown", or undefined). */
export function conditionStatus(obj: unknown, type: string): string | undefined {
  const conditions = (obj as { status?: { conditions?: { type: string; status: string }[] } })
    ?.status?.conditions;
  return conditions?.find((c) => c.type === type)?.status;
}
