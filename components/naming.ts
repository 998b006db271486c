import { SLOT_LABEL, SLOT_TAG, type Slot } from "../src/domain";

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
  slot: SLOT_TAG,
  managedBy: "managed-by",
} as const;

export const LABELS = {
  name: "app.kubernetes.io/name",
  partOf: "app.kubernetes.io/part-of",
  managedBy: "app.kubernetes.io/managed-by",
  slot: SLOT_LABEL,
  stage: "slipway.dev/stage",
  version: "app.kubernetes.io/version",
} as const;

/**
 * The labels of a stage's Kubernetes objects: the service, the stage, who
 * manages them and, for a slot's objects, the slot.
 */
export function slotLabels(service: string, stage: string, slot?: Slot): Record<string, string> {
  return {
    [LABELS.name]: service,
    ...(slot ? { [LABELS.slot]: slot } : {}),
    [LABELS.stage]: stage,
    [LABELS.managedBy]: "slipway",
  };
}

/** A namespace holds the whole service: it is part of it rather than named after it. */
export function namespaceLabels(service: string, stage: string): Record<string, string> {
  const { [LABELS.name]: _name, ...rest } = slotLabels(service, stage);
  return { [LABELS.partOf]: service, ...rest };
}
