/**
 * Signed build provenance for a release: a DSSE envelope carrying an in-toto Statement
 * whose subject is the image digest and whose predicate is SLSA provenance v1.
 *
 * The shape is the one `cosign attest --type slsaprovenance1` stores next to an image, so
 * an envelope made by either tool verifies with either tool's public key (docs/signing.md).
 * Pure logic: no file or network I/O; keys and envelopes come in as values.
 */
import {
  formatImageRef,
  ImageRefError,
  parseImageRef,
  shortDigest,
  type ImageRef,
} from "./artifact";
import { keyIdOf, parsePrivateKey, parsePublicKeys, signBytes, verifyBytes } from "./keys";

export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const STATEMENT_TYPE_V1 = "https://in-toto.io/Statement/v1";
/** cosign still writes v0.1 statements; the two differ only in the `_type` string. */
export const STATEMENT_TYPE_V01 = "https://in-toto.io/Statement/v0.1";
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
/** What `cosign attest --type slsaprovenance` writes; read, never written. */
export const SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2";
/** Names the shape of `externalParameters` in provenance that Slipway writes. */
export const SLIPWAY_BUILD_TYPE = "urn:slipway:build-type:container-image:v1";

export interface DsseSignature {
  keyid: string;
  sig: string;
}

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: DsseSignature[];
}

export interface ResourceDescriptor {
  uri?: string;
  name?: string;
  digest?: Record<string, string>;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
  };
}

export interface InTotoStatement<P = unknown> {
  _type: string;
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate: P;
}

/** What the signer states about the build. */
export interface ProvenanceInput {
  /** Full commit id the image was built from (40 or 64 hex digits). */
  sourceRevision: string;
  /** URI naming the build platform, e.g. the CI workflow that built the image. */
  builder: string;
  /** Where the source lives, e.g. `git+https://github.com/acme/payments`. */
  sourceUri?: string;
  /** The release's version label. */
  version?: string;
  buildStartedOn?: Date | string;
  buildFinishedOn?: Date | string;
  /** The CI run, e.g. its URL. */
  invocationId?: string;
}

/** What a verified attestation says about the build; logged with every deploy. */
export interface Provenance {
  sourceRevision: string;
  builder: string;
  /** RFC 3339; absent only in third-party provenance that omits it. */
  buildStartedOn?: string;
  buildFinishedOn?: string;
  version?: string;
  sourceUri?: string;
  invocationId?: string;
}

export interface VerifiedArtifact {
  ok: true;
  /** The image as given, normalised. */
  image: string;
  digest: string;
  /** Which trusted key the signature verified with (see `keyIdOf`). */
  keyId: string;
  predicateType: string;
  provenance: Provenance;
}

export type RefusalReason =
  | "unpinned-image"
  | "unsigned"
  | "malformed"
  | "bad-signature"
  | "payload-type"
  | "predicate-type"
  | "subject-mismatch";

/** The artifact must not be deployed. `reason` is stable for machines; the message is for people. */
export class ArtifactVerificationError extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ArtifactVerificationError";
  }
}

/** A provenance field the signer supplied is unusable; `key` names it. */
export class ProvenanceInputError extends Error {
  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly problem: string,
  ) {
    super(`${key}: ${JSON.stringify(value) ?? String(value)} ${problem}`);
    this.name = "ProvenanceInputError";
  }
}

/** DSSE pre-authentication encoding: what is actually signed. Lengths are in bytes. */
export function preAuthEncoding(payloadType: string, body: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, "utf8"),
    type,
    Buffer.from(` ${body.length} `, "utf8"),
    body,
  ]);
}

const REVISION = /^(?:[a-f0-9]{40}|[a-f0-9]{64})$/;
const URI = /^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/;

export function checkRevision(value: unknown, key: string): string {
  if (typeof value === "string" && REVISION.test(value)) return value;
  throw new ProvenanceInputError(
    key,
    value,
    "is not a full commit id; allowed: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits",
  );
}

export function checkBuilderId(value: unknown, key: string): string {
  if (typeof value === "string" && URI.test(value)) return value;
  throw new ProvenanceInputError(
    key,
    value,
    "is not a URI; allowed: a URI naming the build platform, e.g. https://github.com/acme/payments/.github/workflows/release.yml",
  );
}

export function checkTimestamp(value: unknown, key: string): string {
  const date =
    value instanceof Date ? value : typeof value === "string" ? new Date(value) : undefined;
  if (
    date &&
    !Number.isNaN(date.getTime()) &&
    (value instanceof Date || /^\d{4}-\d\d-\d\dT/.test(value as string))
  ) {
    return date.toISOString();
  }
  throw new ProvenanceInputError(
    key,
    value,
    "is not a timestamp; allowed: RFC 3339, e.g. 2026-03-01T12:00:00Z",
  );
}

