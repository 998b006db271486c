import { slotResourceName } from "../../components/naming";
import { SLOTS, type Slot } from "../domain";
import { KubeApiError, kubePaths, type KubeClient } from "../kube/client";
import { SERVING_PROBE_ATTEMPTS, SERVING_PROBE_TIMEOUT_MS } from "../defaults";
import { NotServingError } from "./errors";
import { replicasOf, weightsOf, type StageState } from "./machine";

/**
 * What serves, read from the live objects rather than from the route alone: a route at the
 * right weights in front of a slot with no ready pods, or behind a Gateway that is down, is an
 * outage however good the weights look. Checked before steps, after analyses, before promotion
 * and before the scale-down (`Effects.serving`).
 */
export interface ServingCheck {
  /** Resolves when every slot the state declares with replicas serves; throws NotServingError otherwise. */
  check(state: StageState, fullReplicas: number, when: string): Promise<void>;
}

/** The probes through the Gateway: the stage's URL, the health path, and the tester header. */
export interface GatewayProbe {
  url: string;
  healthPath: string;
  testerHeader: () => Promise<{ name: string; value: string } | undefined>;
}

/**
 * A Kubernetes stage: each slot's Deployment (named as the route's backends are) has the
 * declared image and at least the declared ready replicas; and, when the Gateway's URL is
 * known, a plain and a tester-header request through it are answered 2xx.
 */
export class KubernetesServing implements ServingCheck {
  constructor(
    private readonly api: () => KubeClient,
    private readonly service: string,
    private readonly namespace: string,
    private readonly gateway?: GatewayProbe,
  ) {}

  async check(state: StageState, fullReplicas: number, when: string): Promise<void> {
    const problems: string[] = [];
    for (const slot of servingSlots(state)) {
      const declared = replicasOf(state, slot, fullReplicas);
      if (declared === 0) continue; // a scaled-down slot serves nothing, by design
      problems.push(...(await this.slotProblems(slot, state.slots[slot].image, declared)));
    }
    if (this.gateway) problems.push(...(await gatewayProblems(this.gateway)));
    if (problems.length > 0) throw new NotServingError(when, problems);
  }

  private async slotProblems(slot: Slot, image: string, declared: number): Promise<string[]> {
    const name = slotResourceName(this.service, slot);
    const client = this.api();
    let deployment: any;
    try {
      deployment = await client.get(
        `${kubePaths.deployments(this.namespace)}/${encodeURIComponent(name)}`,
      );
    } catch (err) {
      return [
        err instanceof KubeApiError && err.status === 404
          ? `${slot}: no Deployment ${this.namespace}/${name} in the cluster (deleted outside the stack?)`
          : `${slot}: cannot read Deployment ${this.namespace}/${name}: ${(err as Error).message}`,
      ];
    }
    const problems: string[] = [];
    const images: string[] = (deployment?.spec?.template?.spec?.containers ?? []).map(
      (c: { image?: string }) => c.image,
    );
    if (!images.includes(image))
      problems.push(
        `${slot}: Deployment ${name} runs ${images.join(", ") || "no image"}, the stack declares ${image}`,
      );
    const wanted = deployment?.spec?.replicas ?? 1;
    const ready = deployment?.status?.readyReplicas ?? 0;
    if (wanted < declared)
      problems.push(
        `${slot}: Deployment ${name} is scaled to ${wanted}, the stack declares ${declared}`,
      );
    if (ready < declared)
      problems.push(`${slot}: Deployment ${name} has ${ready}/${declared} ready replicas`);
    return problems;
  }
}

/**
 * The slots that must serve: those the route sends traffic to, and during a canary the
 * candidate too (testers reach it through the header route, and the next step or the
 * promotion sends it more). An idle slot after a rollback or promotion receives nothing.
 */
export function servingSlots(state: StageState): Slot[] {
  const weights = weightsOf(state);
  const candidate = SLOTS.find((s) => s !== state.stable)!;
  const canary = state.release?.phase === "canary" || state.release?.phase === "paused";
  return SLOTS.filter((slot) => weights[slot] > 0 || (canary && slot === candidate));
}

/** Plain and tester-header requests to the health path through the Gateway; each may retry. */
async function gatewayProblems(gateway: GatewayProbe): Promise<string[]> {
  const url = new URL(gateway.healthPath, gateway.url).toString();
  const header = await gateway.testerHeader();
  const problems: string[] = [];
  for (const [what, headers] of [
    ["a plain request", {}],
    ...(header ? [["a tester-header request", { [header.name]: header.value }] as const] : []),
  ] as const) {
    const answer = await probe(url, headers);
    if (answer !== undefined)
      problems.push(`the Gateway did not serve ${what} to ${url}: ${answer}`);
  }
  return problems;
}

/** Undefined when a 2xx came back within the attempts; otherwise the last answer, in words. */
async function probe(url: string, headers: Record<string, string>): Promise<string | undefined> {
  let last = "";
  for (let attempt = 1; attempt <= SERVING_PROBE_ATTEMPTS; attempt++) {
    try {
      const res = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(SERVING_PROBE_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      if (res.status >= 200 && res.status < 300) return undefined;
      last = `status ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      last =
        e.name === "TimeoutError"
          ? `no answer within ${SERVING_PROBE_TIMEOUT_MS / 1000}s`
          : (e.cause?.code ?? e.message);
    }
  }
  return `${last} (${SERVING_PROBE_ATTEMPTS} attempts)`;
}
