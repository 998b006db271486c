import { describe, expect, it } from "vitest";
import { appConfigDocument, flagdDocument } from "../../../src/config/flags";
import type { FlagConfig } from "../../../src/config/schema";
import { expiringFlagWarnings, flagsOf, flagViolations, TYPES } from "../../../src/policy/rules";
import { NOW, resource } from "./support";

const configMap = (flags: Record<string, FlagConfig>) =>
  resource(TYPES.configMap, { data: { "flags.flagd.json": flagdDocument(flags) } });
const appConfig = (flags: Record<string, FlagConfig>) =>
  resource(TYPES.appConfigVersion, {
    contentType: "application/json",
    content: appConfigDocument(flags),
  });
const flag = (expires: string, owner = "team-payments"): FlagConfig => ({
  enabled: true,
  owner,
  expires,
});

describe.each([
  ["the flagd ConfigMap (Kubernetes)", configMap],
  ["the AppConfig document (AWS)", appConfig],
])("feature flags in %s", (_where, carrier) => {
  it("carry owner and expiry where the policy reads them", () => {
    expect(flagsOf(carrier({ a: flag("2026-06-30") }))).toEqual({
      flags: [{ name: "a", owner: "team-payments", expires: "2026-06-30" }],
    });
  });

  it("pass when owned and not expiring soon", () => {
    const r = carrier({ a: flag("2026-06-30"), b: flag("2026-01-30") });
    expect(flagViolations(r, NOW)).toEqual([]);
    expect(expiringFlagWarnings(r, NOW)).toEqual([]);
  });

  it("fail when expired, with a message that says to remove the flag", () => {
    const r = carrier({ "old-pricing": flag("2026-01-14"), fresh: flag("2027-01-01") });
    expect(flagViolations(r, NOW).map((v) => v.message)).toEqual([
      'flag "old-pricing" (owner team-payments) expired on 2026-01-14: remove it from slipway:flags and from the code that reads it',
    ]);
  });

  it("expire at the end of their expiry day (UTC)", () => {
    const r = carrier({ today: flag("2026-01-15") });
    expect(flagViolations(r, NOW)).toEqual([]);
    expect(flagViolations(r, new Date("2026-01-16T00:00:00Z"))).toHaveLength(1);
  });

  it("warn (advisory) within 14 days of expiry, or the configured number of days", () => {
    // flagHealth counts to the end of the expiry day: the 28th is 13.5 days away, the 30th 15.5.
    const r = carrier({ soon: flag("2026-01-28"), later: flag("2026-01-30") });
    expect(flagViolations(r, NOW)).toEqual([]);
    expect(expiringFlagWarnings(r, NOW).map((v) => v.message)).toEqual([
      'flag "soon" (owner team-payments) expires on 2026-01-28, in 13 day(s): remove it, or extend slipway:flags.soon.expires if it must stay',
    ]);
    expect(expiringFlagWarnings(r, NOW, 30)).toHaveLength(2);
    expect(expiringFlagWarnings(carrier({ gone: flag("2026-01-01") }), NOW)).toEqual([]); // expired: the mandatory policy reports it
  });

  it("fail without an owner or with an invalid expiry", () => {
    const r = carrier({
      orphan: flag("2026-06-30", ""),
      bogus: { enabled: false, owner: "x", expires: "2026-02-30" },
    });
    expect(flagViolations(r, NOW).map((v) => v.message)).toEqual([
      'flag "bogus" has an invalid expiry date "2026-02-30"; allowed: a date, YYYY-MM-DD (slipway:flags.bogus.expires)',
      'flag "orphan" has no owner; allowed: the owning team or person (slipway:flags.orphan.owner)',
    ]);
  });
});

describe("flag documents written by hand", () => {
  it("fail when a flagd flag has no metadata", () => {
    const doc = JSON.stringify({
      flags: { bare: { state: "ENABLED", variants: { on: true }, defaultVariant: "on" } },
    });
    expect(
      flagViolations(resource(TYPES.configMap, { data: { "flags.flagd.json": doc } }), NOW).map(
        (v) => v.message,
      ),
    ).toEqual([
      'flag "bare" has no owner; allowed: the owning team or person (slipway:flags.bare.owner)',
      'flag "bare" has no expiry date; allowed: a date, YYYY-MM-DD (slipway:flags.bare.expires)',
    ]);
  });

  it("fail when an AppConfig flag has no owner attribute or deprecation date", () => {
    const doc = JSON.stringify({
      version: "1",
      flags: { bare: { name: "bare" } },
      values: { bare: { enabled: true } },
    });
    expect(flagViolations(resource(TYPES.appConfigVersion, { content: doc }), NOW)).toHaveLength(2);
  });

  it("ignore other ConfigMaps and non-flag AppConfig content, and report a flagd document that is not JSON", () => {
    expect(
      flagViolations(resource(TYPES.configMap, { data: { "app.properties": "x=1" } }), NOW),
    ).toEqual([]);
    expect(
      flagViolations(resource(TYPES.appConfigVersion, { content: "plain: yaml" }), NOW),
    ).toEqual([]);
    expect(
      flagViolations(resource(TYPES.configMap, { data: { "flags.flagd.json": "{" } }), NOW)[0]!
        .message,
    ).toContain("not valid JSON");
  });
});