/** The in-toto Statement Slipway signs for `image`. */
export function buildProvenanceStatement(
  image: ImageRef,
  input: ProvenanceInput,
): InTotoStatement<SlsaProvenanceV1> {
  const sourceRevision = checkRevision(input.sourceRevision, "provenance.sourceRevision");
  const builder = checkBuilderId(input.builder, "provenance.builder");
  const now = new Date();
  const startedOn = checkTimestamp(input.buildStartedOn ?? now, "provenance.buildStartedOn");
  const finishedOn = checkTimestamp(input.buildFinishedOn ?? now, "provenance.buildFinishedOn");
  if (finishedOn < startedOn) {
    throw new ProvenanceInputError(
      "provenance.buildFinishedOn",
      finishedOn,
      `is before buildStartedOn (${startedOn})`,
    );
  }
  if (input.sourceUri !== undefined && !URI.test(input.sourceUri)) {
    throw new ProvenanceInputError(
      "provenance.sourceUri",
      input.sourceUri,
      "is not a URI, e.g. git+https://github.com/acme/payments",
    );
  }
  if (input.version !== undefined && (typeof input.version !== "string" || input.version === "")) {
    throw new ProvenanceInputError(
      "provenance.version",
      input.version,
      "is not a non-empty string",
    );
  }

  const source: ResourceDescriptor = {
    ...(input.sourceUri === undefined ? { name: "source" } : { uri: input.sourceUri }),
    digest: { gitCommit: sourceRevision },
  };
  return {
    _type: STATEMENT_TYPE_V1,
    subject: [{ name: image.repository, digest: { sha256: image.digest.slice("sha256:".length) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: SLIPWAY_BUILD_TYPE,
        externalParameters: {
          source: {
            ...(input.sourceUri === undefined ? {} : { uri: input.sourceUri }),
            revision: sourceRevision,
          },
          image: formatImageRef(image),
          ...(input.version === undefined ? {} : { version: input.version }),
        },
        internalParameters: {},
        resolvedDependencies: [source],
      },
      runDetails: {
        builder: { id: builder },
        metadata: {
          ...(input.invocationId === undefined ? {} : { invocationId: input.invocationId }),
          startedOn,
          finishedOn,
        },
      },
    },
  };
}

/** Signs `payload` as a DSSE envelope; `keyid` is the signing key's fingerprint (`keyIdOf`). */
export function signEnvelope(
  payloadType: string,
  payload: Buffer,
  privateKeyPem: string,
  passphrase?: string,
): DsseEnvelope {
  const key = parsePrivateKey(privateKeyPem, passphrase);
  const sig = signBytes(key, preAuthEncoding(payloadType, payload));
  return {
    payloadType,
    payload: payload.toString("base64"),
    signatures: [{ keyid: keyIdOf(key), sig: sig.toString("base64") }],
  };
}

export interface SignArtifactArgs {
  /** `repo@sha256:…` or `repo:tag@sha256:…`. */
  image: string | ImageRef;
  privateKeyPem: string;
  provenance: ProvenanceInput;
  /** For an encrypted private key. */
  passphrase?: string;
}

export function signArtifact(args: SignArtifactArgs): DsseEnvelope {
  const image = typeof args.image === "string" ? parseImageRef(args.image, "image") : args.image;
  const statement = buildProvenanceStatement(image, args.provenance);
  return signEnvelope(
    IN_TOTO_PAYLOAD_TYPE,
    Buffer.from(JSON.stringify(statement), "utf8"),
    args.privateKeyPem,
    args.passphrase,
  );
}

export interface VerifyArtifactArgs {
  /** The image about to be deployed. */
  image: string | ImageRef;
  /**
   * The DSSE envelope (object or JSON text). A Sigstore bundle is accepted too and its
   * `dsseEnvelope` checked with the key; its log entries and certificates are not.
   * `undefined`/`null` means no attestation was found, which is refused as unsigned.
   */
  envelope: unknown;
  /** One or more PEM `PUBLIC KEY` blocks; a signature by any of them is accepted. */
  publicKeyPem: string;
  /** Names the image in errors (default `image`), e.g. `slipway:slots.green.image`. */
  imageKey?: string;
}

/** The image as an ImageRef, or an `unpinned-image` refusal naming `imageKey`. */
export function pinnedImage(image: string | ImageRef, imageKey = "image"): ImageRef {
  if (typeof image !== "string") return image;
  try {
    return parseImageRef(image, imageKey);
  } catch (err) {
    if (err instanceof ImageRefError)
      throw new ArtifactVerificationError("unpinned-image", err.message, { cause: err });
    throw err;
  }
}

/**
 * Checks that `envelope` is signed by a trusted key and states SLSA provenance for exactly
 * this image digest. Throws `ArtifactVerificationError` (refuse the artifact) or
 * `KeyError` (the trusted key itself is unusable).
 */
export function verifyArtifact(args: VerifyArtifactArgs): VerifiedArtifact {
  const image = pinnedImage(args.image, args.imageKey);
  const shown = `${image.repository}@${shortDigest(image.digest)}`;
  const keys = parsePublicKeys(args.publicKeyPem, "the trusted public key");

  const envelope = readEnvelope(args.envelope, shown);
  const pae = preAuthEncoding(envelope.payloadType, envelope.body);
  const signedBy = keys.find((key) =>
    envelope.signatures.some((s) => verifyBytes(key, pae, s.sig)),
  );
  if (!signedBy) {
    const trusted = keys.map(keyIdOf).join(", ");
    const claimed = [...new Set(envelope.signatures.map((s) => s.keyid).filter((k) => k !== ""))];
    throw new ArtifactVerificationError(
      "bad-signature",
      `the attestation for ${shown} does not verify with the trusted public key (${trusted})` +
        (claimed.length > 0 ? `; it names key ${claimed.join(", ")}` : "") +
        ": it was signed with another key, or changed after signing",
    );
  }
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new ArtifactVerificationError(
      "payload-type",
      `the attestation for ${shown} has payloadType ${JSON.stringify(envelope.payloadType)}; allowed: "${IN_TOTO_PAYLOAD_TYPE}" (an in-toto Statement)`,
    );
  }

  const statement = readStatement(envelope.body);
  const wanted = image.digest.slice("sha256:".length);
  const subject = statement.subject.find((s) => s.digest.sha256?.toLowerCase() === wanted);
  if (!subject) {
    const signedFor = statement.subject.map((s) =>
      s.digest.sha256 ? `sha256:${s.digest.sha256.toLowerCase()}` : JSON.stringify(s.digest),
    );
    throw new ArtifactVerificationError(
      "subject-mismatch",
      `the attestation is signed for ${signedFor.map((d) => (d.startsWith("sha256:") ? shortDigest(d, image.digest) : d)).join(", ")}, ` +
        `not for ${shortDigest(image.digest, ...signedFor)} (${image.repository}): it describes another build`,
    );
  }

  return {
    ok: true,
    image: formatImageRef(image),
    digest: image.digest,
    keyId: keyIdOf(signedBy),
    predicateType: statement.predicateType,
    provenance: readProvenance(statement),
  };
}

