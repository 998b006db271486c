import { existsSync } from "node:fs";
import { request } from "node:http";
import { SLOTS, type Slot } from "../domain";
import { KubeClient, kubePaths } from "../kube/client";
import { renderedManifests, renderedRouteWeights, weightsOfHttpRoute } from "../pipeline/readBack";
import type { Weights } from "../traffic/weights";
import { type Child, type PidFile, startChild, waitUntil } from "../processes";
import type { LocalRegistry } from "./registry";

/**
 * The kubelet of the rehearsal: each slot whose Deployment asks for replicas
 * runs as one local process of the image it pins (pulled from the local
 * registry), with the Deployment's environment. Replicas 0 stops it; a new
 * image, environment or address restarts it.
 *
 * Where the Deployments come from is a `SlotSource`:
 * - `liveSource`: the stage's Deployments and Services read from the API
 *   server. Each process listens on its Service's ClusterIP:port (an address
 *   in the cluster's loopback service range), which is where the Gateway
 *   (Traefik, `nativeLBByDefault`) sends the traffic it routes to that Service.
 *   Pod IPs are never used.
 * - `renderedSource`: render mode (no cluster), the rendered manifests and a
 *   fixed loopback port per slot.
 *
 * It polls the source every `pollMs`, and at once on `sync()`.
 */

export interface DesiredSlot {
  image: string;
  replicas: number;
  env: Record<string, string>;
  /** Where the process listens: loopback only. */
  host: string;
  port: number;
}

export interface SourceState {
  slots: Partial<Record<Slot, DesiredSlot>>;
  /** The weights the stage's HTTPRoute holds, when it exists. */
  weights?: Weights;
}

export interface SlotSource {
  /** For messages: where the Deployments are read from. */
  readonly describe: string;
  read(): Promise<SourceState>;
}

const isLoopback = (ip: string) => /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);

/** The container env of a Deployment's first container, as a map. */
function containerEnv(deployment: any): Record<string, string> {
  const container = deployment?.spec?.template?.spec?.containers?.[0] ?? {};
  return Object.fromEntries(
    (container.env ?? []).map((e: { name: string; value?: string }) => [e.name, e.value ?? ""]),
  );
}

/** The slot a Deployment or Service belongs to, by its name `<service>-<slot>`. */
function slotOf(object: any, service: string): Slot | undefined {
  return SLOTS.find((s) => object?.metadata?.name === `${service}-${s}`);
}

/**
 * Pure: what should run, from the API's Deployments and Services of one stage.
 * A slot's address is its Service's ClusterIP and first port; a ClusterIP outside
 * 127.0.0.0/8 is refused (this machine sends traffic to loopback only).
 */
export function desiredFromApi(
  deployments: any[],
  services: any[],
  service: string,
): { slots: Partial<Record<Slot, DesiredSlot>>; problems: string[] } {
  const slots: Partial<Record<Slot, DesiredSlot>> = {};
  const problems: string[] = [];
  for (const d of deployments) {
    const slot = slotOf(d, service);
    if (!slot) continue;
    const svc = services.find((s) => slotOf(s, service) === slot);
    const clusterIp: string | undefined = svc?.spec?.clusterIP;
    const port: number | undefined = svc?.spec?.ports?.[0]?.port;
    if (!svc || !clusterIp || !port) {
      problems.push(`slot ${slot}: Service ${service}-${slot} has no ClusterIP and port yet`);
      continue;
    }
    if (!isLoopback(clusterIp)) {
      problems.push(
        `slot ${slot}: Service ${service}-${slot} has ClusterIP ${clusterIp}, which is not a loopback address; the local cluster's service range must be in 127.0.0.0/8 (nothing here connects elsewhere)`,
      );
      continue;
    }
    slots[slot] = {
      image: d.spec.template.spec.containers[0].image,
      replicas: d.spec.replicas ?? 1,
      env: containerEnv(d),
      host: clusterIp,
      port,
    };
  }
  return { slots, problems };
}

/** The stage's Deployments, Services and HTTPRoute, read through the API server. */
export function liveSource(args: {
  client: KubeClient;
  namespace: string;
  service: string;
  routeName: string;
  onProblem?: (message: string) => void;
}): SlotSource {
  const { client, namespace, service } = args;
  let lastProblems = "";
  return {
    describe: `the API server ${client.server}, namespace ${namespace}`,
    async read() {
      const [deployments, services] = await Promise.all([
        client.list(kubePaths.deployments(namespace)),
        client.list(kubePaths.services(namespace)),
      ]);
      const { slots, problems } = desiredFromApi(deployments, services, service);
      const text = problems.join("; ");
      if (text && text !== lastProblems) args.onProblem?.(text);
      lastProblems = text;
      let weights: Weights | undefined;
      try {
        const route = await client.get(kubePaths.httpRoute(namespace, args.routeName));
        weights = weightsOfHttpRoute(route.spec, service, `${namespace}/${args.routeName}`);
      } catch {
        // Not created yet (the first deploy is under way).
      }
      return { slots, weights };
    },
  };
}

