import * as pulumi from "@pulumi/pulumi";
import type { Weights } from "../src/traffic/weights";

/**
 * The error for a component argument a caller built by hand: stack config has been through
 * parseStageConfig already, but the components are a library with their own typed arguments.
 * A ResourceError, so Pulumi shows it against the component it belongs to.
 */
export function argumentError(
  resource: pulumi.Resource,
  argument: string,
  value: unknown,
  allowed: string,
): pulumi.ResourceError {
  return new pulumi.ResourceError(
    `${argument}: got ${JSON.stringify(value) ?? String(value)}; allowed: ${allowed}`,
    resource,
  );
}

/** A slot's replica count, as the config contract allows it (0 for an idle slot). */
export function checkReplicas(resource: pulumi.Resource, replicas: number): void {
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 1000)
    throw argumentError(resource, "replicas", replicas, "an integer from 0 to 1000");
}

/** The weighted route's split: what `weightsFor` gives, so neither slot is starved by a typo. */
export function checkWeights(resource: pulumi.Resource, weights: Weights): void {
  const valid = (w: number) => Number.isInteger(w) && w >= 0 && w <= 100;
  if (!valid(weights.blue) || !valid(weights.green) || weights.blue + weights.green !== 100)
    throw argumentError(
      resource,
      "weights",
      weights,
      "integers from 0 to 100 for blue and green that add up to 100",
    );
}
