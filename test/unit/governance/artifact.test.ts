import { describe, expect, it } from "vitest";
import {
  formatImageRef,
  ImageRefError,
  isPinnedImageRef,
  parseImageRef,
  shortDigest,
} from "../../../src/governance/artifact";

const HEX = "0123456789abcdef".repeat(4);
const KEY = "slipway:slots.green.image";

function refusal(value: unknown): ImageRefError {
  try {
    parseImageRef(value, KEY);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageRefError);
    return err as ImageRefError;
  }
  throw new Error(`expected ${JSON.stringify(value)} to be refused`);
}

describe("parseImageRef", () => {
  it.each([
    [
      `ghcr.io/acme/payments@sha256:${HEX}`,
      { repository: "ghcr.io/acme/payments", digest: `sha256:${HEX}` },
    ],
    [
      `ghcr.io/acme/payments:1.4.2@sha256:${HEX}`,
      { repository: "ghcr.io/acme/payments", tag: "1.4.2", digest: `sha256:${HEX}` },
    ],
    [
      `localhost:5000/payments:v2@sha256:${HEX}`,
      { repository: "localhost:5000/payments", tag: "v2", digest: `sha256:${HEX}` },
    ],
    [`payments@sha256:${HEX}`, { repository: "payments", digest: `sha256:${HEX}` }],
    [
      `123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/pay-ments_api@sha256:${HEX}`,
      {
        repository: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/pay-ments_api",
        digest: `sha256:${HEX}`,
      },
    ],
    [
      `[::1]:5000/payments@sha256:${HEX}`,
      { repository: "[::1]:5000/payments", digest: `sha256:${HEX}` },
    ],
  ])("accepts %s", (value, expected) => {
    expect(parseImageRef(value, KEY)).toEqual(expected);
    expect(formatImageRef(parseImageRef(value, KEY))).toBe(value);
    expect(isPinnedImageRef(value)).toBe(true);
  });

  it("refuses a tag-only image, naming the key, the value and what is allowed", () => {
    const err = refusal("ghcr.io/acme/payments:1.2");
    expect(err.key).toBe(KEY);
    expect(err.value).toBe("ghcr.io/acme/payments:1.2");
    expect(err.message).toBe(
      'slipway:slots.green.image: "ghcr.io/acme/payments:1.2" is not pinned by digest (a tag can be moved to other bytes); ' +
        "allowed: an image pinned by digest, repo@sha256:<64 lowercase hex> (optionally repo:tag@sha256:<64 lowercase hex>)",
    );
    expect(err.problem).toMatch(/^is not pinned by digest/);
  });

  it.each([
    [`ghcr.io/acme/payments@sha256:${HEX.toUpperCase()}`, /uppercase digest/],
    [`ghcr.io/acme/payments@sha256:${HEX.slice(1)}`, /63 hex digits; 64 are required/],
    [`ghcr.io/acme/payments@sha512:${HEX}`, /digest algorithm "sha512"; only sha256/],
    [`ghcr.io/acme/payments@${HEX}`, /without an algorithm/],
    [`ghcr.io/acme/payments@sha256:${HEX.slice(0, 63)}z`, /not hexadecimal/],
    [`ghcr.io/Acme/payments@sha256:${HEX}`, /invalid repository "ghcr.io\/Acme\/payments"/],
    [`@sha256:${HEX}`, /no repository/],
    [`ghcr.io/acme/payments:-bad@sha256:${HEX}`, /invalid tag "-bad"/],
    [`a@b@sha256:${HEX}`, /more than one "@"/],
    [` ghcr.io/acme/payments@sha256:${HEX}`, /whitespace/],
    ["", /is empty/],
    [42, /is not a string/],
  ])("refuses %s", (value, message) => {
    expect(refusal(value).message).toMatch(message);
    expect(isPinnedImageRef(value)).toBe(false);
  });

  it("says a missing value is missing", () => {
    expect(refusal(undefined).message).toMatch(/^slipway:slots\.green\.image is missing; allowed:/);
  });
});

describe("shortDigest", () => {
  const a = `sha256:${"0".repeat(30)}1${"0".repeat(33)}`;
  const b = `sha256:${"0".repeat(30)}2${"0".repeat(33)}`;

  it("keeps twelve hex digits", () => {
    expect(shortDigest(a)).toBe(`sha256:${"0".repeat(12)}…`);
  });

  it("keeps enough to show where two digests differ", () => {
    expect(shortDigest(a, b)).toBe(`sha256:${"0".repeat(30)}1000…`);
    expect(shortDigest(b, a)).toBe(`sha256:${"0".repeat(30)}2000…`);
  });
});
