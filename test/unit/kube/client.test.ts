import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  KubeApiError,
  KubeClient,
  KubeconfigError,
  kubePaths,
  loadKubeconfig,
} from "../../../src/kube/client";
import type { StageOutputs } from "../../../src/contract/outputs";
import { RoutingNotFoundError } from "../../../src/pipeline/errors";
import { KubernetesApiReadBack } from "../../../src/pipeline/readBack";

/**
 * The client against a real HTTPS server that, like kube-apiserver, asks for a
 * client certificate signed by its CA: certificates made with openssl.
 */
describe("kube client", () => {
  let dir: string;
  let server: Server;
  let port: number;
  const seen: { method: string; url: string; type?: string; body: string; cn?: string }[] = [];
  const route = {
    spec: {
      rules: [
        { backendRefs: [{ name: "checkout-green", weight: 1 }] },
        {
          backendRefs: [
            { name: "checkout-blue", weight: 70 },
            { name: "checkout-green", weight: 30 },
          ],
        },
      ],
    },
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kube-client-"));
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    );
    const sign = (name: string, subj: string, ext?: string) => {
      ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        subj,
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
      );
      if (ext) writeFileSync(join(dir, `${name}.ext`), ext);
      ssl(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        `${name}.crt`,
        ...(ext ? ["-extfile", `${name}.ext`] : []),
      );
    };
    sign("server", "/CN=kube-apiserver", "subjectAltName=IP:127.0.0.1\n");
    sign("admin", "/O=system:masters/CN=admin");
    const read = (f: string) => readFileSync(join(dir, f));
    server = createServer(
      {
        key: read("server.key"),
        cert: read("server.crt"),
        ca: read("ca.crt"),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          const cn = (req.socket as any).getPeerCertificate?.()?.subject?.CN;
          seen.push({
            method: req.method!,
            url: req.url!,
            type: req.headers["content-type"],
            body,
            cn,
          });
          res.setHeader("content-type", "application/json");
          if (req.url === kubePaths.httpRoute("ns", "checkout")) {
            res.end(JSON.stringify(route));
          } else if (req.url === kubePaths.deployments("ns")) {
            res.end(
              JSON.stringify({ kind: "DeploymentList", items: [{ metadata: { name: "d" } }] }),
            );
          } else {
            res.statusCode = 404;
            res.end(
              JSON.stringify({ kind: "Status", message: `httproutes "x" not found`, code: 404 }),
            );
          }
        });
      },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    // One context with embedded data, one with file references relative to the kubeconfig.
    writeFileSync(
      join(dir, "kubeconfig"),
      stringify({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "embedded",
        clusters: [
          {
            name: "c1",
            cluster: {
              server: `https://127.0.0.1:${port}/`,
              "certificate-authority-data": read("ca.crt").toString("base64"),
            },
          },
          {
            name: "c2",
            cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority": "ca.crt" },
          },
        ],
        users: [
          {
            name: "u1",
            user: {
              "client-certificate-data": read("admin.crt").toString("base64"),
              "client-key-data": read("admin.key").toString("base64"),
            },
          },
          { name: "u2", user: { "client-certificate": "admin.crt", "client-key": "admin.key" } },
          { name: "nobody", user: {} },
        ],
        contexts: [
          { name: "embedded", context: { cluster: "c1", user: "u1" } },
          { name: "files", context: { cluster: "c2", user: "u2" } },
          { name: "anonymous", context: { cluster: "c2", user: "nobody" } },
        ],
      }),
    );
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("GETs with the current context's client certificate, verifying the server against the CA", async () => {
    const client = KubeClient.fromKubeconfig(join(dir, "kubeconfig"));
    expect(client.server).toBe(`https://127.0.0.1:${port}`);
    expect(await client.get(kubePaths.httpRoute("ns", "checkout"))).toEqual(route);
    expect(seen.at(-1)!.cn).toBe("admin");
  });

  it("resolves file references relative to the kubeconfig, and lists items", async () => {
    const client = KubeClient.fromKubeconfig(join(dir, "kubeconfig"), "files");
    expect(await client.list(kubePaths.deployments("ns"))).toEqual([{ metadata: { name: "d" } }]);
  });

  it("sends merge patches with their content type", async () => {
    const client = KubeClient.fromKubeconfig(join(dir, "kubeconfig"));
    await client.mergePatch(kubePaths.httpRoute("ns", "checkout"), { spec: { rules: [] } });
    expect(seen.at(-1)).toMatchObject({
      method: "PATCH",
      type: "application/merge-patch+json",
      body: JSON.stringify({ spec: { rules: [] } }),
    });
  });

  it("turns a non-2xx answer into a KubeApiError with the API's message", async () => {
    const client = KubeClient.fromKubeconfig(join(dir, "kubeconfig"));
    const err = await client.get("/apis/x").catch((e) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err.status).toBe(404);
    expect(err.message).toBe(`GET /apis/x: 404 httproutes "x" not found`);
  });

  it("is refused by a server that wants a client certificate when it has none", async () => {
    const client = KubeClient.fromKubeconfig(join(dir, "kubeconfig"), "anonymous");
    await expect(client.get(kubePaths.httpRoute("ns", "checkout"))).rejects.toThrow(
      new RegExp(`GET /apis/.* on https://127.0.0.1:${port}`),
    );
  });

  it("the pipeline's read-back GETs the HTTPRoute named by outputs.routing.id; a missing one is RoutingNotFoundError", async () => {
    const readBack = new KubernetesApiReadBack(
      () => KubeClient.fromKubeconfig(join(dir, "kubeconfig")),
      "checkout",
    );
    const outputs = (id: string) =>
      ({ service: { name: "checkout" }, routing: { kind: "HTTPRoute", id } }) as StageOutputs;
    expect(await readBack.read(outputs("ns/checkout"))).toEqual({ blue: 70, green: 30 });
    expect(seen.at(-1)!.url).toBe(
      "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/checkout",
    );
    const err = await readBack.read(outputs("ns/other")).catch((e) => e);
    expect(err).toBeInstanceOf(RoutingNotFoundError);
    expect(err.message).toMatch(
      /routing ns\/other: no HTTPRoute ns\/other in the cluster at https:\/\/127\.0\.0\.1/,
    );
  });

  it("names the file, the context and what exists when the kubeconfig is wrong", () => {
    expect(() => loadKubeconfig(join(dir, "missing"))).toThrow(KubeconfigError);
    expect(() => loadKubeconfig(join(dir, "missing"))).toThrow(
      /kubeconfig .*missing: cannot be read \(ENOENT\)/,
    );
    expect(() => loadKubeconfig(join(dir, "kubeconfig"), "prod")).toThrow(
      /no context named "prod"; contexts: embedded, files, anonymous/,
    );
  });
});
