import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ArtifactVerificationError,
  buildProvenanceStatement,
  IN_TOTO_PAYLOAD_TYPE,
  preAuthEncoding,
  ProvenanceInputError,
  signArtifact,
  signEnvelope,
  SLSA_PROVENANCE_V02,
  STATEMENT_TYPE_V01,
  verifyArtifact,
  type DsseEnvelope,
  type ProvenanceInput,
} from "../../../src/governance/attestation";
import { parseImageRef } from "../../../src/governance/artifact";
import {
  generateSigningKeyPair,
  keyIdOf,
  KeyError,
  type GeneratedKeyPair,
} from "../../../src/governance/keys";

const hex = (c: string) => c.repeat(64);
const IMAGE = `ghcr.io/acme/payments:1.4.2@sha256:${hex("a")}`;
const OTHER_IMAGE = `ghcr.io/acme/payments@sha256:${hex("b")}`;
const REVISION = "3f786850e387550fdab836ed7e6dc881de23001b";
const PROVENANCE: ProvenanceInput = {
  sourceRevision: REVISION,
  builder: "https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main",
  sourceUri: "git+https://github.com/acme/payments",
  version: "1.4.2",
  buildStartedOn: "2026-03-01T12:00:00Z",
  buildFinishedOn: "2026-03-01T12:04:30Z",
  invocationId: "https://github.com/acme/payments/actions/runs/42",
};

let p256: GeneratedKeyPair;
let ed25519: GeneratedKeyPair;
let stranger: GeneratedKeyPair;

beforeAll(() => {
  p256 = generateSigningKeyPair("ecdsa-p256");
  ed25519 = generateSigningKeyPair("ed25519");
  stranger = generateSigningKeyPair("ecdsa-p256");
});

function refusal(fn: () => unknown): ArtifactVerificationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ArtifactVerificationError) return err;
    throw err;
  }
  throw new Error("expected the artifact to be refused");
}

function reencode(
  envelope: DsseEnvelope,
  edit: (statement: Record<string, any>) => void,
): DsseEnvelope {
  const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8"));
  edit(statement);
  return { ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString("base64") };
}

