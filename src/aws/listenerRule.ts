import { SLOTS } from "../domain";
import type { AwsStageOutputs } from "../contract/outputs";

/**
 * How the live weighted listener rule (DescribeRules) differs from the one the stack declared
 * (the Pulumi AWS provider's `aws.lb.ListenerRule` outputs in the checkpoint), in words: its
 * priority, its conditions, its actions (an added, missing or reordered one, and each one's
 * settings), the forward action's target groups and stickiness, and its transforms. The weights
 * are left out: they are compared with what the release expects, which knows the step.
 *
 * Both sides are normalised first: conditions and their values are sets (order is irrelevant),
 * the API's legacy `Values` and its `*Config` forms read alike, host names and header names
 * case-insensitively, the API's defaults filled in (stickiness disabled, a redirect's `#{…}`
 * placeholders), and empty or null fields dropped. A declared part that is not of the expected
 * shape (a value the state keeps secret, say) is not compared; nothing of either side's shape
 * makes it throw.
 */
export function listenerRuleDifferences(
  declared: unknown,
  live: unknown,
  stage?: AwsStageOutputs,
): string[] {
  const want = asRecord(declared);
  const got = asRecord(live);
  const out: string[] = [];
  const wantPriority = declaredPriority(want.priority);
  // Nothing of a rule (a value the state keeps secret whole): nothing is known to compare.
  if (wantPriority === undefined && !Array.isArray(want.conditions) && !Array.isArray(want.actions))
    return out;
  if (wantPriority !== undefined) {
    const gotPriority = scalar(got.Priority);
    if (wantPriority !== gotPriority)
      out.push(`priority: declared ${wantPriority}, found ${gotPriority ?? "none"}`);
  }
  if (Array.isArray(want.conditions)) {
    const wanted = want.conditions.flatMap(declaredConditions).sort();
    const found = asArray(got.Conditions).flatMap(liveCondition).sort();
    if (!sameList(wanted, found))
      out.push(`conditions: declared ${listed(wanted)}, found ${listed(found)}`);
  }
  if (Array.isArray(want.actions))
    out.push(
      ...actionDifferences(
        inOrder(want.actions.map((a, i) => declaredAction(a, i))),
        inOrder(asArray(got.Actions).map((a, i) => liveAction(a, i))),
        stage,
      ),
    );
  // Absent from the state of an older provider (none declared); a secret is not compared.
  if (want.transforms === undefined || want.transforms === null || Array.isArray(want.transforms)) {
    const wanted = asArray(want.transforms).map(declaredTransform).sort();
    const found = asArray(got.Transforms).map(liveTransform).sort();
    if (!sameList(wanted, found))
      out.push(`transforms: declared ${listed(wanted)}, found ${listed(found)}`);
  }
  return out;
}

/** One action, whichever side it came from. */
interface NormalisedAction {
  type: string;
  order: number;
  /** Forward only: the target groups' ARNs, sorted, without their weights. */
  targetGroups?: string[];
  /** Forward only: "disabled" or "enabled for <n>s". */
  stickiness?: string;
  /** Any other type: its settings, camelCase keys, canonical JSON. */
  settings?: string;
}

function actionDifferences(
  want: NormalisedAction[],
  got: NormalisedAction[],
  stage: AwsStageOutputs | undefined,
): string[] {
  const out: string[] = [];
  const remaining = [...got];
  const pairs: [NormalisedAction, NormalisedAction][] = [];
  for (const w of want) {
    const at = remaining.findIndex((g) => g.type === w.type);
    if (at < 0) {
      out.push(`actions: the declared ${w.type} action is missing`);
      continue;
    }
    pairs.push([w, remaining[at]!]);
    remaining.splice(at, 1);
  }
  for (const g of remaining)
    out.push(
      `actions: found an extra ${g.type} action${g.settings ? ` (${brief(g.settings)})` : ""}`,
    );
  if (out.length === 0) {
    const wantOrder = want.map((a) => a.type);
    const gotOrder = got.map((a) => a.type);
    if (!sameList(wantOrder, gotOrder))
      out.push(
        `actions: declared in the order ${wantOrder.join(", ")}, found ${gotOrder.join(", ")}`,
      );
  }
  const name = (arn: string) => SLOTS.find((slot) => stage?.targetGroups[slot].arn === arn) ?? arn;
  for (const [w, g] of pairs) {
    if (w.type === "forward") {
      if (!sameList(w.targetGroups ?? [], g.targetGroups ?? []))
        out.push(
          `forward: target groups declared ${listed((w.targetGroups ?? []).map(name), ",")}, ` +
            `found ${listed((g.targetGroups ?? []).map(name), ",")}`,
        );
      if (w.stickiness !== g.stickiness)
        out.push(`stickiness: declared ${w.stickiness}, found ${g.stickiness}`);
    } else if (w.settings !== g.settings)
      out.push(`${w.type}: declared ${brief(w.settings)}, found ${brief(g.settings)}`);
  }
  return out;
}

