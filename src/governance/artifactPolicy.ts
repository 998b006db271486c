/**
 * `slipway:artifacts`: which releases a stage accepts. The release pipeline calls
 * `checkArtifact` before it deploys or promotes, and logs what it returns.
 */
import { z } from "zod";
import { formatImageRef, shortDigest, type ImageRef } from "./artifact";
import {
  ArtifactVerificationError,
  pinnedImage,
  verifyArtifact,
  type VerifiedArtifact,
} from "./attestation";
import { KeyError, parsePublicKeys } from "./keys";

export const ARTIFACTS_CONFIG_KEY = "slipway:artifacts";

export const artifactPolicySchema = z
  .object({
    requireSignature: z.boolean({ error: "allowed: true or false" }).default(true),
    publicKey: z
      .string({ error: 'allowed: PEM text ("-----BEGIN PUBLIC KEY-----…")' })
      .superRefine((pem, ctx) => {
        try {
          parsePublicKeys(pem, "the value");
        } catch (err) {
          ctx.addIssue({ code: "custom", message: `is not usable: ${(err as Error).message}` });
        }
      })
      .optional(),
  })
  .strict()
  .superRefine((policy, ctx) => {
    if (policy.requireSignature && policy.publicKey === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["publicKey"],
        message:
          "is required when requireSignature is true: the PEM public key release attestations are signed with (or set requireSignature: false for a stage that accepts unsigned images)",
      });
    }
  });

export type ArtifactCheck =
  | { status: "verified"; verified: VerifiedArtifact }
  /** Deployable only because the stage does not require signatures; log `note`. */
  | { status: "unverified"; image: string; note: string };

export interface CheckArtifactArgs {
  image: string | ImageRef;
  /** The attestation found next to the release input, or undefined when there is none. */
  envelope: unknown;
  policy: { requireSignature: boolean; publicKey?: string };
  /** Names the image in errors, e.g. `slipway:slots.green.image` or `--image`. */
  imageKey?: string;
}

/**
 * Applies the stage's policy to one release. Throws `ArtifactVerificationError` when the
 * artifact must not be deployed. A signature that fails to verify is refused even when
 * signatures are optional: a bad signature is evidence of tampering, not an absence.
 */
export function checkArtifact(args: CheckArtifactArgs): ArtifactCheck {
  const image = pinnedImage(args.image, args.imageKey);
  const shown = `${image.repository}@${shortDigest(image.digest)}`;
  const present = args.envelope !== undefined && args.envelope !== null && args.envelope !== "";
  const { requireSignature, publicKey } = args.policy;

  if (present && publicKey !== undefined) {
    return {
      status: "verified",
      verified: verifyArtifact({ image, envelope: args.envelope, publicKeyPem: publicKey }),
    };
  }
  if (requireSignature) {
    if (!present) {
      throw new ArtifactVerificationError(
        "unsigned",
        `${shown} is unsigned: no attestation was supplied, and ${ARTIFACTS_CONFIG_KEY}.requireSignature is true`,
      );
    }
    throw new KeyError(
      `${ARTIFACTS_CONFIG_KEY}.publicKey is not set, so the attestation for ${shown} cannot be verified and ${ARTIFACTS_CONFIG_KEY}.requireSignature is true`,
    );
  }
  return {
    status: "unverified",
    image: formatImageRef(image),
    note: present
      ? `attestation not checked: ${ARTIFACTS_CONFIG_KEY}.publicKey is not set (allowed because requireSignature is false)`
      : `no attestation (allowed because ${ARTIFACTS_CONFIG_KEY}.requireSignature is false)`,
  };
}
