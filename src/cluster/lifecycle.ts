import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { join } from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { privateDir, writeFileWhole } from "../files";
import { freePort } from "../processes";
import { ensurePki, type Pki, pkiPaths, writeKubeconfig } from "./certs";
import { conditionStatus, KubeClient, type KubeCredentials, type KubeObject } from "../kube/client";
import {
  type ClusterPorts,
  FIRST_SERVICE_IP,
  fakeNode,
  gateway,
  gatewayClass,
  type GatewayRef,
  KWOK_NODE_ANNOTATION,
  NODE_NAME,
  namespace,
  SERVICE_CIDR,
  traefikConfig,
} from "./manifests";
import { type ClusterToolchain, findClusterToolchain, type PartBinary } from "./toolchain";

/**
 * `slipway cluster up | down | status`: a real Kubernetes control plane and a
 * Gateway API data plane on 127.0.0.1 (README, "Local cluster"). Every part
 * is a detached process recorded by pid in `<stateDir>/cluster.json`, so the
 * cluster outlives the command that started it and `down` stops exactly
 * what `up` started.
 */

export interface ClusterOptions {
  projectDir: string;
  /** Default `<projectDir>/.slipway/cluster`. */
  stateDir?: string;
  /** The Gateways to install; default: the local stage's `slipway:kubernetes.gateway`. */
  gateways?: GatewayRef[];
  /** Namespaces to create besides the gateways'; default: the local stage's monitoring and deployer namespaces. */
  namespaces?: string[];
  onProgress?: (line: string) => void;
  /** Binaries and files; default: scripts/cluster-toolchain.sh's cache. */
  toolchain?: ClusterToolchain;
  /** How long a part may take to become ready; default 180 s. */
  readyTimeoutMs?: number;
}

export interface ClusterInfo {
  stateDir: string;
  /** Path of the admin kubeconfig. */
  kubeconfig: string;
  apiServerUrl: string;
  /** http://127.0.0.1:<Traefik web port>: every Gateway's address. */
  gatewayUrl: string;
  gatewayPort: number;
  serviceCidr: string;
  pids: Record<string, number>;
  /** From `clusterUp`: the parts this call started (the others were running already). A caller that finds it non-empty and wants to leave the machine as it was calls `clusterDown` afterwards. */
  started?: string[];
}

export interface PartStatus {
  name: string;
  pid?: number;
  running: boolean;
  ready: boolean;
  detail?: string;
}

/** The parts, in start order (down stops them in reverse). */
export const PARTS = [
  "kine",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
  "traefik",
] as const satisfies readonly PartBinary[];
export type PartName = (typeof PARTS)[number];

interface RecordedPart {
  pid: number;
  /** argv[0] as started: a pid that now runs something else is not ours. */
  command: string;
  startedAt: string;
  /**
   * The kernel's start time of the process (clock ticks after boot, /proc/<pid>/stat): with the
   * pid, it names the process we started even after it execs another binary (a wrapper script),
   * and never a later process that reuses the pid. Absent in records of earlier versions.
   */
  startTicks?: number;
}

interface ClusterState {
  version: 1;
  ports: ClusterPorts;
  parts: Partial<Record<PartName, RecordedPart>>;
}

const STATE_FILE = "cluster.json";
const READY_TIMEOUT_MS = 180_000;

export function defaultStateDir(projectDir: string): string {
  return join(projectDir, ".slipway", "cluster");
}

function stateDirOf(o: ClusterOptions): string {
  return o.stateDir ?? defaultStateDir(o.projectDir);
}

function readState(stateDir: string): ClusterState | undefined {
  const file = join(stateDir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as ClusterState;
    return s.version === 1 && s.ports ? s : undefined;
  } catch {
    return undefined;
  }
}

