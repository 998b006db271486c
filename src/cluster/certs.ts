import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The local cluster's certificates, made once with openssl (node:crypto can
 * parse X.509 but not issue it) and kept in `<stateDir>/pki`:
 *   ca.crt/.key           the cluster CA (clients trust it, the API server
 *                         checks client certificates against it)
 *   apiserver.crt/.key    serving certificate: 127.0.0.1, localhost,
 *                         kubernetes.default.svc and the first service IP
 *   admin.crt/.key        client certificate O=system:masters (all rights)
 *   sa.key/sa.pub         service-account token signing key pair
 */

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

export function pkiPaths(stateDir: string): Pki {
  const dir = join(stateDir, "pki");
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: join(dir, "apiserver.crt"),
    serverKey: join(dir, "apiserver.key"),
    adminCert: join(dir, "admin.crt"),
    adminKey: join(dir, "admin.key"),
    saKey: join(dir, "sa.key"),
    saPub: join(dir, "sa.pub"),
  };
}

const DAYS = "3650";

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(
      `cluster certificates: openssl ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`,
      { cause: err },
    );
  }
}

/** Creates whatever certificate is missing; returns the paths. `firstServiceIp` goes into the serving cert. */
export function ensurePki(stateDir: string, firstServiceIp: string): Pki {
  const p = pkiPaths(stateDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!existsSync(p.caCert) || !existsSync(p.caKey)) {
    openssl(
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        p.caKey,
        "-out",
        p.caCert,
        "-days",
        DAYS,
        "-subj",
        "/CN=slipway-local-cluster-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
      ],
      p.dir,
    );
  }
  const issue = (out: string, key: string, subj: string, exts: string[]) => {
    if (existsSync(out) && existsSync(key)) return;
    openssl(
      [
        "req",
        "-x509",
        "-CA",
        p.caCert,
        "-CAkey",
        p.caKey,
        ...ec,
        "-keyout",
        key,
        "-out",
        out,
        "-days",
        DAYS,
        "-subj",
        subj,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        ...exts.flatMap((e) => ["-addext", e]),
      ],
      p.dir,
    );
  };
  issue(p.serverCert, p.serverKey, "/CN=kube-apiserver", [
    "extendedKeyUsage=serverAuth",
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:${firstServiceIp}`,
  ]);
  issue(p.adminCert, p.adminKey, "/O=system:masters/CN=admin", ["extendedKeyUsage=clientAuth"]);
  if (!existsSync(p.saKey) || !existsSync(p.saPub)) {
    openssl(
      ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p.saKey],
      p.dir,
    );
    openssl(["pkey", "-in", p.saKey, "-pubout", "-out", p.saPub], p.dir);
  }
  return p;
}

/** A self-contained kubeconfig (certificates inline) for the admin user. */
export function kubeconfigYaml(server: string, pki: Pki): string {
  const b64 = (path: string) => readFileSync(path).toString("base64");
  return [
    "# The local cluster (slipway cluster up). Admin rights: O=system:masters.",
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: slipway-local",
    "    cluster:",
    `      server: ${server}`,
    `      certificate-authority-data: ${b64(pki.caCert)}`,
    "users:",
    "  - name: slipway-admin",
    "    user:",
    `      client-certificate-data: ${b64(pki.adminCert)}`,
    `      client-key-data: ${b64(pki.adminKey)}`,
    "contexts:",
    "  - name: slipway-local",
    "    context:",
    "      cluster: slipway-local",
    "      user: slipway-admin",
    "current-context: slipway-local",
    "",
  ].join("\n");
}

export function writeKubeconfig(path: string, server: string, pki: Pki): void {
  writeFileSync(path, kubeconfigYaml(server, pki), { mode: 0o600 });
}
