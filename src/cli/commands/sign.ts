import {
  closeSync,
  constants,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { ImageRefError, parseImageRef } from "../../governance/artifact";
import {
  checkBuilderId,
  checkRevision,
  checkTimestamp,
  ProvenanceInputError,
  signArtifact,
} from "../../governance/attestation";
import {
  generateSigningKeyPair,
  KeyError,
  keyIdOf,
  parsePrivateKey,
  SIGNING_ALGORITHMS,
  type KeyAlgorithm,
} from "../../governance/keys";
import { ExitCode } from "../../domain";
import { readInput, registerVerify, UsageError } from "./verify";

/** Encrypted private keys (keygen and sign) take their passphrase from here, never from argv. */
const PASSPHRASE_ENV = "SLIPWAY_KEY_PASSPHRASE";

/** Artifact integrity: `keygen`, `sign` and `verify` (verify.ts) register together. */
export function register(program: Command): void {
  registerKeygen(program);
  registerSign(program);
  registerVerify(program);
}

interface SignOptions {
  image: string;
  key: string;
  revision: string;
  builder: string;
  version?: string;
  source?: string;
  startedOn?: string;
  finishedOn?: string;
  invocation?: string;
  out?: string;
}

function registerSign(program: Command): void {
  program
    .command("sign")
    .description(
      "Write a signed SLSA provenance attestation (DSSE envelope) for an image pinned by digest",
    )
    .requiredOption(
      "--image <ref>",
      "the image, pinned by digest: repo@sha256:<hex> or repo:tag@sha256:<hex>",
    )
    .requiredOption(
      "--key <file>",
      `the PEM private key (ECDSA P-256 or Ed25519; if encrypted, passphrase in ${PASSPHRASE_ENV})`,
    )
    .requiredOption("--revision <sha>", "the full commit id the image was built from")
    .requiredOption("--builder <uri>", "a URI naming what built the image, e.g. the CI workflow")
    .option("--version <label>", "the release's version label")
    .option("--source <uri>", "where the source lives, e.g. git+https://github.com/acme/payments")
    .option("--started-on <time>", "when the build started (RFC 3339; default now)")
    .option("--finished-on <time>", "when the build finished (RFC 3339; default now)")
    .option("--invocation <id>", "the build run, e.g. its URL")
    .option("--out <file>", "write the envelope here instead of to standard output")
    .action((opts: SignOptions) => {
      process.exitCode = usageErrors("sign", () => runSign(opts));
    });
}

function runSign(opts: SignOptions): void {
  const image = parseImageRef(opts.image, "--image");
  const now = new Date();
  const provenance = {
    sourceRevision: checkRevision(opts.revision, "--revision"),
    builder: checkBuilderId(opts.builder, "--builder"),
    buildStartedOn: checkTimestamp(opts.startedOn ?? now, "--started-on"),
    buildFinishedOn: checkTimestamp(opts.finishedOn ?? now, "--finished-on"),
    ...(opts.version === undefined ? {} : { version: opts.version }),
    ...(opts.source === undefined ? {} : { sourceUri: opts.source }),
    ...(opts.invocation === undefined ? {} : { invocationId: opts.invocation }),
  };
  const privateKeyPem = readInput(opts.key, "--key");
  const passphrase = process.env[PASSPHRASE_ENV] || undefined;
  const envelope = signArtifact({ image, privateKeyPem, provenance, passphrase });
  const text = `${JSON.stringify(envelope, null, 2)}\n`;
  if (opts.out === undefined) {
    process.stdout.write(text);
    return;
  }
  try {
    writeFileSync(opts.out, text);
  } catch (err) {
    throw new UsageError(
      `--out ${opts.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const keyId = keyIdOf(parsePrivateKey(privateKeyPem, passphrase));
  process.stderr.write(
    `slipway sign: wrote the attestation for ${opts.image} to ${opts.out} (key ${keyId})\n`,
  );
}

const ALGORITHM_NAMES: Record<KeyAlgorithm, string> = {
  "ecdsa-p256": "ECDSA P-256",
  "ecdsa-p384": "ECDSA P-384",
  ed25519: "Ed25519",
};

interface KeygenOptions {
  out: string;
  name: string;
  algorithm: KeyAlgorithm;
  force?: boolean;
}

function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description("Create a signing key pair (PEM) for teams that do not sign with Sigstore")
    .requiredOption("--out <dir>", "directory for <name>.key (private, mode 0600) and <name>.pub")
    .option("--name <name>", "file name stem", "slipway")
    .addOption(
      new Option("--algorithm <algorithm>", "key type")
        .choices([...SIGNING_ALGORITHMS])
        .default("ecdsa-p256"),
    )
    .option("--force", "overwrite existing key files")
    .action((opts: KeygenOptions) => {
      process.exitCode = usageErrors("keygen", () => runKeygen(opts));
    });
}

function runKeygen(opts: KeygenOptions): void {
  if (!/^[\w.-]+$/.test(opts.name))
    throw new UsageError(`--name ${JSON.stringify(opts.name)}: allowed: letters, digits, _ . -`);
  const privatePath = join(opts.out, `${opts.name}.key`);
  const publicPath = join(opts.out, `${opts.name}.pub`);
  for (const path of [privatePath, publicPath]) {
    const existing = lstatIfAny(path);
    if (existing?.isSymbolicLink())
      throw new UsageError(
        `${path} is a symbolic link; refusing to write a key through it (--force replaces files, never link targets): remove the link or choose another --out`,
      );
    if (existing && !existing.isFile())
      throw new UsageError(`${path} exists and is not a regular file; choose another --out`);
    if (existing && !opts.force)
      throw new UsageError(`${path} already exists; pass --force to replace it`);
  }
  const passphrase = process.env[PASSPHRASE_ENV] || undefined;
  const pair = generateSigningKeyPair(opts.algorithm, passphrase);
  mkdirSync(opts.out, { recursive: true });
  writeKeyFile(privatePath, pair.privateKeyPem, 0o600);
  writeKeyFile(publicPath, pair.publicKeyPem, 0o644);
  process.stdout.write(
    `wrote an ${ALGORITHM_NAMES[pair.algorithm]} key pair (${pair.keyId})${passphrase ? `, private key encrypted with ${PASSPHRASE_ENV}` : ""}\n` +
      `  private key  ${privatePath}  keep it secret; sign with: slipway sign --key ${privatePath} ...\n` +
      `  public key   ${publicPath}  trust it in slipway:artifacts.publicKey, or: slipway verify --public-key ${publicPath} ...\n`,
  );
}

function lstatIfAny(path: string) {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * O_NOFOLLOW: a link planted between the check above and this open fails with
 * ELOOP instead of sending a private key wherever it points.
 */
function writeKeyFile(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      mode,
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP")
      throw new UsageError(`${path} is a symbolic link; refusing to write a key through it`);
    throw err;
  }
  try {
    fchmodSync(fd, mode); // the mode of open() applies only when the file is created; --force reuses one.
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** Bad flags, files and keys exit 2 with one line naming the flag; anything else is a bug. */
function usageErrors(command: string, run: () => void): number {
  try {
    run();
    return ExitCode.ok;
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof ImageRefError ||
      err instanceof ProvenanceInputError ||
      err instanceof KeyError
    ) {
      process.stderr.write(`slipway ${command}: ${err.message}\n`);
      return ExitCode.usage;
    }
    throw err;
  }
}