function writeState(stateDir: string, state: ClusterState): void {
  privateDir(stateDir);
  writeFileWhole(join(stateDir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
}

/** Whether `pid` is alive (not a zombie) and runs `command`: pids get reused. */
export function runs(pid: number, command: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return false;
    // A script (a user's wrapper on PATH) runs as `<interpreter> <script> …`.
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv[0] === command || argv[1] === command;
  } catch {
    return false;
  }
}

/** The state letter and start time of `pid` from /proc/<pid>/stat, or undefined when there is no such process. */
function procStat(pid: number): { state: string; startTicks: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name in parentheses: state (field 3) … starttime (field 22).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", startTicks: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** Whether the recorded process still runs (is not a zombie): by start time when recorded, else by its command. */
function alive(rec: RecordedPart | undefined): boolean {
  if (!rec) return false;
  if (rec.startTicks === undefined) return runs(rec.pid, rec.command);
  const now = procStat(rec.pid);
  return !!now && now.state !== "Z" && now.startTicks === rec.startTicks;
}

/**
 * Signals a part's process group (a detached part leads its own, so a wrapper script's children
 * get the signal too), or the process alone when it leads none. Returns false when nothing was there.
 */
function signalPart(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch {
      // no such group (or process): try the next
    }
  }
  return false;
}

function logPath(stateDir: string, part: PartName): string {
  return join(stateDir, "logs", `${part}.log`);
}

function lastLines(path: string, n = 15): string {
  try {
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    return lines.slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port. */
export function listening(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** GET https://127.0.0.1:port/path of a component's own self-signed health endpoint. */
function healthz(port: number, path = "/healthz"): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port, path, method: "GET", rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** The local stage's gateway and the namespaces its NetworkPolicy and RBAC name. */
export function localStageNeeds(projectDir: string): {
  gateways: GatewayRef[];
  namespaces: string[];
} {
  const file = join(projectDir, "Pulumi.local.yaml");
  let k8s: Record<string, unknown> = {};
  if (existsSync(file)) {
    const doc = parseYaml(readFileSync(file, "utf8")) as {
      config?: Record<string, unknown>;
    } | null;
    k8s = (doc?.config?.["slipway:kubernetes"] as Record<string, unknown>) ?? {};
  }
  const gw = (k8s.gateway as Partial<GatewayRef> | undefined) ?? {};
  const deployer = k8s.deployerServiceAccount as { namespace?: string } | undefined;
  return {
    gateways: [
      {
        name: gw.name ?? "slipway-gateway",
        namespace: gw.namespace ?? "gateway-system",
        ...(gw.sectionName ? { sectionName: gw.sectionName } : {}),
      },
    ],
    namespaces: [
      (k8s.monitoringNamespace as string | undefined) ?? "monitoring",
      deployer?.namespace ?? "slipway-system",
    ],
  };
}

function credentials(pki: Pki, apiServerPort: number): KubeCredentials {
  return {
    server: `https://127.0.0.1:${apiServerPort}`,
    ca: readFileSync(pki.caCert, "utf8"),
    cert: readFileSync(pki.adminCert, "utf8"),
    key: readFileSync(pki.adminKey, "utf8"),
  };
}

/** An API client with the admin certificate of a running cluster. */
export function clusterClient(info: Pick<ClusterInfo, "stateDir" | "apiServerUrl">): KubeClient {
  const port = Number(new URL(info.apiServerUrl).port);
  return new KubeClient(credentials(pkiPaths(info.stateDir), port));
}

function infoOf(stateDir: string, state: ClusterState): ClusterInfo {
  const pids: Record<string, number> = {};
  for (const p of PARTS) {
    const rec = state.parts[p];
    if (rec) pids[p] = rec.pid;
  }
  return {
    stateDir,
    kubeconfig: join(stateDir, "kubeconfig"),
    apiServerUrl: `https://127.0.0.1:${state.ports.apiServer}`,
    gatewayUrl: `http://127.0.0.1:${state.ports.gateway}`,
    gatewayPort: state.ports.gateway,
    serviceCidr: SERVICE_CIDR,
    pids,
  };
}

interface Ctx {
  stateDir: string;
  state: ClusterState;
  toolchain: ClusterToolchain;
  pki: Pki;
  kubeconfig: string;
  client: KubeClient;
  gateways: GatewayRef[];
  readyTimeoutMs: number;
}

function argsOf(part: PartName, c: Ctx): { args: string[]; env?: Record<string, string> } {
  const p = c.state.ports;
  const kc = c.kubeconfig;
  switch (part) {
    case "kine":
      privateDir(join(c.stateDir, "kine"));
      return {
        args: [
          "--listen-address",
          `127.0.0.1:${p.kine}`,
          // Its metrics server would bind *:8080 otherwise.
          "--metrics-bind-address",
          "0",
          "--endpoint",
          `sqlite://${join(c.stateDir, "kine", "state.db")}?_journal=WAL&cache=shared&_busy_timeout=30000`,
        ],
      };
    case "kube-apiserver":
      return {
        args: [
          `--etcd-servers=http://127.0.0.1:${p.kine}`,
          "--bind-address=127.0.0.1",
          "--advertise-address=127.0.0.1",
          `--secure-port=${p.apiServer}`,
          `--tls-cert-file=${c.pki.serverCert}`,
          `--tls-private-key-file=${c.pki.serverKey}`,
          `--client-ca-file=${c.pki.caCert}`,
          `--service-account-key-file=${c.pki.saPub}`,
          `--service-account-signing-key-file=${c.pki.saKey}`,
          "--service-account-issuer=https://kubernetes.default.svc",
          `--service-cluster-ip-range=${SERVICE_CIDR}`,
          "--authorization-mode=RBAC",
          // No endpoints for the `kubernetes` Service: loopback addresses are refused there.
          "--endpoint-reconciler-type=none",
          "--enable-priority-and-fairness=false",
          "--profiling=false",
        ],
      };
    case "kube-controller-manager":
      return {
        args: [
          `--kubeconfig=${kc}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          `--service-account-private-key-file=${c.pki.saKey}`,
          `--root-ca-file=${c.pki.caCert}`,
          "--use-service-account-credentials=true",
          // The node lifecycle controller marks every pod NotReady once kwok's node misses its
          // grace period (seen ~50 s after start), and no kubelet ever marks them Ready again:
          // Deployments stay unavailable and the provider's readiness awaits hang. The controller
          // stays on (it lifts the node's not-ready taint, without which nothing is scheduled).
          "--node-monitor-grace-period=24h",
          "--node-startup-grace-period=24h",
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${p.controllerManager}`,
          "--profiling=false",
        ],
      };
    case "kube-scheduler":
      return {
        args: [
          `--kubeconfig=${kc}`,
          `--authentication-kubeconfig=${kc}`,
          `--authorization-kubeconfig=${kc}`,
          "--leader-elect=false",
          "--bind-address=127.0.0.1",
          `--secure-port=${p.scheduler}`,
          "--profiling=false",
        ],
      };
    case "kwok":
      return {
        args: [
          "-c",
          c.toolchain.kwokStages,
          `--kubeconfig=${kc}`,
          "--manage-all-nodes=false",
          `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
          "--node-ip=127.0.0.1",
        ],
      };
    case "traefik": {
      const config = join(c.stateDir, "traefik.yaml");
      writeFileSync(config, traefikConfig(p));
      return { args: [`--configFile=${config}`], env: { KUBECONFIG: kc } };
    }
  }
}

/** Readiness of a running part: true, or a reason it is not ready yet. */
async function probe(part: PartName, c: Ctx): Promise<true | string> {
  const p = c.state.ports;
  try {
    switch (part) {
      case "kine":
        return (await listening(p.kine)) || `nothing listens on 127.0.0.1:${p.kine}`;
      case "kube-apiserver":
        return (await c.client.ready()) || "/readyz is not ok";
      case "kube-controller-manager":
        if (!(await healthz(p.controllerManager))) return "/healthz is not ok";
        // Its service-account controller is what pods need first.
        return (
          !!(await c.client.getObject("v1", "ServiceAccount", "default", "default")) ||
          "no default ServiceAccount yet"
        );
      case "kube-scheduler":
        return (await healthz(p.scheduler)) || "/healthz is not ok";
      case "kwok": {
        const node = await c.client.getObject("v1", "Node", NODE_NAME);
        return conditionStatus(node, "Ready") === "True" || `node ${NODE_NAME} is not Ready`;
      }
      case "traefik": {
        if (!(await httpOk(`http://127.0.0.1:${p.traefikAdmin}/ping`))) return "/ping is not ok";
        for (const g of c.gateways) {
          const obj = await c.client.getObject(
            "gateway.networking.k8s.io/v1",
            "Gateway",
            g.name,
            g.namespace,
          );
          if (conditionStatus(obj, "Programmed") !== "True")
            return `Gateway ${g.namespace}/${g.name} is not Programmed`;
        }
        return true;
      }
    }
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A part this `up` started. Its `ended` resolves on the child's 'exit' event, which Node emits
 * only once it has reaped the process (waitpid): until then the pid cannot be reused, so
 * signalling it reaches our process, and "exited" means gone, not "a /proc check failed".
 */
interface StartedPart {
  rec: RecordedPart;
  /** How it ended (`exit code 3`, `killed by SIGKILL`), once reaped. */
  ended: Promise<string>;
  /** Set when `ended` resolves. */
  how?: string;
}

/** Starts a part, detached. */
function startPart(part: PartName, c: Ctx): StartedPart {
  const { args, env } = argsOf(part, c);
  const command = c.toolchain.bin[part];
  mkdirSync(join(c.stateDir, "logs"), { recursive: true });
  const log = logPath(c.stateDir, part);
  const fd = openSync(log, "a");
  writeFileSync(
    fd,
    `\n==== ${new Date().toISOString()} slipway cluster up: ${command} ${args.join(" ")}\n`,
  );
  try {
    // Detached: its own process group and session, so the cluster outlives
    // the command (and a Ctrl-C in its terminal) that started it.
    const child = spawn(command, args, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...env },
      cwd: c.stateDir,
    });
    // A spawn failure (ENOENT, EACCES) is reported by the check below.
    child.on("error", () => {});
    if (child.pid === undefined)
      throw new Error(
        `local cluster: ${part}: could not start ${command} (missing or not executable)`,
      );
    const started: StartedPart = {
      rec: {
        pid: child.pid,
        command,
        startedAt: new Date().toISOString(),
        startTicks: procStat(child.pid)?.startTicks,
      },
      ended: new Promise<string>((resolve) =>
        child.once("exit", (code, signal) => {
          started.how = code !== null ? `exit code ${code}` : `killed by ${signal}`;
          resolve(started.how);
        }),
      ),
    };
    child.unref();
    return started;
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Stops a part this `up` started and resolves once it is reaped: SIGTERM to its process group,
 * SIGKILL after `graceMs`. Then whatever is left in its group (a wrapper's child) gets SIGKILL:
 * the group outlives its leader, and no other process can be given the group's id while it exists.
 */
async function stopStarted(s: StartedPart, graceMs = 5000): Promise<void> {
  if (s.how === undefined) {
    signalPart(s.rec.pid, "SIGTERM");
    await Promise.race([s.ended, sleep(graceMs)]);
    if (s.how === undefined) signalPart(s.rec.pid, "SIGKILL");
    await Promise.race([s.ended, sleep(10_000)]);
    if (s.how === undefined)
      throw new Error(
        `local cluster: pid ${s.rec.pid} (${s.rec.command}) did not exit within 10 s of SIGKILL`,
      );
  }
  try {
    process.kill(-s.rec.pid, "SIGKILL");
  } catch {
    // the group is empty: nothing left
  }
}

/** A part this `up` started ended before it was ready; `how` is its exit code or signal, if known. */
class PartExited extends Error {
  constructor(
    part: PartName,
    readonly how: string | undefined,
    log: string,
  ) {
    super(
      `local cluster: ${part} exited during start-up${how ? ` (${how})` : ""}; last lines of ${log}:\n${lastLines(log)}`,
    );
  }
}

/**
 * Waits until a part is ready. One this `up` started (`started`) has exited only when its exit
 * event came (it is reaped); one that was running already, when its recorded process is gone.
 */
async function waitReady(
  part: PartName,
  c: Ctx,
  rec: RecordedPart,
  started?: StartedPart,
): Promise<void> {
  const deadline = Date.now() + c.readyTimeoutMs;
  let last: true | string = "not probed";
  while (Date.now() < deadline) {
    if (started ? started.how !== undefined : !alive(rec))
      throw new PartExited(part, started?.how, logPath(c.stateDir, part));
    last = await probe(part, c);
    if (last === true) return;
    await Promise.race([started?.ended, sleep(250)]);
  }
  throw new Error(
    `local cluster: ${part} not ready after ${c.readyTimeoutMs / 1000}s (${last}); last lines of ${logPath(c.stateDir, part)}:\n${lastLines(logPath(c.stateDir, part))}`,
  );
}

async function newPorts(): Promise<ClusterPorts> {
  const taken = new Set<number>();
  const next = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  return {
    kine: await next(),
    apiServer: await next(),
    controllerManager: await next(),
    scheduler: await next(),
    gateway: await next(),
    traefikAdmin: await next(),
  };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`local cluster: ${what} not done after ${timeoutMs / 1000}s`);
}

/** CRDs, GatewayClass, Gateways, namespaces and the fake Node (server-side apply: idempotent). */
async function installObjects(c: Ctx, namespaces: string[], say: (l: string) => void) {
  const t0 = Date.now();
  const crds: KubeObject[] = [];
  for (const file of c.toolchain.gatewayApiCrds) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      const obj = doc.toJS() as KubeObject | null;
      if (obj?.kind === "CustomResourceDefinition") crds.push(obj);
    }
  }
  for (const crd of crds) await c.client.apply(crd);
  await waitFor("Gateway API CRDs established", async () => {
    for (const crd of crds) {
      const got = await c.client.getObject(crd.apiVersion, crd.kind, crd.metadata.name);
      if (conditionStatus(got, "Established") !== "True") return false;
    }
    return true;
  });
  const wanted = [...new Set([...c.gateways.map((g) => g.namespace), ...namespaces])];
  for (const ns of wanted) await c.client.apply(namespace(ns));
  await c.client.apply(gatewayClass());
  for (const g of c.gateways) await c.client.apply(gateway(g, c.state.ports.gateway));
  await c.client.apply(fakeNode());
  say(
    `  objects … ${crds.length} Gateway API CRDs, GatewayClass traefik, Gateway ${c.gateways.map((g) => `${g.namespace}/${g.name}`).join(", ")}, namespaces ${wanted.join(", ")}, node ${NODE_NAME} (${((Date.now() - t0) / 1000).toFixed(1)}s)`,
  );
}

/**
 * Stops recorded parts this process did not start (`down`): SIGTERM to each one's process group,
 * SIGKILL after `graceMs`, then waits (bounded) until none runs.
 */
async function stopPids(recs: RecordedPart[], graceMs = 10_000): Promise<void> {
  // A recorded pid that is no longer the process we started may be someone else's by now (pids wrap).
  const running = () => recs.filter((r) => alive(r));
  for (const r of running()) signalPart(r.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (running().length > 0 && Date.now() < deadline) await sleep(100);
  for (const r of running()) signalPart(r.pid, "SIGKILL");
  const killDeadline = Date.now() + 5000;
  while (running().length > 0 && Date.now() < killDeadline) await sleep(50);
}

/**
 * Starts whatever part is not running (reusing those that are), installs the
 * Gateway API objects, and waits until every part is ready. Idempotent.
 */
export async function clusterUp(o: ClusterOptions): Promise<ClusterInfo> {
  const say = o.onProgress ?? (() => {});
  const stateDir = stateDirOf(o);
  const toolchain = o.toolchain ?? findClusterToolchain();
  const needs =
    o.gateways && o.namespaces
      ? { gateways: o.gateways, namespaces: o.namespaces }
      : localStageNeeds(o.projectDir);
  const gateways = o.gateways ?? needs.gateways;
  const namespaces = o.namespaces ?? needs.namespaces;
  privateDir(stateDir);

  const previous = readState(stateDir);
  const anyAlive = !!previous && PARTS.some((p) => alive(previous.parts[p]));
  // Ports stay as long as a part runs on them; a cluster that is fully down gets fresh ones.
  const state: ClusterState =
    previous && anyAlive ? previous : { version: 1, ports: await newPorts(), parts: {} };
  if (!anyAlive) state.parts = {};
  writeState(stateDir, state);

  const pki = ensurePki(stateDir, FIRST_SERVICE_IP);
  const kubeconfig = join(stateDir, "kubeconfig");
  writeKubeconfig(kubeconfig, `https://127.0.0.1:${state.ports.apiServer}`, pki);
  const c: Ctx = {
    stateDir,
    state,
    toolchain,
    pki,
    kubeconfig,
    client: new KubeClient(credentials(pki, state.ports.apiServer)),
    gateways,
    readyTimeoutMs: o.readyTimeoutMs ?? READY_TIMEOUT_MS,
  };
  say(`local cluster: ${stateDir}`);

  const startedNow: PartName[] = [];
  const handles = new Map<PartName, StartedPart>();
  try {
    for (const part of PARTS) {
      // Once the control plane is up: kwok needs the Node, Traefik the Gateway
      // API objects. Applied on every `up` (idempotent; the gateways may differ).
      if (part === "kwok") await installObjects(c, namespaces, say);
      const t0 = Date.now();
      const rec = state.parts[part];
      if (rec && alive(rec)) {
        await waitReady(part, c, rec);
        say(`  ${part} … running (pid ${rec.pid}), ready`);
        continue;
      }
      startedNow.push(part);
      const started = await startReady(part, c, say, handles);
      say(
        `  ${part} … started (pid ${started.pid}), ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
      );
    }
  } catch (err) {
    // Leave nothing behind that this call started: each is stopped and reaped.
    for (const p of [...startedNow].reverse()) {
      const h = handles.get(p);
      if (h) await stopStarted(h);
    }
    for (const p of startedNow) delete state.parts[p];
    writeState(stateDir, state);
    throw err;
  }
  const info = { ...infoOf(stateDir, state), started: [...startedNow] };
  say(
    `local cluster: ready. API ${info.apiServerUrl}, gateway ${info.gatewayUrl}, kubeconfig ${info.kubeconfig}`,
  );
  return info;
}

/**
 * Starts a part and waits until it is ready. A part that exits before that is started once more,
 * with a progress line naming how it ended (a part killed by a stray signal is not broken); one
 * that exits again is reported with how it ended and the last lines of its log, which holds both
 * starts. The first start is reaped, and its process group emptied, before the second begins:
 * two copies of a part never run at once. `handles` receives the latest start, for the caller's
 * cleanup.
 */
async function startReady(
  part: PartName,
  c: Ctx,
  say: (line: string) => void,
  handles: Map<PartName, StartedPart>,
): Promise<RecordedPart> {
  for (let attempt = 1; ; attempt++) {
    const started = startPart(part, c);
    handles.set(part, started);
    c.state.parts[part] = started.rec;
    writeState(c.stateDir, c.state);
    try {
      await waitReady(part, c, started.rec, started);
      return started.rec;
    } catch (err) {
      if (!(err instanceof PartExited) || attempt > 1) throw err;
      await stopStarted(started);
      say(
        `  ${part} … exited during start-up (${err.how ?? "how unknown"}); pid ${started.rec.pid} is gone, starting it once more`,
      );
    }
  }
}

/** Stops exactly the processes `up` recorded (Traefik first, kine last) and waits until their ports refuse. */
export async function clusterDown(o: ClusterOptions): Promise<void> {
  const say = o.onProgress ?? (() => {});
  const stateDir = stateDirOf(o);
  const state = readState(stateDir);
  if (!state) {
    say(`local cluster: nothing recorded in ${stateDir}`);
    return;
  }
  for (const part of [...PARTS].reverse()) {
    const rec = state.parts[part];
    if (!rec) continue;
    if (alive(rec)) {
      await stopPids([rec]);
      say(`  ${part} … stopped (pid ${rec.pid})`);
    } else {
      say(`  ${part} … was not running (pid ${rec.pid})`);
    }
    delete state.parts[part];
    writeState(stateDir, state);
  }
  const ports = Object.values(state.ports);
  await waitFor(
    `ports ${ports.join(", ")} closed`,
    async () => (await Promise.all(ports.map((p) => listening(p, 300)))).every((l) => !l),
    10_000,
  );
  say("local cluster: down");
}

/**
 * Synchronous last resort for `process.on("exit")` handlers (a test or
 * rehearsal killed before its cleanup ran): SIGTERM to every recorded part
 * that still runs its binary. Prefer `clusterDown`, which waits.
 */
export function clusterSignalSync(o: Pick<ClusterOptions, "projectDir" | "stateDir">): number[] {
  const state = readState(stateDirOf(o));
  const signalled: number[] = [];
  for (const part of [...PARTS].reverse()) {
    const rec = state?.parts[part];
    if (!rec || !alive(rec)) continue;
    if (signalPart(rec.pid, "SIGTERM")) signalled.push(rec.pid);
  }
  return signalled;
}

/** Each part: running (its recorded pid runs its binary) and ready (its probe). */
export async function clusterStatus(
  o: ClusterOptions,
): Promise<{ parts: PartStatus[]; info?: ClusterInfo }> {
  const stateDir = stateDirOf(o);
  const state = readState(stateDir);
  if (!state)
    return {
      parts: PARTS.map((name) => ({ name, running: false, ready: false, detail: "never started" })),
    };
  const pki = pkiPaths(stateDir);
  const gateways = o.gateways ?? localStageNeeds(o.projectDir).gateways;
  let client: KubeClient | undefined;
  try {
    client = new KubeClient(credentials(pki, state.ports.apiServer), { timeoutMs: 3000 });
  } catch {
    client = undefined;
  }
  const c = {
    stateDir,
    state,
    pki,
    kubeconfig: join(stateDir, "kubeconfig"),
    client,
    gateways,
  } as Ctx;
  const parts: PartStatus[] = [];
  for (const name of PARTS) {
    const rec = state.parts[name];
    if (!rec) {
      parts.push({ name, running: false, ready: false, detail: "not started" });
      continue;
    }
    if (!alive(rec)) {
      parts.push({
        name,
        pid: rec.pid,
        running: false,
        ready: false,
        detail: `not running: pid ${rec.pid} has exited; last log line: ${lastLines(logPath(stateDir, name), 1)}`,
      });
      continue;
    }
    const r = client ? await probe(name, c) : "no client certificate";
    parts.push({
      name,
      pid: rec.pid,
      running: true,
      ready: r === true,
      ...(r === true ? {} : { detail: r }),
    });
  }
  const anyRecorded = PARTS.some((p) => state.parts[p]);
  return { parts, ...(anyRecorded ? { info: infoOf(stateDir, state) } : {}) };
}
