/**
 * The two slots of a stage: two service sets with stable names. One is stable (serves
 * production traffic), the other the candidate; promotion flips which is which and never
 * renames either.
 */
export const SLOTS = ["blue", "green"] as const;
export type Slot = (typeof SLOTS)[number];

export const isSlot = (v: unknown): v is Slot => v === "blue" || v === "green";
export const otherSlot = (slot: Slot): Slot => (slot === "blue" ? "green" : "blue");

/**
 * Where a live object records the slot it serves: a label on Kubernetes objects, a tag on AWS
 * ones. The components write them, the policy pack and the read-back find slots by them.
 */
export const SLOT_LABEL = "slipway.dev/slot";
export const SLOT_TAG = "slipway:slot";
