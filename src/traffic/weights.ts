import { otherSlot, type Slot } from "../domain";

export interface Weights {
  blue: number;
  green: number;
}

/** The candidate gets `canaryWeight`, the stable slot the rest; they always sum to 100. */
export function weightsFor(stable: Slot, canaryWeight: number): Weights {
  if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
    throw new RangeError(`canaryWeight: got ${canaryWeight}; allowed: an integer from 0 to 100`);
  }
  const candidate = otherSlot(stable);
  return { [stable]: 100 - canaryWeight, [candidate]: canaryWeight } as unknown as Weights;
}