/** Sorted by their `order` (the API runs them in that order); the position breaks ties. */
function inOrder(actions: NormalisedAction[]): NormalisedAction[] {
  return actions
    .map((a, i) => ({ a, i }))
    .sort((x, y) => x.a.order - y.a.order || x.i - y.i)
    .map((x) => x.a);
}

/** The provider's action: `{type, order, forward: {targetGroups, stickiness}, targetGroupArn, fixedResponse, …}`. */
function declaredAction(value: unknown, index: number): NormalisedAction {
  const a = asRecord(value);
  const type = scalar(a.type) ?? "(no type)";
  const order = typeof a.order === "number" && a.order > 0 ? a.order : index + 1;
  if (type === "forward") {
    const forward = asRecord(a.forward);
    const groups = asArray(forward.targetGroups)
      .map((g) => scalar(asRecord(g).arn))
      .filter(isText);
    const single = scalar(a.targetGroupArn);
    const stickiness = asRecord(forward.stickiness);
    return {
      type,
      order,
      targetGroups: unique(groups.length > 0 ? groups : single ? [single] : []),
      stickiness: stickinessOf(stickiness.enabled, stickiness.duration),
    };
  }
  return { type, order, settings: settingsOf(type, a[camel(type)]) };
}

/** The API's action: `{Type, Order, ForwardConfig: {TargetGroups, TargetGroupStickinessConfig}, TargetGroupArn, FixedResponseConfig, …}`. */
function liveAction(value: unknown, index: number): NormalisedAction {
  const a = asRecord(value);
  const type = scalar(a.Type) ?? "(no type)";
  const order = typeof a.Order === "number" && a.Order > 0 ? a.Order : index + 1;
  if (type === "forward") {
    const forward = asRecord(a.ForwardConfig);
    const groups = asArray(forward.TargetGroups)
      .map((g) => scalar(asRecord(g).TargetGroupArn))
      .filter(isText);
    const single = scalar(a.TargetGroupArn);
    const stickiness = asRecord(forward.TargetGroupStickinessConfig);
    return {
      type,
      order,
      targetGroups: unique(groups.length > 0 ? groups : single ? [single] : []),
      stickiness: stickinessOf(stickiness.Enabled, stickiness.DurationSeconds),
    };
  }
  return { type, order, settings: settingsOf(type, camelKeys(a[`${pascal(type)}Config`])) };
}

/** Stickiness is off unless enabled (the API's default); its duration only counts when it is on. */
function stickinessOf(enabled: unknown, duration: unknown): string {
  if (enabled !== true) return "disabled";
  return typeof duration === "number" ? `enabled for ${duration}s` : "enabled";
}

/** What the API fills in when a field is left out. */
const ACTION_DEFAULTS: Record<string, Record<string, string>> = {
  redirect: {
    host: "#{host}",
    path: "/#{path}",
    port: "#{port}",
    protocol: "#{protocol}",
    query: "#{query}",
  },
};

/** Never returned by DescribeRules, so never compared. */
const WRITE_ONLY = new Set(["clientSecret", "useExistingClientSecret"]);

function settingsOf(type: string, value: unknown): string {
  const settings: Record<string, unknown> = { ...ACTION_DEFAULTS[type] };
  for (const [k, v] of Object.entries(asRecord(value)))
    if (!WRITE_ONLY.has(k) && !isEmpty(v)) settings[k] = v;
  return canonical(settings);
}

/** The provider's condition: one block, normally with one of its fields set. */
function declaredConditions(value: unknown): string[] {
  const c = asRecord(value);
  const out: string[] = [];
  for (const [key, v] of Object.entries(c)) {
    if (isEmpty(v)) continue;
    const r = asRecord(v);
    switch (key) {
      case "pathPattern":
        out.push(matching("path-pattern", r.values, r.regexValues));
        break;
      case "hostHeader":
        out.push(matching("host-header", lower(r.values), lower(r.regexValues)));
        break;
      case "httpHeader":
        out.push(
          matching(
            `http-header ${String(scalar(r.httpHeaderName) ?? "").toLowerCase()}`,
            r.values,
            r.regexValues,
          ),
        );
        break;
      case "httpRequestMethod":
        out.push(matching("http-request-method", r.values));
        break;
      case "sourceIp":
        out.push(matching("source-ip", r.values));
        break;
      case "queryStrings":
        out.push(
          matching(
            "query-string",
            asArray(v).map((q) => queryPair(asRecord(q).key, asRecord(q).value)),
          ),
        );
        break;
      default:
        out.push(`${kebab(key)} ${brief(canonical(v))}`);
    }
  }
  return out;
}