/** Render mode: the rendered Deployments, on a fixed 127.0.0.1 port per slot. */
export function renderedSource(args: {
  renderDir: string;
  service: string;
  ports: Record<Slot, number>;
}): SlotSource {
  return {
    describe: `the rendered manifests in ${args.renderDir}`,
    async read() {
      const slots: Partial<Record<Slot, DesiredSlot>> = {};
      if (!existsSync(args.renderDir)) return { slots };
      for (const doc of renderedManifests(args.renderDir)) {
        if (doc?.kind !== "Deployment") continue;
        const slot = slotOf(doc, args.service);
        if (!slot) continue;
        slots[slot] = {
          image: doc.spec.template.spec.containers[0].image,
          replicas: doc.spec.replicas ?? 1,
          env: containerEnv(doc),
          host: "127.0.0.1",
          port: args.ports[slot],
        };
      }
      const weights =
        slots.blue || slots.green ? renderedRouteWeights(args.renderDir, args.service) : undefined;
      return { slots, weights };
    },
  };
}

export interface SlotProcess {
  slot: Slot;
  image: string;
  version: string;
  env: Record<string, string>;
  host: string;
  port: number;
  child: Child;
  startedAt: number;
}

export type SupervisorEvent =
  | {
      type: "started";
      slot: Slot;
      version: string;
      image: string;
      pid: number;
      address: string;
      env: Record<string, string>;
    }
  | { type: "stopped"; slot: Slot; version: string; pid: number; why: string }
  | { type: "exited"; slot: Slot; version: string; pid: number; code: number | null }
  | { type: "weights"; weights: Weights }
  | { type: "error"; message: string };

export interface SupervisorOptions {
  source: SlotSource;
  service: string;
  /** Polled until it answers 200 before a started process counts as running. */
  readyPath: string;
  metricsPath: string;
  registry: LocalRegistry;
  pids: PidFile;
  pollMs?: number;
  onEvent?: (event: SupervisorEvent) => void;
}

/** Requests a slot's processes answered, by their own `http_requests_total` (probes and scrapes excluded). */
export interface ServedCount {
  total: number;
  /** 5xx answers. */
  errors: number;
}

export class SlotSupervisor {
  private running = new Map<Slot, SlotProcess>();
  private weights: Weights | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Per process (pid): the last counters read from it, kept after it stops. */
  private served = new Map<number, { slot: Slot } & ServedCount>();
  /** Every weight change seen, with its time, for the report. */
  readonly weightHistory: { at: number; weights: Weights }[] = [];

  constructor(readonly options: SupervisorOptions) {}

  /** Base URL of a running slot's process (its Service's ClusterIP:port on a live cluster). */
  url(slot: Slot): string | undefined {
    const p = this.running.get(slot);
    return p ? `http://${p.host}:${p.port}` : undefined;
  }

  currentWeights(): Weights | undefined {
    return this.weights;
  }

  process(slot: Slot): SlotProcess | undefined {
    return this.running.get(slot);
  }

  /** The addresses Prometheus scrapes: every running slot's host:port. */
  targets(): string[] {
    return [...this.running.values()].map((p) => `${p.host}:${p.port}`);
  }

  start(): void {
    this.timer = setInterval(() => void this.sync().catch(() => {}), this.options.pollMs ?? 500);
  }

  /** Reconciles the processes with the source now; calls are serialised. */
  sync(): Promise<void> {
    const next = this.queue.then(() => this.reconcile());
    this.queue = next.catch(() => {});
    return next;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    let state: SourceState;
    try {
      state = await this.options.source.read();
    } catch {
      // A half-written render or an API hiccup; the next poll reads it again.
      return;
    }
    for (const slot of SLOTS) {
      const want = state.slots[slot];
      const have = this.running.get(slot);
      const wanted = want && want.replicas > 0 ? want : undefined;
      if (
        have &&
        (!wanted ||
          wanted.image !== have.image ||
          wanted.host !== have.host ||
          wanted.port !== have.port ||
          !sameEnv(wanted.env, have.env) ||
          have.child.exited())
      ) {
        await this.stopSlot(
          slot,
          !wanted ? "scaled to 0" : have.child.exited() ? "exited" : "new release",
        );
      }
      if (wanted && !this.running.has(slot)) await this.startSlot(slot, wanted);
    }
    const w = state.weights;
    if (w && (!this.weights || w.blue !== this.weights.blue || w.green !== this.weights.green)) {
      this.weights = w;
      this.weightHistory.push({ at: Date.now(), weights: w });
      this.options.onEvent?.({ type: "weights", weights: w });
    }
  }

