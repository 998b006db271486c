import { beforeAll, describe, expect, it } from "vitest";
import { artifactPolicySchema, checkArtifact } from "../../../src/governance/artifactPolicy";
import {
  ArtifactVerificationError,
  signArtifact,
  type DsseEnvelope,
} from "../../../src/governance/attestation";
import { generateSigningKeyPair, type GeneratedKeyPair } from "../../../src/governance/keys";

const IMAGE = `ghcr.io/acme/payments@sha256:${"c".repeat(64)}`;
const PROVENANCE = {
  sourceRevision: "3f786850e387550fdab836ed7e6dc881de23001b",
  builder: "https://ci.example/acme/payments",
};

let pair: GeneratedKeyPair;
let envelope: DsseEnvelope;

beforeAll(() => {
  pair = generateSigningKeyPair("ecdsa-p256");
  envelope = signArtifact({
    image: IMAGE,
    privateKeyPem: pair.privateKeyPem,
    provenance: PROVENANCE,
  });
});

describe("artifactPolicySchema", () => {
  it("requires signatures by default, and so a public key", () => {
    const result = artifactPolicySchema.safeParse({});
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({
        path: ["publicKey"],
        message: expect.stringMatching(/^is required when requireSignature is true/),
      }),
    ]);
  });

  it("accepts a key, and defaults requireSignature to true", () => {
    expect(artifactPolicySchema.parse({ publicKey: pair.publicKeyPem })).toEqual({
      requireSignature: true,
      publicKey: pair.publicKeyPem,
    });
  });

  it("lets a stage opt out of signatures explicitly", () => {
    expect(artifactPolicySchema.parse({ requireSignature: false })).toEqual({
      requireSignature: false,
    });
  });

  it.each([
    [{ requireSignature: "yes", publicKey: "x" }, ["requireSignature"], /allowed: true or false/],
    [
      { requireSignature: false, publicKey: generateSigningKeyPair().privateKeyPem },
      ["publicKey"],
      /is not usable: the value is a private key/,
    ],
    [
      { requireSignature: false, publicKey: "not pem" },
      ["publicKey"],
      /holds no PEM "BEGIN PUBLIC KEY" block/,
    ],
    [{ requireSignature: false, keys: [] }, [], /Unrecognized key: "keys"/],
  ])("refuses %o", (value, path, message) => {
    const result = artifactPolicySchema.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(path);
    expect(result.error!.issues[0]!.message).toMatch(message);
  });
});

describe("checkArtifact", () => {
  it("verifies a signed image when a key is configured", () => {
    const check = checkArtifact({
      image: IMAGE,
      envelope,
      policy: { requireSignature: true, publicKey: pair.publicKeyPem },
    });
    expect(check.status).toBe("verified");
    expect(check.status === "verified" && check.verified.provenance.sourceRevision).toBe(
      PROVENANCE.sourceRevision,
    );
  });

  it("refuses an unsigned image when signatures are required", () => {
    expect(() =>
      checkArtifact({
        image: IMAGE,
        envelope: undefined,
        policy: { requireSignature: true, publicKey: pair.publicKeyPem },
      }),
    ).toThrow(
      new ArtifactVerificationError(
        "unsigned",
        `ghcr.io/acme/payments@sha256:cccccccccccc… is unsigned: no attestation was supplied, and slipway:artifacts.requireSignature is true`,
      ),
    );
  });

  it("lets an unsigned image through when the stage allows it, saying so", () => {
    expect(
      checkArtifact({ image: IMAGE, envelope: undefined, policy: { requireSignature: false } }),
    ).toEqual({
      status: "unverified",
      image: IMAGE,
      note: "no attestation (allowed because slipway:artifacts.requireSignature is false)",
    });
  });

  it("still refuses a bad signature when signatures are optional", () => {
    const other = generateSigningKeyPair("ed25519");
    expect(() =>
      checkArtifact({
        image: IMAGE,
        envelope,
        policy: { requireSignature: false, publicKey: other.publicKeyPem },
      }),
    ).toThrow(expect.objectContaining({ reason: "bad-signature" }));
  });

  it("refuses a tag-only image whatever the policy", () => {
    expect(() =>
      checkArtifact({
        image: "ghcr.io/acme/payments:1.2",
        imageKey: "slipway:slots.blue.image",
        envelope: undefined,
        policy: { requireSignature: false },
      }),
    ).toThrow(
      expect.objectContaining({
        reason: "unpinned-image",
        message: expect.stringMatching(
          /^slipway:slots\.blue\.image: "ghcr\.io\/acme\/payments:1\.2" is not pinned/,
        ),
      }),
    );
  });

  it("reports a required signature that cannot be checked for want of a key", () => {
    expect(() =>
      checkArtifact({ image: IMAGE, envelope, policy: { requireSignature: true } }),
    ).toThrow(
      /slipway:artifacts\.publicKey is not set, so the attestation for .* cannot be verified/,
    );
  });
});