interface ReadEnvelope {
  payloadType: string;
  body: Buffer;
  signatures: Array<{ keyid: string; sig: Buffer }>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2})$/;

function malformed(field: string, problem: string): ArtifactVerificationError {
  return new ArtifactVerificationError(
    "malformed",
    `the attestation envelope is malformed: ${field} ${problem}`,
  );
}

function decodeBase64(value: unknown, field: string): Buffer {
  if (typeof value !== "string")
    throw malformed(field, value === undefined ? "is missing" : "is not a string");
  if (!BASE64.test(value) || value.replace(/=+$/, "").length % 4 === 1)
    throw malformed(field, "is not base64");
  return Buffer.from(value, "base64");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readEnvelope(input: unknown, shown: string): ReadEnvelope {
  if (input === undefined || input === null || input === "") {
    throw new ArtifactVerificationError(
      "unsigned",
      `${shown} is unsigned: no attestation was supplied for it`,
    );
  }
  let value = input;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      throw malformed("the document", "is not JSON");
    }
  }
  if (!isObject(value)) throw malformed("the document", "is not a JSON object");
  if (isObject(value.dsseEnvelope)) value = value.dsseEnvelope;
  const envelope = value as Record<string, unknown>;

  if (typeof envelope.payloadType !== "string") {
    throw malformed(
      "payloadType",
      envelope.payloadType === undefined ? "is missing" : "is not a string",
    );
  }
  const body = decodeBase64(envelope.payload, "payload");
  if (
    envelope.signatures === undefined ||
    (Array.isArray(envelope.signatures) && envelope.signatures.length === 0)
  ) {
    throw new ArtifactVerificationError(
      "unsigned",
      `${shown} is unsigned: the attestation envelope has no signatures`,
    );
  }
  if (!Array.isArray(envelope.signatures)) throw malformed("signatures", "is not an array");
  const signatures = envelope.signatures.map((s: unknown, i) => {
    if (!isObject(s)) throw malformed(`signatures[${i}]`, "is not an object");
    const sig = decodeBase64(s.sig, `signatures[${i}].sig`);
    if (sig.length === 0) throw malformed(`signatures[${i}].sig`, "is empty");
    if (s.keyid !== undefined && typeof s.keyid !== "string")
      throw malformed(`signatures[${i}].keyid`, "is not a string");
    return { keyid: (s.keyid as string | undefined) ?? "", sig };
  });
  return { payloadType: envelope.payloadType, body, signatures };
}

