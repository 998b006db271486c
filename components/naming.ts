import type { Slot } from "../src/config/schema";

/**
 * Physical names that never depend on which slot is stable or on the weight,
 * so promotion and canary steps cannot rename (replace) anything.
 */
export const slotResourceName = (service: string, slot: Slot) => `${service}-${slot}`;
export const routeName = (service: string) => service;
export const flagsName = (service: string) => `${service}-flags`;
export const defaultNamespace = (service: string, stage: string) => `${service}-${stage}`;

/** AWS tags; `slot` marks the slot a target group, task or alarm serves (the read-back uses it). */
export const AWS_TAGS = {
  service: "slipway:service",
  stage: "slipway:stage",
  slot: "slipway:slot",
  managedBy: "managed-by",
} as const;

export const LABELS = {
  name: "app.kubernetes.io/name",
  partOf: "app.kubernetes.io/part-of",
  managedBy: "app.kubernetes.io/managed-by",
  slot: "slipway.dev/slot",
  stage: "slipway.dev/stage",
  version: "app.kubernetes.io/version",
} as const;
