import { readFileSync } from "node:fs";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";

/**
 * A small Kubernetes API client: enough of a kubeconfig (one cluster, one user
 * by client certificate or bearer token) and plain REST calls (GET, LIST,
 * merge-PATCH, POST, DELETE). The pipeline's read-back, the rehearsal's slot
 * supervisor and the tests use it; the Pulumi Kubernetes provider does the
 * applying.
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

  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
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
    const text = await new Promise<{ status: number; text: string }>((resolvePromise, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
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
    if (text.status < 200 || text.status >= 300)
      throw new KubeApiError(method, url.pathname, text.status, text.text);
    return (text.text ? JSON.parse(text.text) : undefined) as T;
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
}

/** REST paths of the objects Slipway reads. */
export const kubePaths = {
  httpRoute: (namespace: string, name: string) =>
    `/apis/gateway.networking.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/httproutes/${encodeURIComponent(name)}`,
  deployments: (namespace: string) =>
    `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`,
  services: (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`,
};