/** The API's condition: `Field` with its `*Config`, or the legacy `Values`. */
function liveCondition(value: unknown): string[] {
  const c = asRecord(value);
  const field = scalar(c.Field);
  const config = (name: string) => asRecord(c[name]);
  const values = (name: string) => config(name).Values ?? c.Values;
  switch (field) {
    case "path-pattern":
      return [
        matching(field, values("PathPatternConfig"), config("PathPatternConfig").RegexValues),
      ];
    case "host-header":
      return [
        matching(
          field,
          lower(values("HostHeaderConfig")),
          lower(config("HostHeaderConfig").RegexValues),
        ),
      ];
    case "http-header": {
      const h = config("HttpHeaderConfig");
      return [
        matching(
          `http-header ${String(scalar(h.HttpHeaderName) ?? "").toLowerCase()}`,
          h.Values,
          h.RegexValues,
        ),
      ];
    }
    case "http-request-method":
      return [matching(field, values("HttpRequestMethodConfig"))];
    case "source-ip":
      return [matching(field, values("SourceIpConfig"))];
    case "query-string":
      return [
        matching(
          field,
          asArray(config("QueryStringConfig").Values).map((q) =>
            queryPair(asRecord(q).Key, asRecord(q).Value),
          ),
        ),
      ];
    default: {
      const { Field: _field, ...rest } = c;
      return [`${field ?? "(no field)"} ${brief(canonical(camelKeys(rest)))}`];
    }
  }
}

/** `field [a, b]`, with `regex [..]` when it matches by regular expression. */
function matching(field: string, values: unknown, regexValues?: unknown): string {
  const plain = texts(values);
  const regex = texts(regexValues);
  const parts = [field];
  if (plain.length > 0 || regex.length === 0) parts.push(`[${plain.join(", ")}]`);
  if (regex.length > 0) parts.push(`regex [${regex.join(", ")}]`);
  return parts.join(" ");
}

function queryPair(key: unknown, value: unknown): string {
  const k = scalar(key);
  return k ? `${k}=${scalar(value) ?? ""}` : (scalar(value) ?? "");
}

/** The provider's transform: `{type, hostHeaderRewriteConfig: {rewrite: {regex, replace}}, urlRewriteConfig}`. */
function declaredTransform(value: unknown): string {
  const t = asRecord(value);
  const type = scalar(t.type) ?? "(no type)";
  const rewrite = asRecord(asRecord(t[`${camel(type)}Config`]).rewrite);
  return `${type} ${scalar(rewrite.regex) ?? ""} → ${scalar(rewrite.replace) ?? ""}`;
}

/** The API's transform: `{Type, HostHeaderRewriteConfig: {Rewrites: [{Regex, Replace}]}, UrlRewriteConfig}`. */
function liveTransform(value: unknown): string {
  const t = asRecord(value);
  const type = scalar(t.Type) ?? "(no type)";
  const rewrite = asRecord(asArray(asRecord(t[`${pascal(type)}Config`]).Rewrites)[0]);
  return `${type} ${scalar(rewrite.Regex) ?? ""} → ${scalar(rewrite.Replace) ?? ""}`;
}

function declaredPriority(value: unknown): string | undefined {
  return typeof value === "number" || (typeof value === "string" && /^\d+$/.test(value))
    ? String(Number(value))
    : undefined;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A string or number as text; anything else undefined. */
function scalar(value: unknown): string | undefined {
  if (typeof value === "string") return value || undefined;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

function isText(value: string | undefined): value is string {
  return value !== undefined;
}

/** The distinct texts of a list, sorted. */
function texts(value: unknown): string[] {
  return unique(asArray(value).map(scalar).filter(isText));
}

function lower(value: unknown): string[] {
  return unique(texts(value).map((v) => v.toLowerCase()));
}

function unique(values: string[]): string[] {
  return [...new Set(values)].sort();
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function listed(values: string[], separator = " and "): string {
  return values.length > 0 ? values.join(separator) : "none";
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    v === null ||
    v === "" ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0)
  );
}

/** `fixed-response` → `fixedResponse`. */
function camel(type: string): string {
  return type.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `fixed-response` → `FixedResponse`. */
function pascal(type: string): string {
  const c = camel(type);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

/** `sourceIp` → `source-ip`. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A copy with every object key's first letter lower-cased (the API's PascalCase to the provider's camelCase). */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), camelKeys(v)]),
    );
  return value;
}

/** Canonical JSON: keys sorted, numbers as text (the API and the provider disagree on some), empty values dropped. */
function canonical(value: unknown): string {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk).filter((v) => !isEmpty(v));
    if (x && typeof x === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort()) {
        const v = walk((x as Record<string, unknown>)[k]);
        if (!isEmpty(v)) out[k] = v;
      }
      return out;
    }
    return typeof x === "number" ? String(x) : x;
  };
  return JSON.stringify(walk(value)) ?? "null";
}

/** A value in a message, cut at 200 characters. */
function brief(text: string | undefined): string {
  const t = text ?? "nothing";
  return t.length > 200 ? `${t.slice(0, 199)}…` : t;
}
