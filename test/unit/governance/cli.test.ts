import { execFile } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slipway } from "../support/cli";

const root = resolve(__dirname, "../../..");
const tsx = join(root, "node_modules/.bin/tsx");
const IMAGE = `ghcr.io/acme/payments:1.4.2@sha256:${"d".repeat(64)}`;
const OTHER_IMAGE = `ghcr.io/acme/payments@sha256:${"e".repeat(64)}`;
const REVISION = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const BUILDER = "https://github.com/acme/payments/.github/workflows/release.yml@refs/heads/main";

/** A child process takes seconds to start on a busy CI machine. */
const SPAWN_TIMEOUT = 120_000;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The real command line, as a pipeline runs it: tsx on src/cli/main.ts in a child process. */
function spawned(args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      tsx,
      ["src/cli/main.ts", ...args],
      {
        cwd: root,
        encoding: "utf8",
        // The shebang in .bin/tsx finds `node` on PATH: make it this Node (22).
        env: {
          ...process.env,
          PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH}`,
        },
        timeout: 100_000,
      },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === "number" ? error.code : null) : 0;
        done({ status, stdout, stderr });
      },
    );
  });
}

let dir: string;
let keys: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "slipway-sign-"));
  keys = join(dir, "keys");
  const run = await spawned(["keygen", "--out", keys]);
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
}, SPAWN_TIMEOUT);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function signTo(
  out: string,
  image = IMAGE,
  key = join(keys, "slipway.key"),
  run: (args: string[]) => Promise<Run> = slipway,
): Promise<Run> {
  return run([
    "sign",
    "--image",
    image,
    "--key",
    key,
    "--revision",
    REVISION,
    "--builder",
    BUILDER,
    "--version",
    "1.4.2",
    "--source",
    "git+https://github.com/acme/payments",
    "--started-on",
    "2026-03-01T12:00:00Z",
    "--finished-on",
    "2026-03-01T12:04:30Z",
    "--out",
    out,
  ]);
}

describe("slipway keygen", { timeout: SPAWN_TIMEOUT }, () => {
  it("writes a P-256 key pair, the private half readable by its owner only", async () => {
    expect(readFileSync(join(keys, "slipway.key"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(join(keys, "slipway.pub"), "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(statSync(join(keys, "slipway.key")).mode & 0o777).toBe(0o600);
  });

  it("refuses to write a key through a symbolic link, even with --force (issue 12)", async () => {
    const out = join(dir, "linked");
    mkdirSync(out);
    const target = join(dir, "elsewhere.txt");
    writeFileSync(target, "not a key\n");
    symlinkSync(target, join(out, "slipway.key"));
    const run = await slipway(["keygen", "--out", out, "--force"]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      /slipway\.key is a symbolic link; refusing to write a key through it/,
    );
    expect(readFileSync(target, "utf8")).toBe("not a key\n");
  });

  it("does not overwrite a key without --force", async () => {
    const run = await slipway(["keygen", "--out", keys]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/slipway\.key already exists; pass --force to replace it/);
  });

  it("writes an encrypted Ed25519 key when a passphrase is set, and sign reads it", async () => {
    const env = { SLIPWAY_KEY_PASSPHRASE: "correct horse" };
    const run = await slipway(
      ["keygen", "--out", keys, "--name", "team", "--algorithm", "ed25519"],
      env,
    );
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^wrote an Ed25519 key pair \(SHA256:[A-Za-z0-9+/]{43}\), private key encrypted/,
    );
    expect(readFileSync(join(keys, "team.key"), "utf8")).toMatch(/ENCRYPTED PRIVATE KEY/);

    const out = join(dir, "team.json");
    expect((await signTo(out, IMAGE, join(keys, "team.key"))).stderr).toMatch(
      /is encrypted; set SLIPWAY_KEY_PASSPHRASE/,
    );
    const signed = await slipway(
      [
        "sign",
        "--image",
        IMAGE,
        "--key",
        join(keys, "team.key"),
        "--revision",
        REVISION,
        "--builder",
        BUILDER,
      ],
      env,
    );
    expect(signed.status).toBe(0);
    writeFileSync(out, signed.stdout);
    expect(
      (
        await slipway([
          "verify",
          "--image",
          IMAGE,
          "--envelope",
          out,
          "--public-key",
          join(keys, "team.pub"),
        ])
      ).status,
    ).toBe(0);
  });
});

describe("slipway sign and verify", { timeout: SPAWN_TIMEOUT }, () => {
  let envelope: string;

  beforeAll(async () => {
    envelope = join(dir, "attestation.json");
    const run = await signTo(envelope, IMAGE, join(keys, "slipway.key"), spawned);
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(
      /^slipway sign: wrote the attestation for .* to .*attestation\.json \(key SHA256:/,
    );
  }, SPAWN_TIMEOUT);

  it("sign writes a DSSE envelope", async () => {
    const written = JSON.parse(readFileSync(envelope, "utf8"));
    expect(Object.keys(written)).toEqual(["payloadType", "payload", "signatures"]);
    expect(written.payloadType).toBe("application/vnd.in-toto+json");
  });

  it("sign prints to standard output without --out", async () => {
    const run = await slipway([
      "sign",
      "--image",
      IMAGE,
      "--key",
      join(keys, "slipway.key"),
      "--revision",
      REVISION,
      "--builder",
      BUILDER,
    ]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).signatures).toHaveLength(1);
  });

  it("verify prints the provenance and exits 0", async () => {
    const run = await spawned([
      "verify",
      "--image",
      IMAGE,
      "--envelope",
      envelope,
      "--public-key",
      join(keys, "slipway.pub"),
    ]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^verified ${IMAGE.replace(/[.]/g, "\\.")}\n`));
    expect(run.stdout).toContain(`  source revision  ${REVISION}\n`);
    expect(run.stdout).toContain(`  builder          ${BUILDER}\n`);
    expect(run.stdout).toContain(
      "  built            2026-03-01T12:00:00.000Z → 2026-03-01T12:04:30.000Z\n",
    );
    expect(run.stdout).toContain("  version          1.4.2\n");
  });

  it("verify --json prints the result for machines", async () => {
    const run = await slipway([
      "verify",
      "--image",
      IMAGE,
      "--envelope",
      envelope,
      "--public-key",
      join(keys, "slipway.pub"),
      "--json",
    ]);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      ok: true,
      digest: `sha256:${"d".repeat(64)}`,
      provenance: { sourceRevision: REVISION, builder: BUILDER, version: "1.4.2" },
    });
  });

  it("verify refuses (exit 6) an image the attestation was not signed for", async () => {
    const run = await spawned([
      "verify",
      "--image",
      OTHER_IMAGE,
      "--envelope",
      envelope,
      "--public-key",
      join(keys, "slipway.pub"),
      "--json",
    ]);
    expect(run.status).toBe(6);
    expect(JSON.parse(run.stdout)).toEqual({
      ok: false,
      reason: "subject-mismatch",
      error: `the attestation is signed for sha256:${"d".repeat(12)}…, not for sha256:${"e".repeat(12)}… (ghcr.io/acme/payments): it describes another build`,
    });
  });

  it("verify refuses (exit 6) a signature by another key", async () => {
    const other = join(dir, "other");
    expect((await slipway(["keygen", "--out", other])).status).toBe(0);
    const run = await slipway([
      "verify",
      "--image",
      IMAGE,
      "--envelope",
      envelope,
      "--public-key",
      join(other, "slipway.pub"),
    ]);
    expect(run.status).toBe(6);
    expect(run.stderr).toMatch(
      /^slipway verify: refused: the attestation for .* does not verify with the trusted public key/,
    );
  });

  it("verify refuses (exit 6) a tag-only image", async () => {
    const run = await slipway([
      "verify",
      "--image",
      "ghcr.io/acme/payments:1.4.2",
      "--envelope",
      envelope,
      "--public-key",
      join(keys, "slipway.pub"),
    ]);
    expect(run.status).toBe(6);
    expect(run.stderr).toMatch(
      /refused: --image: "ghcr\.io\/acme\/payments:1\.4\.2" is not pinned by digest/,
    );
  });

  it("verify refuses (exit 6) an empty attestation file as unsigned", async () => {
    const empty = join(dir, "empty.json");
    writeFileSync(empty, "");
    const run = await slipway([
      "verify",
      "--image",
      IMAGE,
      "--envelope",
      empty,
      "--public-key",
      join(keys, "slipway.pub"),
    ]);
    expect(run.status).toBe(6);
    expect(run.stderr).toMatch(/is unsigned: no attestation was supplied/);
  });

  it.each([
    [
      [
        "verify",
        "--image",
        IMAGE,
        "--envelope",
        "missing.json",
        "--public-key",
        "KEYS/slipway.pub",
      ],
      /--envelope missing\.json: no such file/,
    ],
    [
      ["verify", "--image", IMAGE, "--envelope", "ENVELOPE", "--public-key", "KEYS/slipway.key"],
      /the trusted public key is a private key/,
    ],
    [
      ["verify", "--image", IMAGE, "--envelope", "ENVELOPE"],
      /required option '--public-key <file>' not specified/,
    ],
    [
      [
        "sign",
        "--image",
        IMAGE,
        "--key",
        "KEYS/slipway.key",
        "--revision",
        "HEAD",
        "--builder",
        BUILDER,
      ],
      /--revision: "HEAD" is not a full commit id/,
    ],
    [
      [
        "sign",
        "--image",
        "ghcr.io/acme/payments:1.4.2",
        "--key",
        "KEYS/slipway.key",
        "--revision",
        REVISION,
        "--builder",
        BUILDER,
      ],
      /--image: .* is not pinned by digest/,
    ],
    [
      [
        "sign",
        "--image",
        IMAGE,
        "--key",
        "KEYS/slipway.pub",
        "--revision",
        REVISION,
        "--builder",
        BUILDER,
      ],
      /the private key is a public key/,
    ],
    [
      [
        "sign",
        "--image",
        IMAGE,
        "--key",
        "KEYS/slipway.key",
        "--revision",
        REVISION,
        "--builder",
        BUILDER,
        "--out",
        "KEYS/no/such/dir/a.json",
      ],
      /--out .*a\.json: ENOENT/,
    ],
  ])("bad usage exits 2: %j", async (args, message) => {
    const run = await slipway(
      args.map((a) => a.replace("KEYS", keys).replace("ENVELOPE", envelope)),
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
  });
});
