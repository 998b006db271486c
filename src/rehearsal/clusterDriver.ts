/**
 * The local cluster as the rehearsal uses it (src/cluster: kine, kube-apiserver,
 * controller manager, scheduler, kwok, Traefik): start it unless it runs, and
 * stop it afterwards only if this rehearsal started it.
 */

import type { ClusterInfo, ClusterOptions } from "../cluster";

export type { ClusterInfo };

export interface ClusterDriver {
  clusterUp(o: ClusterOptions): Promise<ClusterInfo>;
  clusterDown(o: ClusterOptions): Promise<void>;
  clusterStatus(o: ClusterOptions): Promise<{ parts: unknown[]; info?: ClusterInfo }>;
}

export async function localClusterDriver(): Promise<ClusterDriver> {
  return (await import("../cluster/index")) as ClusterDriver;
}

/** Whether any part of a status answer reports itself running. */
export function anyRunning(status: { parts: unknown[] }): boolean {
  return status.parts.some((p) => (p as { running?: unknown }).running === true);
}
