/**
 * Artifact references: a container image pinned by digest.
 *
 * A release is deployed by digest because a tag can be moved to other bytes after it was
 * tested, signed or approved; a digest cannot. This module has no dependencies so that the
 * config schema, the CLI and the release pipeline can all share one parser.
 */

/** `sha256:` followed by 64 lowercase hex digits; the only digest form Slipway deploys. */
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** The sentence every rejection ends with, so users see the accepted forms at once. */
export const IMAGE_REF_ALLOWED =
  "allowed: an image pinned by digest, repo@sha256:<64 lowercase hex> (optionally repo:tag@sha256:<64 lowercase hex>)";

export interface ImageRef {
  /** Registry host (with port) and path, e.g. `ghcr.io/acme/payments`. */
  repository: string;
  /** Informational only: the digest decides what runs. */
  tag?: string;
  /** `sha256:<64 lowercase hex>`. */
  digest: string;
}

/**
 * Thrown for an unusable image reference. `key` names where the value came from
 * (`slipway:slots.green.image`, `--image`), `reason` says what is wrong with it, and
 * `allowed` what would be accepted, so callers that collect problems can reuse the parts.
 */
export class ImageRefError extends Error {
  readonly allowed = IMAGE_REF_ALLOWED;

  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(`${key}${value === undefined ? "" : `: ${show(value)}`} ${reason}; ${IMAGE_REF_ALLOWED}`);
    this.name = "ImageRefError";
  }

  /** The message without the key, for reports that print the key separately. */
  get problem(): string {
    return `${this.reason}; ${IMAGE_REF_ALLOWED}`;
  }
}

// Docker/OCI reference grammar (distribution/reference): a registry host is a domain or
// IPv4/IPv6 address with an optional port; path components are lowercase alphanumerics
// joined by `.`, `_`, `__` or runs of `-`.
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const REPOSITORY = new RegExp(`^(?:${HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_REPOSITORY_LENGTH = 255;

/**
 * Parses `repo@sha256:<hex>` or `repo:tag@sha256:<hex>`.
 * @param key where the value came from, used in the error (e.g. `slipway:slots.green.image`).
 */
export function parseImageRef(value: unknown, key: string): ImageRef {
  if (typeof value !== "string") {
    throw new ImageRefError(key, value, value === undefined ? "is missing" : "is not a string");
  }
  if (value.trim() !== value || value === "") {
    throw new ImageRefError(
      key,
      value,
      value === "" ? "is empty" : "has leading or trailing whitespace",
    );
  }

  const at = value.indexOf("@");
  if (at === -1) {
    throw new ImageRefError(
      key,
      value,
      "is not pinned by digest (a tag can be moved to other bytes)",
    );
  }
  if (value.indexOf("@", at + 1) !== -1) {
    throw new ImageRefError(key, value, 'has more than one "@"');
  }
  const name = value.slice(0, at);
  const digest = value.slice(at + 1);
  checkDigest(key, value, digest);

  const { repository, tag } = splitTag(name);
  if (repository === "") throw new ImageRefError(key, value, "has no repository before the digest");
  if (repository.length > MAX_REPOSITORY_LENGTH) {
    throw new ImageRefError(
      key,
      value,
      `has a repository longer than ${MAX_REPOSITORY_LENGTH} characters`,
    );
  }
  if (!REPOSITORY.test(repository)) {
    throw new ImageRefError(
      key,
      value,
      `has an invalid repository "${repository}" (path components are lowercase letters, digits and . _ - separators)`,
    );
  }
  if (tag !== undefined && !TAG.test(tag)) {
    throw new ImageRefError(
      key,
      value,
      `has an invalid tag "${tag}" (letters, digits, _ . -; at most 128)`,
    );
  }
  return tag === undefined ? { repository, digest } : { repository, tag, digest };
}

/** True when `value` parses; for schema refinements that report their own message. */
export function isPinnedImageRef(value: unknown): boolean {
  try {
    parseImageRef(value, "image");
    return true;
  } catch {
    return false;
  }
}

export function formatImageRef(ref: ImageRef): string {
  return `${ref.repository}${ref.tag === undefined ? "" : `:${ref.tag}`}@${ref.digest}`;
}

/**
 * `sha256:0123456789ab…`: enough to tell digests apart in a sentence. Given digests to
 * contrast with, it keeps a few characters past the first one that differs.
 */
export function shortDigest(digest: string, ...others: string[]): string {
  let length = "sha256:".length + 12;
  for (const other of others) {
    let same = 0;
    while (same < digest.length && digest[same] === other[same]) same++;
    length = Math.max(length, same + 4);
  }
  return digest.length > length ? `${digest.slice(0, length)}…` : digest;
}

function checkDigest(key: string, value: string, digest: string): void {
  if (DIGEST_PATTERN.test(digest)) return;
  const colon = digest.indexOf(":");
  const algorithm = colon === -1 ? "" : digest.slice(0, colon);
  const hex = colon === -1 ? digest : digest.slice(colon + 1);
  if (algorithm === "") {
    throw new ImageRefError(key, value, 'has a digest without an algorithm (expected "sha256:")');
  }
  if (algorithm !== "sha256") {
    throw new ImageRefError(
      key,
      value,
      `uses digest algorithm "${algorithm}"; only sha256 is accepted`,
    );
  }
  if (/^[a-fA-F0-9]+$/.test(hex) && hex.length === 64) {
    throw new ImageRefError(key, value, "has an uppercase digest (hex digits must be lowercase)");
  }
  if (/^[a-f0-9]*$/.test(hex)) {
    throw new ImageRefError(
      key,
      value,
      `has a digest of ${hex.length} hex digits; 64 are required`,
    );
  }
  throw new ImageRefError(key, value, "has a digest that is not hexadecimal");
}

/** The tag is after the last ":" that follows the last "/" (a ":" before it is a port). */
function splitTag(name: string): { repository: string; tag?: string } {
  const colon = name.lastIndexOf(":");
  if (colon === -1 || colon < name.lastIndexOf("/")) return { repository: name };
  return { repository: name.slice(0, colon), tag: name.slice(colon + 1) };
}

function show(value: unknown): string {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}
