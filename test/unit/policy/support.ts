import type { PolicyResource } from "../../../src/policy/rules";
import type { Rendered } from "../support/harness";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** The engine hands policies plain values (secrets unwrapped); the mocks record them wrapped. */
function plain(value: unknown): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SECRET_SIG] === SECRET_VALUE) return plain(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** The resources of a rendered stage as a policy sees them: type, name and inputs. */
export function policyResources(rendered: Rendered): PolicyResource[] {
  return rendered.resources.map((r) => ({
    type: r.type,
    name: r.name,
    urn: `${r.type}::${r.name}`,
    props: plain(r.inputs),
  }));
}

export const resource = (type: string, props: Record<string, any>, name = "r"): PolicyResource => ({
  type,
  name,
  urn: `${type}::${name}`,
  props,
});

/** A fixed clock: policies never read the real one in tests. */
export const NOW = new Date("2026-01-15T12:00:00Z");