function readStatement(body: Buffer): InTotoStatement<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw malformed("payload", "is not a JSON in-toto Statement");
  }
  const bad = (field: string, problem: string) =>
    new ArtifactVerificationError(
      "malformed",
      `the attested statement is malformed: ${field} ${problem}`,
    );
  if (!isObject(parsed)) throw bad("the statement", "is not a JSON object");
  if (parsed._type !== STATEMENT_TYPE_V1 && parsed._type !== STATEMENT_TYPE_V01) {
    throw bad(
      "_type",
      `is ${JSON.stringify(parsed._type)}; allowed: "${STATEMENT_TYPE_V1}" or "${STATEMENT_TYPE_V01}"`,
    );
  }
  if (!Array.isArray(parsed.subject) || parsed.subject.length === 0)
    throw bad("subject", "is missing or empty");
  parsed.subject.forEach((s: unknown, i) => {
    if (!isObject(s) || !isObject(s.digest)) throw bad(`subject[${i}].digest`, "is missing");
  });
  if (parsed.predicateType !== SLSA_PROVENANCE_V1 && parsed.predicateType !== SLSA_PROVENANCE_V02) {
    throw new ArtifactVerificationError(
      "predicate-type",
      `the attestation's predicateType is ${JSON.stringify(parsed.predicateType)}; allowed: SLSA provenance ("${SLSA_PROVENANCE_V1}" or "${SLSA_PROVENANCE_V02}")`,
    );
  }
  if (!isObject(parsed.predicate)) throw bad("predicate", "is missing");
  return parsed as unknown as InTotoStatement<Record<string, unknown>>;
}

function at(value: unknown, path: string[]): unknown {
  let cur = value;
  for (const part of path) cur = isObject(cur) ? cur[part] : undefined;
  return cur;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function readProvenance(statement: InTotoStatement<Record<string, unknown>>): Provenance {
  const p = statement.predicate;
  const v1 = statement.predicateType === SLSA_PROVENANCE_V1;
  const bad = (field: string, problem: string) =>
    new ArtifactVerificationError(
      "malformed",
      `the attested provenance is malformed: predicate.${field} ${problem}`,
    );

  const builderPath = v1 ? ["runDetails", "builder", "id"] : ["builder", "id"];
  const builder = optionalString(at(p, builderPath));
  if (!builder) throw bad(builderPath.join("."), "is missing");

  // The source is the dependency pinned to a commit (SLSA v1), or the material that is (v0.2).
  const depsField = v1 ? "buildDefinition.resolvedDependencies" : "materials";
  const deps = at(p, depsField.split("."));
  const source = (Array.isArray(deps) ? deps : [])
    .filter(isObject)
    .find(
      (d) =>
        isObject(d.digest) &&
        (typeof d.digest.gitCommit === "string" || typeof d.digest.sha1 === "string"),
    );
  const digest = source?.digest as Record<string, string> | undefined;
  const sourceRevision = digest?.gitCommit ?? digest?.sha1;
  if (!sourceRevision)
    throw bad(depsField, "names no source commit (an entry with digest.gitCommit)");

  const metadataPath = v1 ? ["runDetails", "metadata"] : ["metadata"];
  const time = (field: string): string | undefined => {
    const value = at(p, [...metadataPath, field]);
    if (value === undefined) return undefined;
    if (typeof value !== "string" || Number.isNaN(Date.parse(value))) {
      throw bad([...metadataPath, field].join("."), "is not an RFC 3339 timestamp");
    }
    return value;
  };
  const provenance: Provenance = {
    sourceRevision,
    builder,
    buildStartedOn: time(v1 ? "startedOn" : "buildStartedOn"),
    buildFinishedOn: time(v1 ? "finishedOn" : "buildFinishedOn"),
    version: optionalString(
      at(
        p,
        v1
          ? ["buildDefinition", "externalParameters", "version"]
          : ["invocation", "parameters", "version"],
      ),
    ),
    sourceUri: optionalString(source?.uri),
    invocationId: optionalString(
      at(p, [...metadataPath, v1 ? "invocationId" : "buildInvocationId"]),
    ),
  };
  // Leave out what the provenance does not say, so logs show only stated facts.
  for (const k of Object.keys(provenance) as (keyof Provenance)[]) {
    if (provenance[k] === undefined) delete provenance[k];
  }
  return provenance;
}