describe("preAuthEncoding", () => {
  it("matches the DSSE specification's test vector", () => {
    expect(
      preAuthEncoding("http://example.com/HelloWorld", Buffer.from("hello world")).toString(),
    ).toBe("DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  });

  it("counts bytes, not characters", () => {
    expect(preAuthEncoding("t", Buffer.from("é")).toString()).toBe("DSSEv1 1 t 2 é");
  });
});

describe("signArtifact", () => {
  it("writes a DSSE envelope over an in-toto Statement v1 with SLSA provenance v1", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    expect(envelope.payloadType).toBe("application/vnd.in-toto+json");
    expect(envelope.signatures).toEqual([{ keyid: p256.keyId, sig: expect.any(String) }]);
    const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8"));
    expect(statement).toEqual({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "ghcr.io/acme/payments", digest: { sha256: hex("a") } }],
      predicateType: "https://slsa.dev/provenance/v1",
      predicate: {
        buildDefinition: {
          buildType: "urn:slipway:build-type:container-image:v1",
          externalParameters: {
            source: { uri: "git+https://github.com/acme/payments", revision: REVISION },
            image: IMAGE,
            version: "1.4.2",
          },
          internalParameters: {},
          resolvedDependencies: [
            { uri: "git+https://github.com/acme/payments", digest: { gitCommit: REVISION } },
          ],
        },
        runDetails: {
          builder: { id: PROVENANCE.builder },
          metadata: {
            invocationId: PROVENANCE.invocationId,
            startedOn: "2026-03-01T12:00:00.000Z",
            finishedOn: "2026-03-01T12:04:30.000Z",
          },
        },
      },
    });
  });

  it("signs the PAE with plain ECDSA P-256/SHA-256 (DER), as any DSSE verifier expects", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${IN_TOTO_PAYLOAD_TYPE.length} ${IN_TOTO_PAYLOAD_TYPE} `),
      Buffer.from(`${Buffer.from(envelope.payload, "base64").length} `),
      Buffer.from(envelope.payload, "base64"),
    ]);
    const sig = Buffer.from(envelope.signatures[0]!.sig, "base64");
    expect(verify("sha256", pae, createPublicKey(p256.publicKeyPem), sig)).toBe(true);
  });

  it.each([
    [
      { sourceRevision: "3f78685" },
      /provenance\.sourceRevision: "3f78685" is not a full commit id/,
    ],
    [{ sourceRevision: REVISION.toUpperCase() }, /is not a full commit id/],
    [{ builder: "ci" }, /provenance\.builder: "ci" is not a URI/],
    [{ buildStartedOn: "yesterday" }, /provenance\.buildStartedOn: "yesterday" is not a timestamp/],
    [{ buildFinishedOn: "2026-03-01T11:00:00Z" }, /buildFinishedOn.*is before buildStartedOn/],
  ])("refuses provenance %o", (change, message) => {
    expect(() =>
      signArtifact({
        image: IMAGE,
        privateKeyPem: p256.privateKeyPem,
        provenance: { ...PROVENANCE, ...change },
      }),
    ).toThrow(
      expect.objectContaining({
        name: "ProvenanceInputError",
        message: expect.stringMatching(message),
      }),
    );
  });

  it("refuses to sign a tag-only image", () => {
    expect(() =>
      signArtifact({
        image: "ghcr.io/acme/payments:1.4.2",
        privateKeyPem: p256.privateKeyPem,
        provenance: PROVENANCE,
      }),
    ).toThrow(/is not pinned by digest/);
  });

  it("refuses a public key where a private key is needed", () => {
    expect(() =>
      signArtifact({ image: IMAGE, privateKeyPem: p256.publicKeyPem, provenance: PROVENANCE }),
    ).toThrow(new KeyError("the private key is a public key; signing needs the private half"));
  });

  it("reads an encrypted private key with its passphrase", () => {
    const pair = generateSigningKeyPair("ecdsa-p256", "correct horse");
    expect(pair.privateKeyPem).toMatch(/ENCRYPTED PRIVATE KEY/);
    expect(() =>
      signArtifact({ image: IMAGE, privateKeyPem: pair.privateKeyPem, provenance: PROVENANCE }),
    ).toThrow(/is encrypted; set SLIPWAY_KEY_PASSPHRASE/);
    expect(() =>
      signArtifact({
        image: IMAGE,
        privateKeyPem: pair.privateKeyPem,
        provenance: PROVENANCE,
        passphrase: "wrong",
      }),
    ).toThrow(/cannot be read/);
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: pair.privateKeyPem,
      provenance: PROVENANCE,
      passphrase: "correct horse",
    });
    expect(verifyArtifact({ image: IMAGE, envelope, publicKeyPem: pair.publicKeyPem }).ok).toBe(
      true,
    );
  });
});

describe("verifyArtifact", () => {
  it.each(["ecdsa-p256", "ed25519", "ecdsa-p384"] as const)(
    "accepts a good %s envelope and returns the provenance",
    (algorithm) => {
      const pair =
        algorithm === "ecdsa-p256"
          ? p256
          : algorithm === "ed25519"
            ? ed25519
            : generateSigningKeyPair(algorithm);
      const envelope = signArtifact({
        image: IMAGE,
        privateKeyPem: pair.privateKeyPem,
        provenance: PROVENANCE,
      });
      expect(verifyArtifact({ image: IMAGE, envelope, publicKeyPem: pair.publicKeyPem })).toEqual({
        ok: true,
        image: IMAGE,
        digest: `sha256:${hex("a")}`,
        keyId: pair.keyId,
        predicateType: "https://slsa.dev/provenance/v1",
        provenance: {
          sourceRevision: REVISION,
          builder: PROVENANCE.builder,
          buildStartedOn: "2026-03-01T12:00:00.000Z",
          buildFinishedOn: "2026-03-01T12:04:30.000Z",
          version: "1.4.2",
          sourceUri: "git+https://github.com/acme/payments",
          invocationId: PROVENANCE.invocationId,
        },
      });
    },
  );

  it("accepts the envelope as JSON text and without the tag on the image", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: ed25519.privateKeyPem,
      provenance: PROVENANCE,
    });
    const result = verifyArtifact({
      image: OTHER_IMAGE.replace(hex("b"), hex("a")),
      envelope: JSON.stringify(envelope),
      publicKeyPem: ed25519.publicKeyPem,
    });
    expect(result.provenance.sourceRevision).toBe(REVISION);
  });

  it("accepts a signature by any of several trusted keys (key rotation)", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: ed25519.privateKeyPem,
      provenance: PROVENANCE,
    });
    const result = verifyArtifact({
      image: IMAGE,
      envelope,
      publicKeyPem: p256.publicKeyPem + ed25519.publicKeyPem,
    });
    expect(result.keyId).toBe(ed25519.keyId);
  });

  it("refuses an image with no attestation as unsigned", () => {
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope: undefined, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("unsigned");
    expect(err.message).toBe(
      `ghcr.io/acme/payments@sha256:${"a".repeat(12)}… is unsigned: no attestation was supplied for it`,
    );
  });

  it("refuses an envelope without signatures as unsigned", () => {
    const envelope = {
      ...signArtifact({ image: IMAGE, privateKeyPem: p256.privateKeyPem, provenance: PROVENANCE }),
      signatures: [],
    };
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("unsigned");
    expect(err.message).toMatch(/is unsigned: the attestation envelope has no signatures/);
  });

  it("refuses a signature made with another key", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: stranger.privateKeyPem,
      provenance: PROVENANCE,
    });
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("bad-signature");
    expect(err.message).toBe(
      `the attestation for ghcr.io/acme/payments@sha256:${"a".repeat(12)}… does not verify with the trusted public key (${p256.keyId}); ` +
        `it names key ${stranger.keyId}: it was signed with another key, or changed after signing`,
    );
  });

  it("refuses an envelope whose payload was changed after signing", () => {
    const signed = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const tampered = reencode(signed, (s) => {
      s.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit = "0".repeat(40);
    });
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope: tampered, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("bad-signature");
    expect(err.message).toMatch(/does not verify with the trusted public key/);
  });

  it("refuses a changed payloadType even though the payload is intact", () => {
    const signed = signArtifact({
      image: IMAGE,
      privateKeyPem: ed25519.privateKeyPem,
      provenance: PROVENANCE,
    });
    const err = refusal(() =>
      verifyArtifact({
        image: IMAGE,
        envelope: { ...signed, payloadType: "application/json" },
        publicKeyPem: ed25519.publicKeyPem,
      }),
    );
    expect(err.reason).toBe("bad-signature");
  });

  it("refuses a correctly signed envelope of another payload type", () => {
    const statement = buildProvenanceStatement(parseImageRef(IMAGE, "image"), PROVENANCE);
    const envelope = signEnvelope(
      "application/json",
      Buffer.from(JSON.stringify(statement)),
      p256.privateKeyPem,
    );
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("payload-type");
    expect(err.message).toMatch(
      /has payloadType "application\/json"; allowed: "application\/vnd\.in-toto\+json"/,
    );
  });

  it("refuses an attestation signed for another digest", () => {
    const envelope = signArtifact({
      image: OTHER_IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("subject-mismatch");
    expect(err.message).toBe(
      `the attestation is signed for sha256:${"b".repeat(12)}…, not for sha256:${"a".repeat(12)}… (ghcr.io/acme/payments): it describes another build`,
    );
  });

  it("refuses a tag-only image before looking at the attestation", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const err = refusal(() =>
      verifyArtifact({
        image: "ghcr.io/acme/payments:1.4.2",
        imageKey: "slipway:slots.green.image",
        envelope,
        publicKeyPem: p256.publicKeyPem,
      }),
    );
    expect(err.reason).toBe("unpinned-image");
    expect(err.message).toMatch(
      /^slipway:slots\.green\.image: "ghcr\.io\/acme\/payments:1\.4\.2" is not pinned by digest/,
    );
  });

  it("refuses a signed statement that is not SLSA provenance", () => {
    const statement = {
      ...buildProvenanceStatement(parseImageRef(IMAGE, "image"), PROVENANCE),
      predicateType: "https://spdx.dev/Document",
    };
    const envelope = signEnvelope(
      IN_TOTO_PAYLOAD_TYPE,
      Buffer.from(JSON.stringify(statement)),
      p256.privateKeyPem,
    );
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("predicate-type");
    expect(err.message).toMatch(
      /predicateType is "https:\/\/spdx\.dev\/Document"; allowed: SLSA provenance/,
    );
  });

  it("refuses signed provenance that names no source commit", () => {
    const statement = buildProvenanceStatement(parseImageRef(IMAGE, "image"), PROVENANCE);
    statement.predicate.buildDefinition.resolvedDependencies = [];
    const envelope = signEnvelope(
      IN_TOTO_PAYLOAD_TYPE,
      Buffer.from(JSON.stringify(statement)),
      p256.privateKeyPem,
    );
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("malformed");
    expect(err.message).toMatch(
      /predicate\.buildDefinition\.resolvedDependencies names no source commit/,
    );
  });

  it.each([
    ["not JSON at all", "{", /the document is not JSON/],
    ["a JSON array", "[]", /the document is not a JSON object/],
    [
      "no payloadType",
      { payload: "e30=", signatures: [{ sig: "AA==" }] },
      /payloadType is missing/,
    ],
    [
      "a payload that is not base64",
      { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: "not base64!", signatures: [{ sig: "AA==" }] },
      /payload is not base64/,
    ],
    [
      "signatures that are not an array",
      { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: "e30=", signatures: "AA==" },
      /signatures is not an array/,
    ],
    [
      "a signature without sig",
      { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: "e30=", signatures: [{ keyid: "k" }] },
      /signatures\[0\]\.sig is missing/,
    ],
  ])("refuses a malformed envelope: %s", (_what, envelope, message) => {
    const err = refusal(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: p256.publicKeyPem }),
    );
    expect(err.reason).toBe("malformed");
    expect(err.message).toMatch(/^the attestation envelope is malformed: /);
    expect(err.message).toMatch(message);
  });

  it("reads what cosign attest --type slsaprovenance writes (Statement v0.1, SLSA v0.2, empty keyid)", () => {
    const statement = {
      _type: STATEMENT_TYPE_V01,
      predicateType: SLSA_PROVENANCE_V02,
      subject: [{ name: "ghcr.io/acme/payments", digest: { sha256: hex("a") } }],
      predicate: {
        builder: { id: "https://github.com/actions/runner" },
        buildType: "https://github.com/Attestations/GitHubActionsWorkflow@v1",
        metadata: {
          buildStartedOn: "2026-03-01T12:00:00Z",
          buildFinishedOn: "2026-03-01T12:05:00Z",
        },
        materials: [{ uri: "git+https://github.com/acme/payments", digest: { sha1: REVISION } }],
      },
    };
    const body = Buffer.from(JSON.stringify(statement));
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const sig = sign("sha256", preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, body), privateKey);
    const envelope = {
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: body.toString("base64"),
      signatures: [{ keyid: "", sig: sig.toString("base64") }],
    };
    const result = verifyArtifact({
      image: IMAGE,
      envelope,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
    });
    expect(result.predicateType).toBe(SLSA_PROVENANCE_V02);
    expect(result.provenance).toEqual({
      sourceRevision: REVISION,
      builder: "https://github.com/actions/runner",
      buildStartedOn: "2026-03-01T12:00:00Z",
      buildFinishedOn: "2026-03-01T12:05:00Z",
      sourceUri: "git+https://github.com/acme/payments",
    });
  });

  it("accepts an ECDSA signature in IEEE P1363 (r||s) form", () => {
    const statement = buildProvenanceStatement(parseImageRef(IMAGE, "image"), PROVENANCE);
    const body = Buffer.from(JSON.stringify(statement));
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const sig = sign("sha256", preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, body), {
      key: privateKey,
      dsaEncoding: "ieee-p1363",
    });
    expect(sig.length).toBe(64);
    const envelope = {
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      payload: body.toString("base64url"),
      signatures: [{ keyid: "", sig: sig.toString("base64") }],
    };
    const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
    expect(verifyArtifact({ image: IMAGE, envelope, publicKeyPem: pem }).keyId).toBe(
      keyIdOf(publicKey),
    );
  });

  it("checks the DSSE envelope inside a Sigstore bundle with the key", () => {
    const dsseEnvelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const bundle = {
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      verificationMaterial: { publicKey: { hint: p256.keyId } },
      dsseEnvelope,
    };
    expect(
      verifyArtifact({ image: IMAGE, envelope: bundle, publicKeyPem: p256.publicKeyPem }).ok,
    ).toBe(true);
  });

  it.each([
    [
      "a private key",
      () => p256.privateKeyPem,
      /the trusted public key is a private key; give the public half/,
    ],
    ["no PEM at all", () => "ssh-ed25519 AAAA", /holds no PEM "BEGIN PUBLIC KEY" block/],
    [
      "a broken PEM block",
      () => "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
      /is not a valid PEM public key/,
    ],
    [
      "an RSA key",
      () =>
        generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
          type: "spki",
          format: "pem",
        }) as string,
      /is a rsa key; allowed: ECDSA P-256, P-384 or Ed25519/,
    ],
  ])("rejects %s as the trusted key with a KeyError", (_what, pem, message) => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    expect(() => verifyArtifact({ image: IMAGE, envelope, publicKeyPem: pem() })).toThrow(
      expect.objectContaining({ name: "KeyError", message: expect.stringMatching(message) }),
    );
  });

  it("refuses every single-bit change to the payload or the signature (property)", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    const payload = Buffer.from(envelope.payload, "base64");
    const sig = Buffer.from(envelope.signatures[0]!.sig, "base64");
    const flip = (bytes: Buffer, bit: number) => {
      const copy = Buffer.from(bytes);
      copy[bit >> 3]! ^= 1 << (bit & 7);
      return copy.toString("base64");
    };
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), (inPayload, n) => {
        const target = inPayload ? payload : sig;
        const changed = flip(target, n % (target.length * 8));
        const tampered = inPayload
          ? { ...envelope, payload: changed }
          : { ...envelope, signatures: [{ ...envelope.signatures[0]!, sig: changed }] };
        const err = refusal(() =>
          verifyArtifact({ image: IMAGE, envelope: tampered, publicKeyPem: p256.publicKeyPem }),
        );
        expect(err.reason).toBe("bad-signature");
      }),
      { numRuns: 200 },
    );
  });

  it("reports a missing trusted key as a KeyError", () => {
    const envelope = signArtifact({
      image: IMAGE,
      privateKeyPem: p256.privateKeyPem,
      provenance: PROVENANCE,
    });
    expect(() =>
      verifyArtifact({ image: IMAGE, envelope, publicKeyPem: undefined as unknown as string }),
    ).toThrow(new KeyError("the trusted public key is missing"));
  });

  it("ProvenanceInputError names the field", () => {
    const err = new ProvenanceInputError("--revision", "abc", "is not a full commit id");
    expect(err.message).toBe('--revision: "abc" is not a full commit id');
  });
});
