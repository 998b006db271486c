/**
 * Why a provider could not produce data. A ProviderError is never a pass: the
 * run counts it against `consecutiveErrorLimit`.
 */
export type ProviderErrorKind =
  /** Connection refused, DNS failure, timeout. */
  | "unreachable"
  /** The server answered with an HTTP error or an API error status. */
  | "http"
  /** The query succeeded but returned no series / no datapoints. */
  | "empty"
  /** The answer could not be understood, or the query could not be built. */
  | "invalid";

export class ProviderError extends Error {
  constructor(
    readonly provider: string,
    readonly kind: ProviderErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider}: ${message}`, options);
    this.name = "ProviderError";
  }
}