  private async startSlot(slot: Slot, want: DesiredSlot): Promise<void> {
    const { manifest, binary } = this.options.registry.pull(want.image);
    // Image env first, the Deployment's over it (as a container runtime does); then what only
    // this machine knows: the address to listen on.
    const env: Record<string, string> = {
      ...manifest.env,
      ...want.env,
      PORT: String(want.port),
      BIND_ADDR: want.host,
    };
    const version = want.env.VERSION ?? manifest.labels["org.opencontainers.image.version"] ?? "?";
    const name = `${this.options.service}-${slot} ${version}`;
    const child = startChild(name, binary, [], env, (code) => {
      const current = this.running.get(slot);
      if (current?.child === child && !this.stopped) {
        this.options.onEvent?.({ type: "exited", slot, version, pid: child.pid, code });
      }
    });
    this.options.pids.add(child, binary);
    const proc: SlotProcess = {
      slot,
      image: want.image,
      version,
      env: want.env,
      host: want.host,
      port: want.port,
      child,
      startedAt: Date.now(),
    };
    this.running.set(slot, proc);
    this.served.set(child.pid, { slot, total: 0, errors: 0 });
    const base = `http://${want.host}:${want.port}`;
    try {
      await waitUntil(
        `${slot} slot (${version}) on ${want.host}:${want.port}`,
        async () => (await httpGet(`${base}${this.options.readyPath}`)).status === 200,
        10_000,
        child,
      );
    } catch (err) {
      const hint =
        want.port < 1024 && process.getuid?.() !== 0
          ? ` (port ${want.port} is the Service's port; listening on it needs root or sysctl net.ipv4.ip_unprivileged_port_start=0)`
          : "";
      this.options.onEvent?.({ type: "error", message: `${(err as Error).message}${hint}` });
      await this.stopSlot(slot, "not ready");
      throw err;
    }
    this.options.onEvent?.({
      type: "started",
      slot,
      version,
      image: want.image,
      pid: child.pid,
      address: `${want.host}:${want.port}`,
      env: manifest.env,
    });
  }

  private async stopSlot(slot: Slot, why: string): Promise<void> {
    const have = this.running.get(slot);
    if (!have) return;
    // Its counters die with it: read them one last time.
    await this.readCounters(have).catch(() => {});
    this.running.delete(slot);
    await have.child.stop();
    this.options.pids.remove(have.child.pid);
    this.options.onEvent?.({
      type: "stopped",
      slot,
      version: have.version,
      pid: have.child.pid,
      why,
    });
  }

  private async readCounters(p: SlotProcess): Promise<void> {
    const res = await httpGet(`http://${p.host}:${p.port}${this.options.metricsPath}`);
    if (res.status !== 200) return;
    this.served.set(p.child.pid, { slot: p.slot, ...servedFromMetrics(res.body) });
  }

  /**
   * Requests each slot has served so far, by the services' own counters: every process that
   * ran for the slot, the running ones read now. Differences between two calls are what the
   * slots served in between.
   */
  async servedSoFar(): Promise<Record<Slot, ServedCount>> {
    await Promise.all([...this.running.values()].map((p) => this.readCounters(p).catch(() => {})));
    const out: Record<Slot, ServedCount> = {
      blue: { total: 0, errors: 0 },
      green: { total: 0, errors: 0 },
    };
    for (const c of this.served.values()) {
      out[c.slot].total += c.total;
      out[c.slot].errors += c.errors;
    }
    return out;
  }

  /** Stops polling and every slot process. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue.catch(() => {});
    this.stopped = true;
    await Promise.all(SLOTS.map((slot) => this.stopSlot(slot, "rehearsal finished")));
  }
}

/** Pure: the sum of `http_requests_total` over its series in a Prometheus text exposition, and of its 5xx ones. */
export function servedFromMetrics(text: string): ServedCount {
  let total = 0;
  let errors = 0;
  for (const line of text.split("\n")) {
    const m = /^http_requests_total(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (!Number.isFinite(value)) continue;
    total += value;
    if (/code="5\d\d"/.test(m[1] ?? "")) errors += value;
  }
  return { total, errors };
}

/** Differences of two `servedSoFar()` readings. */
export function servedBetween(
  before: Record<Slot, ServedCount>,
  after: Record<Slot, ServedCount>,
): Record<Slot, ServedCount> {
  const d = (s: Slot) => ({
    total: after[s].total - before[s].total,
    errors: after[s].errors - before[s].errors,
  });
  return { blue: d("blue"), green: d("green") };
}

/** A GET on loopback without keep-alive (a supervisor probe must not hold sockets). */
function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (!isLoopback(u.hostname) && u.hostname !== "localhost")
      return reject(new Error(`${u.hostname} is not a loopback address`));
    const req = request(u, { timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
