/**
 * Signing keys: PEM in, Node `KeyObject`s out, and the one place that knows which
 * algorithm goes with which key type. Node's crypto only; see docs/signing.md for why
 * Sigstore's libraries are not used here.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";

export type KeyAlgorithm = "ecdsa-p256" | "ecdsa-p384" | "ed25519";
export const SIGNING_ALGORITHMS: readonly KeyAlgorithm[] = ["ecdsa-p256", "ed25519"];

/** A key file or config value that cannot be used; not a verdict on an artifact. */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}

/** ECDSA hashes follow the curve, as cosign and the Sigstore clients do. */
const HASH_FOR: Record<KeyAlgorithm, string | null> = {
  "ecdsa-p256": "sha256",
  "ecdsa-p384": "sha384",
  ed25519: null,
};

export function algorithmOf(key: KeyObject, what: string): KeyAlgorithm {
  if (key.asymmetricKeyType === "ed25519") return "ed25519";
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "ecdsa-p256";
    if (curve === "secp384r1") return "ecdsa-p384";
    throw new KeyError(
      `${what} is an EC key on curve ${curve ?? "unknown"}; allowed: P-256, P-384 or Ed25519`,
    );
  }
  throw new KeyError(
    `${what} is a ${key.asymmetricKeyType ?? "unknown"} key; allowed: ECDSA P-256, P-384 or Ed25519`,
  );
}

/**
 * Every `PUBLIC KEY` block in `pem`. Several blocks in one value let a stage trust an old
 * and a new key while signing moves from one to the other.
 */
export function parsePublicKeys(pem: unknown, what = "the public key"): KeyObject[] {
  if (typeof pem !== "string")
    throw new KeyError(`${what} is ${pem === undefined ? "missing" : "not PEM text"}`);
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) {
    throw new KeyError(
      /PRIVATE KEY-----/.test(pem)
        ? `${what} is a private key; give the public half (PEM "BEGIN PUBLIC KEY")`
        : `${what} holds no PEM "BEGIN PUBLIC KEY" block`,
    );
  }
  return blocks.map((block, i) => {
    const label = blocks.length > 1 ? `${what} (block ${i + 1})` : what;
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw new KeyError(`${label} is not a valid PEM public key (${(err as Error).message})`);
    }
    algorithmOf(key, label);
    return key;
  });
}

/** Reads a PKCS#8 (or SEC1) private key; encrypted keys take `passphrase`. */
export function parsePrivateKey(
  pem: string,
  passphrase?: string,
  what = "the private key",
): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new KeyError(
      /PUBLIC KEY-----/.test(pem)
        ? `${what} is a public key; signing needs the private half`
        : `${what} holds no PEM "BEGIN PRIVATE KEY" block`,
    );
  }
  if (/ENCRYPTED/.test(pem) && !passphrase) {
    throw new KeyError(`${what} is encrypted; set SLIPWAY_KEY_PASSPHRASE to its passphrase`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase ? { key: pem, passphrase } : pem);
  } catch (err) {
    throw new KeyError(`${what} cannot be read (${(err as Error).message})`);
  }
  algorithmOf(key, what);
  return key;
}

/**
 * A stable name for a public key: `SHA256:` and the unpadded base64 of the SHA-256 of its
 * DER SubjectPublicKeyInfo (the form `ssh-keygen -l` prints), so logs can say which key
 * signed without printing the key.
 */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const der = publicKey.export({ type: "spki", format: "der" });
  return `SHA256:${createHash("sha256").update(der).digest("base64").replace(/=+$/, "")}`;
}

export function signBytes(key: KeyObject, data: Buffer): Buffer {
  // ECDSA signatures are DER-encoded, as cosign writes and expects them.
  return cryptoSign(HASH_FOR[algorithmOf(key, "the private key")], data, key);
}

export function verifyBytes(key: KeyObject, data: Buffer, signature: Buffer): boolean {
  const algorithm = algorithmOf(key, "the public key");
  const hash = HASH_FOR[algorithm];
  try {
    if (cryptoVerify(hash, data, key, signature)) return true;
  } catch {
    // A signature that is not valid DER makes OpenSSL throw; it may still be raw r||s.
  }
  if (algorithm === "ed25519") return false;
  // Some signers (WebCrypto, cloud KMS raw mode) emit IEEE P1363 r||s instead of DER.
  const rawLength = algorithm === "ecdsa-p256" ? 64 : 96;
  if (signature.length !== rawLength) return false;
  try {
    return cryptoVerify(hash, data, { key, dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

export interface GeneratedKeyPair {
  algorithm: KeyAlgorithm;
  privateKeyPem: string;
  publicKeyPem: string;
  keyId: string;
}

export function generateSigningKeyPair(
  algorithm: KeyAlgorithm = "ecdsa-p256",
  passphrase?: string,
): GeneratedKeyPair {
  const pair =
    algorithm === "ed25519"
      ? generateKeyPairSync("ed25519")
      : generateKeyPairSync("ec", { namedCurve: algorithm === "ecdsa-p384" ? "P-384" : "P-256" });
  const privateKeyPem = pair.privateKey.export(
    passphrase
      ? { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }
      : { type: "pkcs8", format: "pem" },
  ) as string;
  const publicKeyPem = pair.publicKey.export({ type: "spki", format: "pem" }) as string;
  return { algorithm, privateKeyPem, publicKeyPem, keyId: keyIdOf(pair.publicKey) };
}
