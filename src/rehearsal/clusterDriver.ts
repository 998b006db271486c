/**
 * The local cluster as the rehearsal uses it (src/cluster: kine, kube-apiserver,
 * controller manager, scheduler, kwok, Traefik): start it unless it runs, and
 * stop it afterwards only if this rehearsal started it.
 */

export interface ClusterOptions {
  projectDir: string;
  stateDir?: string;
  gateways?: { name: string; namespace: string }[];
  onProgress?: (line: string) => void;
}

export interface ClusterInfo {
  stateDir: string;
  kubeconfig: string;
  apiServerUrl: string;
  /** http://127.0.0.1:<port>: Traefik's entry point, where the Gateway listens. */
  gatewayUrl: string;
  gatewayPort: number;
  /** The loopback range Services get their ClusterIPs from. */
  serviceCidr: string;
  pids: Record<string, number>;
}

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
