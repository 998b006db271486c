import type { Runtime, ServiceConfig } from "../config/schema";

/**
 * What a Go or a Rust binary needs to know about its container: Go's scheduler
 * and GC cannot see cgroup limits unless told, and Tokio sizes its worker pool
 * from the host's cores. Probes suit binaries that start in milliseconds.
 */
export interface RuntimeProfile {
  runtime: Runtime;
  env: Record<string, string>;
  probe: {
    initialDelaySeconds: number;
    periodSeconds: number;
    timeoutSeconds: number;
    failureThreshold: number;
  };
}

/** Whole cores available to the process, at least one. */
export function coreCount(cpu: number): number {
  return Math.max(1, Math.floor(cpu));
}

export function runtimeProfile(
  service: Pick<ServiceConfig, "runtime" | "cpu" | "memoryMiB">,
): RuntimeProfile {
  const probe = {
    initialDelaySeconds: 1,
    periodSeconds: 5,
    timeoutSeconds: 2,
    failureThreshold: 3,
  };
  switch (service.runtime) {
    case "go":
      return {
        runtime: "go",
        probe,
        env: {
          GOMAXPROCS: String(coreCount(service.cpu)),
          // Leave ~10% headroom for non-heap memory so the GC works harder before the OOM killer acts.
          GOMEMLIMIT: `${Math.floor(service.memoryMiB * 0.9)}MiB`,
        },
      };
    case "rust":
      return {
        runtime: "rust",
        probe,
        env: {
          TOKIO_WORKER_THREADS: String(coreCount(service.cpu)),
          RUST_BACKTRACE: "1",
        },
      };
  }
}

/** The environment of one slot's containers: runtime defaults first, the service's own env wins. */
export function containerEnv(
  service: ServiceConfig,
  slot: string,
  release: { version: string; revision?: string },
): Record<string, string> {
  return {
    ...runtimeProfile(service).env,
    ...service.env,
    PORT: String(service.port),
    SERVICE_NAME: service.name,
    SLOT: slot,
    VERSION: release.version,
    ...(release.revision ? { REVISION: release.revision } : {}),
  };
}
