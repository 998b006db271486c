import type { ReleaseRecord } from "../../../src/config/schema";
import type { StageState } from "../../../src/pipeline/machine";

/** An image pinned by a digest of one repeated hex character: "a" is 1.0.0, "b" 2.0.0 below. */
export const digestImage = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

/** The release of `canaryState`: 2.0.0 (image b) into green, from blue 1.0.0 (image a). */
export function canaryRecord(over: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    id: "r-test",
    phase: "canary",
    candidateSlot: "green",
    artifact: { image: digestImage("b"), version: "2.0.0" },
    previous: { slot: "blue", image: digestImage("a"), version: "1.0.0" },
    position: 1,
    steps: 2,
    startedAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
    ...over,
  };
}

/**
 * A release mid-canary: green (2.0.0) at `canaryWeight` next to the stable blue (1.0.0);
 * `greenReplicas` as the stack file would declare it (undefined: the service's default).
 */
export function canaryState(
  o: { id?: string; canaryWeight?: number; greenReplicas?: number } = {},
): StageState {
  return {
    stable: "blue",
    canaryWeight: o.canaryWeight ?? 10,
    slots: {
      blue: { image: digestImage("a"), version: "1.0.0" },
      green: {
        image: digestImage("b"),
        version: "2.0.0",
        ...(o.greenReplicas !== undefined ? { replicas: o.greenReplicas } : {}),
      },
    },
    release: canaryRecord(o.id ? { id: o.id } : {}),
  };
}
