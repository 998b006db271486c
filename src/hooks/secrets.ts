import { CONTROL_CHARACTER, HEADER_VALUE_ALLOWED, type HeaderValue } from "./spec";

/**
 * Header values from the environment (`{fromEnv: NAME}`) keep tokens out of
 * stack files; the values they resolve to must also stay out of the release
 * log. Pure: the environment is passed in.
 */

/** A header of a hook or webhook that cannot be sent: refused before any update. */
export class HeaderError extends Error {}

export class MissingSecretError extends HeaderError {}

export interface ResolvedHeaders {
  headers: Record<string, string>;
  /** Values that came from the environment: redacted from anything logged. */
  secrets: string[];
}

/**
 * Resolves every header of a hook or webhook; `key` names it in errors
 * (e.g. `slipway:canary.hooks[0]`). Throws when a variable is not set, so a
 * release can refuse before any update.
 */
export function resolveHeaders(
  headers: Record<string, HeaderValue>,
  env: Record<string, string | undefined>,
  key: string,
): ResolvedHeaders {
  const out: ResolvedHeaders = { headers: {}, secrets: [] };
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === "string") {
      if (CONTROL_CHARACTER.test(value))
        throw new HeaderError(
          `${key}.headers.${name}: the value contains a line break or control character; ${HEADER_VALUE_ALLOWED}`,
        );
      out.headers[name] = value;
      continue;
    }
    const secret = env[value.fromEnv];
    if (secret === undefined || secret === "") {
      throw new MissingSecretError(
        `${key}.headers.${name}: environment variable ${value.fromEnv} is not set; ` +
          "allowed: set it in the pipeline's environment, or give the header a literal value",
      );
    }
    if (CONTROL_CHARACTER.test(secret))
      // The value is a secret: named by its variable, never shown.
      throw new HeaderError(
        `${key}.headers.${name}: environment variable ${value.fromEnv} holds a line break or control character; ${HEADER_VALUE_ALLOWED}`,
      );
    out.headers[name] = secret;
    out.secrets.push(secret);
  }
  return out;
}

export const REDACTED = "[redacted]";

/** `text` with every secret replaced; longest first so a secret containing another goes whole. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length))
    out = out.split(secret).join(REDACTED);
  return out;
}

/** A URL as the log shows it: no credentials, no query string (tokens hide in both). */
export function urlForLog(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?…" : ""}`;
  } catch {
    return "(invalid URL)";
  }
}
