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

/** Whether every part of a status answer reports itself running (shape-tolerant). */
export function allRunning(status: { parts: unknown[]; info?: ClusterInfo }): boolean {
  if (!status.info || status.parts.length === 0) return false;
  return status.parts.every((p) => {
    const part = p as Record<string, unknown>;
    if (typeof part.running === "boolean")
      return part.running && (typeof part.ready !== "boolean" || part.ready);
    if (typeof part.ready === "boolean") return part.ready;
    if (typeof part.ok === "boolean") return part.ok;
    if (typeof part.state === "string") return /^(running|ready|up)$/i.test(part.state);
    if (typeof part.status === "string") return /^(running|ready|up)$/i.test(part.status);
    return false;
  });
}
