import { readFileSync } from "node:fs";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";

/**
 * Slipway's one Kubernetes API client: enough of a kubeconfig (one cluster, one
 * user by client certificate or bearer token), plain REST calls by path (GET,
 * LIST, merge and JSON PATCH, POST, DELETE) and a few calls by kind
 * (server-side apply, get-or-undefined, /readyz). The pipeline's read-back, the
 * rehearsal's slot supervisor, the local cluster's lifecycle (src/cluster) and
 * the tests use it; the Pulumi Kubernetes provider does the stage's applying.
 * Plain node:https keeps the dependency list short.
 */

export interface KubeCredentials {
  server: string;
  /** PEM strings. */
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
  insecureSkipTlsVerify?: boolean;
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeconfigError";
  }
}

/** The API answered with a status that is not 2xx. */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: string,
  ) {
    let reason = body.slice(0, 300);
    try {
      reason = (JSON.parse(body) as { message?: string }).message ?? reason;
    } catch {
      // Not a Status object; keep the text.
    }
    super(`${method} ${path}: ${status} ${reason}`);
    this.name = "KubeApiError";
  }
}

/**
 * Reads a kubeconfig file and picks `context` (or its current-context). File
 * references inside it (certificate-authority, client-certificate, client-key)
 * are relative to the kubeconfig's own directory, as kubectl does.
 */
export function loadKubeconfig(file: string, context?: string): KubeCredentials {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new KubeconfigError(
      `kubeconfig ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); start the local cluster with \`slipway cluster up\` or point slipway:kubernetes.kubeconfig at your cluster's kubeconfig`,
    );
  }
  return parseKubeconfig(text, dirname(file), context, file);
}

export function parseKubeconfig(
  text: string,
  baseDir: string,
  context?: string,
  what = "kubeconfig",
): KubeCredentials {
  const doc = (parse(text) ?? {}) as Record<string, any>;
  const byName = (list: unknown, name: string) =>
    (Array.isArray(list) ? list : []).find((e: any) => e?.name === name);
  const contextName: string | undefined = context ?? doc["current-context"];
  if (!contextName)
    throw new KubeconfigError(
      `${what}: no current-context and no context given (slipway:kubernetes.context)`,
    );
  const ctx = byName(doc.contexts, contextName)?.context;
  if (!ctx) {
    const names = (Array.isArray(doc.contexts) ? doc.contexts : []).map((c: any) => c?.name);
    throw new KubeconfigError(
      `${what}: no context named "${contextName}"; contexts: ${names.join(", ") || "none"}`,
    );
  }
  const cluster = byName(doc.clusters, ctx.cluster)?.cluster;
  if (!cluster?.server)
    throw new KubeconfigError(
      `${what}: context "${contextName}" names cluster "${ctx.cluster}", which has no server`,
    );
  const user = byName(doc.users, ctx.user)?.user ?? {};
  const material = (data: unknown, file: unknown): string | undefined => {
    if (typeof data === "string") return Buffer.from(data, "base64").toString("utf8");
    if (typeof file === "string")
      return readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), "utf8");
    return undefined;
  };
  return {
    server: String(cluster.server).replace(/\/+$/, ""),
    ca: material(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    cert: material(user["client-certificate-data"], user["client-certificate"]),
    key: material(user["client-key-data"], user["client-key"]),
    token:
      typeof user.token === "string"
        ? user.token
        : typeof user.tokenFile === "string"
          ? readFileSync(resolve(baseDir, user.tokenFile), "utf8").trim()
          : undefined,
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
  };
}

export interface KubeClientOptions {
  timeoutMs?: number;
}

export class KubeClient {
  constructor(
    readonly credentials: KubeCredentials,
    readonly options: KubeClientOptions = {},
  ) {}

  static fromKubeconfig(file: string, context?: string, options?: KubeClientOptions): KubeClient {
    return new KubeClient(loadKubeconfig(file, context), options);
  }

  get server(): string {
    return this.credentials.server;
  }

  /** One request; resolves with the status and body, never throws on an HTTP status. */
  raw(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.credentials.server + "/");
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const c = this.credentials;
    const options: RequestOptions = {
      method,
      headers: {
        accept: "application/json",
        ...(payload !== undefined
          ? { "content-type": contentType, "content-length": Buffer.byteLength(payload) }
          : {}),
        ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
      },
      timeout: this.options.timeoutMs ?? 10_000,
      ...(url.protocol === "https:"
        ? {
            ca: c.ca,
            cert: c.cert,
            key: c.key,
            rejectUnauthorized: !c.insecureSkipTlsVerify,
          }
        : {}),
    };
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolvePromise, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      });
      req.on("timeout", () =>
        req.destroy(new Error(`${method} ${url.pathname}: no answer from ${c.server} in time`)),
      );
      req.on("error", (err) =>
        reject(new Error(`${method} ${url.pathname} on ${c.server}: ${err.message}`)),
      );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** One request; a status that is not 2xx is a KubeApiError. */
  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const r = await this.raw(method, path, body, contentType);
    if (r.status < 200 || r.status >= 300)
      throw new KubeApiError(method, new URL(path, this.server + "/").pathname, r.status, r.body);
    return (r.body ? JSON.parse(r.body) : undefined) as T;
  }

  get<T = any>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** The items of a list call. */
  async list<T = any>(path: string): Promise<T[]> {
    return ((await this.get<{ items?: T[] }>(path)).items ?? []) as T[];
  }

  /** A JSON merge patch (RFC 7386): arrays are replaced whole. */
  mergePatch<T = any>(path: string, patch: unknown): Promise<T> {
    return this.request<T>("PATCH", path, patch, "application/merge-patch+json");
  }

  /** A JSON patch (RFC 6902), for changing one element of an array. */
  jsonPatch<T = any>(path: string, ops: unknown[]): Promise<T> {
    return this.request<T>("PATCH", path, ops, "application/json-patch+json");
  }

  post<T = any>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  delete<T = any>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** `GET /readyz`: true when the API server reports ready. */
  async ready(): Promise<boolean> {
    return (await this.raw("GET", "/readyz")).status === 200;
  }

  /** Server-side apply (create or update, owned by `fieldManager`, conflicts forced). */
  apply<T extends KubeObject>(obj: T, fieldManager = "slipway-cluster"): Promise<T> {
    const path = resourcePath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    return this.request<T>(
      "PATCH",
      `${path}?fieldManager=${encodeURIComponent(fieldManager)}&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
  }

  /** An object by kind and name, or undefined when it does not exist. */
  async getObject<T = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(resourcePath(apiVersion, kind, namespace, name));
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** Resource paths of the kinds Slipway writes or reads by kind. */
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

/** The `type` condition's status of an object ("True", "False", "Unknown", or undefined). */
export function conditionStatus(obj: unknown, type: string): string | undefined {
  const conditions = (obj as { status?: { conditions?: { type: string; status: string }[] } })
    ?.status?.conditions;
  return conditions?.find((c) => c.type === type)?.status;
}

/** REST paths of the objects Slipway reads. */
export const kubePaths = {
  httpRoute: (namespace: string, name: string) =>
    `/apis/gateway.networking.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/httproutes/${encodeURIComponent(name)}`,
  deployments: (namespace: string) =>
    `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`,
  services: (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`,
};
