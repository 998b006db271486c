import { existsSync } from "node:fs";
import type { Slot } from "../config/schema";
import { renderedManifests, renderedRouteWeights } from "../pipeline/readBack";
import type { Weights } from "../traffic/weights";
import { type Child, httpOk, type PidFile, startChild, waitUntil } from "./processes";
import type { LocalRegistry } from "./registry";

/**
 * The local stage has no cluster: Pulumi renders its manifests to a directory.
 * This stands in for the two parts of a cluster the rehearsal needs:
 *
 * - a kubelet: each slot's rendered Deployment becomes one local process of
 *   the image it pins (pulled from the local registry), with the Deployment's
 *   environment, on a fixed loopback port per slot; replicas 0 stops it, a new
 *   image or environment restarts it;
 * - a gateway's view of the HTTPRoute: the weights it currently holds.
 *
 * Both follow the rendered files: polled every `pollMs`, and at once when the
 * caller `sync()`s (after each stack update).
 */

export const SLOTS: readonly Slot[] = ["blue", "green"];

export interface DesiredSlot {
  image: string;
  replicas: number;
  env: Record<string, string>;
}

/** Reads the Deployments named `<service>-<slot>` from rendered manifests. Throws on a half-written file. */
export function renderedDeployments(
  dir: string,
  service: string,
): Partial<Record<Slot, DesiredSlot>> {
  const out: Partial<Record<Slot, DesiredSlot>> = {};
  if (!existsSync(dir)) return out;
  for (const doc of renderedManifests(dir)) {
    if (doc?.kind !== "Deployment") continue;
    const slot = SLOTS.find((s) => doc.metadata?.name === `${service}-${s}`);
    if (!slot) continue;
    const container = doc.spec.template.spec.containers[0];
    out[slot] = {
      image: container.image,
      replicas: doc.spec.replicas ?? 1,
      env: Object.fromEntries(
        (container.env ?? []).map((e: { name: string; value?: string }) => [e.name, e.value ?? ""]),
      ),
    };
  }
  return out;
}

export interface SlotProcess {
  slot: Slot;
  image: string;
  version: string;
  env: Record<string, string>;
  child: Child;
  startedAt: number;
}

export type ClusterEvent =
  | {
      type: "started";
      slot: Slot;
      version: string;
      image: string;
      pid: number;
      env: Record<string, string>;
    }
  | { type: "stopped"; slot: Slot; version: string; pid: number; why: string }
  | { type: "exited"; slot: Slot; version: string; pid: number; code: number | null }
  | { type: "weights"; weights: Weights }
  | { type: "error"; message: string };

export interface LocalClusterOptions {
  renderDir: string;
  service: string;
  /** Polled until it answers 200 before a started process counts as running. */
  readyPath: string;
  registry: LocalRegistry;
  /** The loopback port each slot's process listens on (what Prometheus scrapes). */
  ports: Record<Slot, number>;
  pids: PidFile;
  pollMs?: number;
  onEvent?: (event: ClusterEvent) => void;
}

export class LocalCluster {
  private running = new Map<Slot, SlotProcess>();
  private weights: Weights | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Every weight change seen, with its time: the load generator's schedule, for the report. */
  readonly weightHistory: { at: number; weights: Weights }[] = [];

  constructor(readonly options: LocalClusterOptions) {}

  url(slot: Slot): string {
    return `http://127.0.0.1:${this.options.ports[slot]}`;
  }

  /** The weights of the rendered HTTPRoute as last read (undefined before the first render). */
  currentWeights(): Weights | undefined {
    return this.weights;
  }

  process(slot: Slot): SlotProcess | undefined {
    return this.running.get(slot);
  }

  start(): void {
    this.timer = setInterval(() => void this.sync().catch(() => {}), this.options.pollMs ?? 500);
  }

  /** Reconciles processes and weights with the rendered files now; calls are serialised. */
  sync(): Promise<void> {
    const next = this.queue.then(() => this.reconcile());
    this.queue = next.catch(() => {});
    return next;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const { renderDir, service } = this.options;
    let desired: Partial<Record<Slot, DesiredSlot>>;
    let weights: Weights | undefined;
    try {
      desired = renderedDeployments(renderDir, service);
      if (existsSync(renderDir) && (desired.blue || desired.green))
        weights = renderedRouteWeights(renderDir, service);
    } catch {
      // Pulumi is writing the files right now; the next poll reads them whole.
      return;
    }
    for (const slot of SLOTS) {
      const want = desired[slot];
      const have = this.running.get(slot);
      const wanted = want && want.replicas > 0 ? want : undefined;
      if (
        have &&
        (!wanted ||
          wanted.image !== have.image ||
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
    if (
      weights &&
      (!this.weights || weights.blue !== this.weights.blue || weights.green !== this.weights.green)
    ) {
      this.weights = weights;
      this.weightHistory.push({ at: Date.now(), weights });
      this.options.onEvent?.({ type: "weights", weights });
    }
  }

  private async startSlot(slot: Slot, want: DesiredSlot): Promise<void> {
    const { manifest, binary } = this.options.registry.pull(want.image);
    // Image env first, the Deployment's over it (as a container runtime does); then what
    // only this machine knows: the slot's loopback port.
    const env: Record<string, string> = {
      ...manifest.env,
      ...want.env,
      PORT: String(this.options.ports[slot]),
      BIND_ADDR: "127.0.0.1",
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
      child,
      startedAt: Date.now(),
    };
    this.running.set(slot, proc);
    try {
      await waitUntil(
        `${slot} slot (${version})`,
        () => httpOk(`${this.url(slot)}${this.options.readyPath}`),
        10_000,
        child,
      );
    } catch (err) {
      this.options.onEvent?.({ type: "error", message: (err as Error).message });
      await this.stopSlot(slot, "not ready");
      throw err;
    }
    this.options.onEvent?.({
      type: "started",
      slot,
      version,
      image: want.image,
      pid: child.pid,
      env: manifest.env,
    });
  }

  private async stopSlot(slot: Slot, why: string): Promise<void> {
    const have = this.running.get(slot);
    if (!have) return;
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

  /** Stops polling and every slot process. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.queue.catch(() => {});
    this.stopped = true;
    await Promise.all(SLOTS.map((slot) => this.stopSlot(slot, "rehearsal finished")));
  }
}

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
