import type { FlagConfig } from "./schema";

/**
 * Feature flags in the two formats the platforms read. Pure, so the
 * documents can be tested without a cloud.
 */

/** flagd / OpenFeature flag definition (https://flagd.dev/schema/v0/flags.json). */
export function flagdDocument(flags: Record<string, FlagConfig>): string {
  const out: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags).sort(([a], [b]) => a.localeCompare(b))) {
    out[name] = {
      state: "ENABLED",
      variants: { on: true, off: false },
      defaultVariant: flag.enabled ? "on" : "off",
      metadata: {
        owner: flag.owner,
        expires: flag.expires,
        ...(flag.description ? { description: flag.description } : {}),
      },
    };
  }
  return JSON.stringify({ $schema: "https://flagd.dev/schema/v0/flags.json", flags: out }, null, 2);
}

/**
 * AWS AppConfig feature-flag configuration (type AWS.AppConfig.FeatureFlags, version 1).
 * The schema allows no free-form metadata on a flag, so the expiry is AppConfig's own
 * planned-deprecation date and the owner a required string attribute (delivered with
 * the flag's value). The policy pack reads both from here.
 */
export function appConfigDocument(flags: Record<string, FlagConfig>): string {
  const defs: Record<string, unknown> = {};
  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(flags).sort(([a], [b]) => a.localeCompare(b))) {
    defs[name] = {
      name,
      ...(flag.description ? { description: flag.description } : {}),
      _deprecation: { status: "planned", date: flag.expires },
      attributes: {
        owner: {
          description: "Team or person who owns the flag",
          constraints: { type: "string", required: true },
        },
      },
    };
    values[name] = { enabled: flag.enabled, owner: flag.owner };
  }
  return JSON.stringify({ version: "1", flags: defs, values });
}

export type FlagHealth = "ok" | "expiring" | "expired";

/** Expired flags fail a preview (policy); those expiring within `warnDays` warn. */
export function flagHealth(
  flag: Pick<FlagConfig, "expires">,
  now: Date,
  warnDays = 14,
): FlagHealth {
  const expires = Date.parse(`${flag.expires}T23:59:59Z`);
  if (Number.isNaN(expires) || expires < now.getTime()) return "expired";
  return expires - now.getTime() <= warnDays * 86_400_000 ? "expiring" : "ok";
}
