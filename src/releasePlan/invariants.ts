import type { AnalysisSpec } from "../analysis/spec";
import type { PlanStep } from "../domain";
import type { PlannedTransition } from "./transitions";

/**
 * What each planned transition would change, and the invariants that make
 * canaries cheap and safe, checked before a release. Pure.
 */
export type ChangeOp = "create" | "update" | "replace" | "delete";

export interface ResourceChange {
  op: ChangeOp;
  type: string;
  name: string;
  urn: string;
  /** Input property paths that change, e.g. spec.rules[1].backendRefs[0].weight. */
  paths: string[];
}

export interface TransitionPreview {
  label: string;
  kind: PlannedTransition["kind"];
  weights: { blue: number; green: number };
  changes: ResourceChange[];
  /** create/update/replace/delete counts, as the engine's change summary reads. */
  summary: Partial<Record<ChangeOp, number>>;
}

export const ROUTING_TYPES = [
  "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
  "aws:lb/listenerRule:ListenerRule",
] as const;

export const INVARIANTS = {
  "slots-never-replaced": "no transition replaces or deletes a resource",
  "creates-only-on-deploy": "only the deploy creates resources (the candidate's first creation)",
  "canary-step-changes-only-routing":
    "a setWeight step changes nothing but the routing resource, by one update",
  "rollback-changes-only-routing":
    "a rollback (weight to 0, or the flip back after promotion) is one update to the routing resource",
} as const;
export type InvariantName = keyof typeof INVARIANTS;

export interface Violation {
  invariant: InvariantName;
  transition: string;
  detail: string;
}

const isRouting = (type: string) => (ROUTING_TYPES as readonly string[]).includes(type);
const describeChange = (c: ResourceChange) =>
  `${c.op} ${c.type} ${c.name}${c.paths.length ? ` (${c.paths.slice(0, 5).join(", ")}${c.paths.length > 5 ? ", …" : ""})` : ""}`;

/**
 * The tester token a stage deployed before `slipway:testerToken` (or by a hand-run `pulumi up`
 * without it) holds as a dynamic resource: the first deploy from the pipeline moves its value to
 * config and deletes the resource, with the header unchanged (StageStack.ensureTesterToken).
 */
const legacyToken = (c: ResourceChange) =>
  c.op === "delete" && c.type === "pulumi-nodejs:dynamic/slipway:SecretToken";

export function checkInvariants(
  previews: readonly TransitionPreview[],
  planned: readonly PlannedTransition[],
): Violation[] {
  const out: Violation[] = [];
  previews.forEach((p, i) => {
    const t = planned[i]!;
    for (const c of p.changes) {
      if ((c.op === "replace" || c.op === "delete") && !(t.kind === "deploy" && legacyToken(c)))
        out.push({
          invariant: "slots-never-replaced",
          transition: p.label,
          detail: describeChange(c),
        });
      if (c.op === "create" && t.kind !== "deploy")
        out.push({
          invariant: "creates-only-on-deploy",
          transition: p.label,
          detail: describeChange(c),
        });
    }
    const weightStep = t.kind === "setWeight";
    if (weightStep || t.rollback) {
      const invariant: InvariantName = weightStep
        ? "canary-step-changes-only-routing"
        : "rollback-changes-only-routing";
      const others = p.changes.filter((c) => !(isRouting(c.type) && c.op === "update"));
      for (const c of others)
        out.push({ invariant, transition: p.label, detail: describeChange(c) });
      const routing = p.changes.filter((c) => isRouting(c.type));
      if (routing.length > 1)
        out.push({
          invariant,
          transition: p.label,
          detail: `${routing.length} routing resources change: ${routing.map((c) => c.name).join(", ")}`,
        });
    }
  });
  return out;
}

export interface TimeBudget {
  /** Timed pauses, seconds. */
  pauseSeconds: number;
  /** Pauses that wait for `slipway approve`: unbounded. */
  approvalPauses: number;
  /** Analysis windows (count × interval), seconds. */
  analysisSeconds: number;
  scaleDownDelaySeconds: number;
  /** Pauses + analyses: must fit the progress deadline, or the release rolls back on time. */
  canarySeconds: number;
  progressDeadlineSeconds: number;
  fitsDeadline: boolean;
}

export function timeBudget(
  plan: readonly PlanStep[],
  analysis: Pick<AnalysisSpec, "count" | "interval">,
  scaleDownDelaySeconds: number,
  progressDeadlineSeconds: number,
): TimeBudget {
  let pauseSeconds = 0;
  let approvalPauses = 0;
  let analysisSeconds = 0;
  for (const step of plan) {
    if (step.kind === "pause") {
      if (step.untilApproved) approvalPauses++;
      else pauseSeconds += step.seconds ?? 0;
    } else if (step.kind === "analysis") {
      analysisSeconds +=
        (step.count ?? analysis.count) * (step.intervalSeconds ?? analysis.interval);
    }
  }
  const canarySeconds = pauseSeconds + analysisSeconds;
  return {
    pauseSeconds,
    approvalPauses,
    analysisSeconds,
    scaleDownDelaySeconds,
    canarySeconds,
    progressDeadlineSeconds,
    // Time spent waiting for an approval counts too, so an approval pause only makes it tighter.
    fitsDeadline: canarySeconds <= progressDeadlineSeconds,
  };
}

/** Summary counts of a change list. */
export function summarize(changes: readonly ResourceChange[]): Partial<Record<ChangeOp, number>> {
  const out: Partial<Record<ChangeOp, number>> = {};
  for (const c of changes) out[c.op] = (out[c.op] ?? 0) + 1;
  return out;
}
