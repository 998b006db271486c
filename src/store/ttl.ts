import { LEASE_TTL_MS } from "../defaults";
import { StoreConfigError } from "./errors";

/** Sets the TTL in whole or fractional seconds; bounds keep a typo from locking a stage for a day. */
export const LEASE_TTL_ENV = "SLIPWAY_LEASE_TTL_SECONDS";
const TTL_SECONDS_MIN = 5;
const TTL_SECONDS_MAX = 3600;

/** The lease TTL: SLIPWAY_LEASE_TTL_SECONDS when set, else LEASE_TTL_MS. */
export function leaseTtlMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[LEASE_TTL_ENV];
  if (text === undefined || text.trim() === "") return LEASE_TTL_MS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < TTL_SECONDS_MIN || seconds > TTL_SECONDS_MAX)
    throw new StoreConfigError(
      `${LEASE_TTL_ENV}=${JSON.stringify(text)}: not a lease TTL; allowed: a number of seconds from ${TTL_SECONDS_MIN} to ${TTL_SECONDS_MAX} (default ${LEASE_TTL_MS / 1000})`,
    );
  return Math.round(seconds * 1000);
}
