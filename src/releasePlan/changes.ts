import type { ChangeOp, ResourceChange } from "./invariants";

/**
 * From the engine's preview events to per-transition changes. Pure.
 *
 * Every transition is previewed against the stage as it is (nothing is
 * applied), so the engine's own diff is exact for the first transition, the
 * deploy. For a later transition the change is the difference between the
 * inputs the engine planned for it and those it planned for the transition it
 * follows; a replace counts when the engine would replace the resource because
 * of a key that this transition changes.
 */
export interface PlannedResource {
  urn: string;
  type: string;
  /** The engine's step against the current state: same, create, update, replace, delete … */
  op: string;
  /** Inputs the program declares for this transition (absent when the resource would be deleted). */
  inputs?: Record<string, unknown>;
  /** Keys the engine says cause a replacement. */
  replaceKeys?: string[];
  /** Changed property paths against the current state (detailedDiff, else diffs). */
  diffPaths?: string[];
}

export type PreviewSnapshot = Map<string, PlannedResource>;

/** Minimal shape of an engine event's step metadata (@pulumi/pulumi/automation StepEventMetadata). */
export interface StepMetadataLike {
  op: string;
  urn: string;
  type: string;
  old?: { inputs?: Record<string, unknown> };
  new?: { inputs?: Record<string, unknown> };
  keys?: string[];
  diffs?: string[];
  detailedDiff?: Record<string, unknown>;
}

const IGNORED_TYPES = new Set(["pulumi:pulumi:Stack"]);
// Replacement is shown as replace plus these two; the replace step stands for all three.
const IGNORED_OPS = new Set([
  "create-replacement",
  "delete-replaced",
  "read",
  "refresh",
  "discard",
  "import",
]);

export function snapshotOf(steps: readonly StepMetadataLike[]): PreviewSnapshot {
  const out: PreviewSnapshot = new Map();
  for (const s of steps) {
    if (IGNORED_TYPES.has(s.type) || IGNORED_OPS.has(s.op)) continue;
    out.set(s.urn, {
      urn: s.urn,
      type: s.type,
      op: s.op,
      ...(s.op !== "delete" && s.new?.inputs ? { inputs: s.new.inputs } : {}),
      ...(s.keys?.length ? { replaceKeys: s.keys } : {}),
      diffPaths: s.detailedDiff ? Object.keys(s.detailedDiff) : (s.diffs ?? []),
    });
  }
  return out;
}

const isRoutingType = (type: string) =>
  type === "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute" ||
  type === "aws:lb/listenerRule:ListenerRule";

export const nameOf = (urn: string) => urn.split("::").at(-1) ?? urn;

/** The engine's own changes against the current state (the first transition). */
export function changesAgainstState(snapshot: PreviewSnapshot): ResourceChange[] {
  const out: ResourceChange[] = [];
  for (const r of snapshot.values()) {
    if (r.op === "same") continue;
    // A default provider's inputs carry the stack config; with no property diff it changes nothing.
    if (r.type.startsWith("pulumi:providers:") && (r.diffPaths ?? []).length === 0) continue;
    const op = (["create", "update", "replace", "delete"] as const).find((o) => o === r.op);
    if (!op) continue;
    out.push({
      op,
      type: r.type,
      name: nameOf(r.urn),
      urn: r.urn,
      paths: [...(r.diffPaths ?? [])].sort(),
    });
  }
  return sortChanges(out);
}

/** What changes from the transition planned as `before` to the one planned as `after`. */
export function changesBetween(
  before: PreviewSnapshot,
  after: PreviewSnapshot,
  opts: { routingChanged?: boolean } = {},
): ResourceChange[] {
  const out: ResourceChange[] = [];
  for (const r of after.values()) {
    const b = before.get(r.urn);
    const existedBefore = b !== undefined && b.op !== "delete";
    if (r.op === "delete") {
      if (existedBefore)
        out.push({ op: "delete", type: r.type, name: nameOf(r.urn), urn: r.urn, paths: [] });
      continue;
    }
    if (!existedBefore) {
      out.push({ op: "create", type: r.type, name: nameOf(r.urn), urn: r.urn, paths: [] });
      continue;
    }
    let paths = diffPaths(b.inputs ?? {}, r.inputs ?? {});
    if (paths.length === 0) {
      // Secret values are masked in engine events (the Kubernetes provider masks a custom
      // resource's whole spec when it holds the tester header's value), so equal inputs may hide
      // a change. Where one side equals the stage, the engine's diff of the other side is exact.
      if (b.op === "same" && r.op !== "same") paths = [...(r.diffPaths ?? [])];
      else if (r.op === "same" && b.op !== "same") paths = [...(b.diffPaths ?? [])];
      // Both differ from the stage: for the routing resource the change follows the weights the
      // transition writes (inferred, not read from the events).
      else if (r.op !== "same" && isRoutingType(r.type) && opts.routingChanged)
        paths = [...(r.diffPaths ?? [])];
      if (paths.length === 0) continue;
      paths.sort();
    }
    // A provider's inputs (for a dynamic provider: the whole stack config) change with any config;
    // whether that is a change is the engine's call: only a diff it reports, and not already before.
    if (r.type.startsWith("pulumi:providers:") && (r.op === "same" || r.op === b.op)) continue;
    const replaces =
      r.op === "replace" && (r.replaceKeys ?? []).some((k) => paths.some((p) => related(k, p)));
    const op: ChangeOp = replaces ? "replace" : "update";
    out.push({ op, type: r.type, name: nameOf(r.urn), urn: r.urn, paths });
  }
  for (const b of before.values()) {
    if (b.op !== "delete" && !after.has(b.urn))
      out.push({ op: "delete", type: b.type, name: nameOf(b.urn), urn: b.urn, paths: [] });
  }
  return sortChanges(out);
}

/** A replace key (`spec`, `metadata.name`, `spec.selector`) covers a path under it, and the other way round. */
function related(key: string, path: string): boolean {
  const under = (a: string, b: string) => a === b || a.startsWith(`${b}.`) || a.startsWith(`${b}[`);
  return under(path, key) || under(key, path);
}

/** Paths (a.b[0].c) where two JSON values differ, leaves only. */
export function diffPaths(a: unknown, b: unknown, prefix = ""): string[] {
  if (Object.is(a, b)) return [];
  const bothArrays = Array.isArray(a) && Array.isArray(b);
  const bothObjects = !bothArrays && isPlainObject(a) && isPlainObject(b);
  if (bothArrays) {
    const out: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++)
      out.push(...diffPaths(a[i], b[i], `${prefix}[${i}]`));
    return out;
  }
  if (bothObjects) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort())
      out.push(...diffPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
    return out;
  }
  return [prefix || "(root)"];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function sortChanges(changes: ResourceChange[]): ResourceChange[] {
  return changes.sort((x, y) => x.type.localeCompare(y.type) || x.name.localeCompare(y.name));
}
