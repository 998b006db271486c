import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  ArtifactVerificationError,
  verifyArtifact,
  type VerifiedArtifact,
} from "../../governance/attestation";
import { KeyError } from "../../governance/keys";
import { ExitCode } from "../../domain";

interface VerifyOptions {
  image: string;
  envelope: string;
  publicKey: string;
  json?: boolean;
}

/** A problem with the command line or its files, as opposed to a verdict on the artifact. */
export class UsageError extends Error {}

/** Reads a file named by a flag; `-` is standard input. */
export function readInput(path: string, flag: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${flag} ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message}`,
    );
  }
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      "Check that an image's attestation is signed by a trusted key and states SLSA provenance for exactly its digest",
    )
    .requiredOption(
      "--image <ref>",
      "the image to deploy, pinned by digest: repo@sha256:<hex> or repo:tag@sha256:<hex>",
    )
    .requiredOption(
      "--envelope <file>",
      "the DSSE envelope (JSON) written by `slipway sign` or `cosign attest`; - for stdin",
    )
    .requiredOption(
      "--public-key <file>",
      "the trusted PEM public key(s); several blocks are accepted during a key rotation",
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nExit codes: 0 verified, 6 refused (unsigned, wrong key, altered, another digest, not pinned), 2 bad usage.",
    )
    .action((opts: VerifyOptions) => {
      process.exitCode = runVerify(opts);
    });
}

function runVerify(opts: VerifyOptions): number {
  const out = (value: object) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  try {
    const publicKeyPem = readInput(opts.publicKey, "--public-key");
    const envelope = readInput(opts.envelope, "--envelope");
    const verified = verifyArtifact({
      image: opts.image,
      imageKey: "--image",
      envelope,
      publicKeyPem,
    });
    if (opts.json) out(verified);
    else process.stdout.write(describe(verified));
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof ArtifactVerificationError) {
      if (opts.json) out({ ok: false, reason: err.reason, error: err.message });
      else process.stderr.write(`slipway verify: refused: ${err.message}\n`);
      return ExitCode.refused;
    }
    if (err instanceof UsageError || err instanceof KeyError) {
      if (opts.json) out({ ok: false, reason: "usage", error: err.message });
      else process.stderr.write(`slipway verify: ${err.message}\n`);
      return ExitCode.usage;
    }
    throw err;
  }
}

function describe(v: VerifiedArtifact): string {
  const p = v.provenance;
  const rows: Array<[string, string | undefined]> = [
    ["signed by", v.keyId],
    ["source revision", p.sourceRevision],
    ["source", p.sourceUri],
    ["builder", p.builder],
    ["build run", p.invocationId],
    [
      "built",
      p.buildStartedOn || p.buildFinishedOn
        ? `${p.buildStartedOn ?? "?"} → ${p.buildFinishedOn ?? "?"}`
        : undefined,
    ],
    ["version", p.version],
    ["provenance", v.predicateType],
  ];
  return (
    `verified ${v.image}\n` +
    rows
      .filter((row): row is [string, string] => row[1] !== undefined)
      .map(([label, value]) => `  ${label.padEnd(16)} ${value}\n`)
      .join("")
  );
}
