import type { StageOutputs } from "../contract/outputs";

/** Engine type tokens of the routing resources: the one a canary step or a rollback changes. */
const HTTP_ROUTE_TYPE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute";
const LISTENER_RULE_TYPE = "aws:lb/listenerRule:ListenerRule";

/**
 * The routing resource the stack says it created (`outputs.routing`), found in the stack's state
 * by its id, never by a name derived again here.
 */
export function findRoutingResource<R extends { type: string; outputs?: Record<string, any> }>(
  resources: R[],
  routing: StageOutputs["routing"],
): R | undefined {
  return resources.find((r) =>
    routing.kind === "HTTPRoute"
      ? r.type === HTTP_ROUTE_TYPE &&
        `${r.outputs?.metadata?.namespace}/${r.outputs?.metadata?.name}` === routing.id
      : r.type === LISTENER_RULE_TYPE && r.outputs?.arn === routing.id,
  );
}
