import type { Slot } from "../src/config/schema";

/**
 * Physical names that never depend on which slot is stable or on the weight,
 * so promotion and canary steps cannot rename (replace) anything.
 */
export const slotResourceName = (service: string, slot: Slot) => `${service}-${slot}`;
export const routeName = (service: string) => service;
export const flagsName = (service: string) => `${service}-flags`;
export const defaultNamespace = (service: string, stage: string) => `${service}-${stage}`;

export const LABELS = {
  name: "app.kubernetes.io/name",
  partOf: "app.kubernetes.io/part-of",
  managedBy: "app.kubernetes.io/managed-by",
  slot: "slipway.dev/slot",
  stage: "slipway.dev/stage",
  version: "app.kubernetes.io/version",
} as const;
