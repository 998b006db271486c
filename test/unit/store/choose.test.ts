import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../../src/cli/main";
import { ExitCode } from "../../../src/domain";
import { resolveContext } from "../../../src/pipeline/context";
import { rollback, status } from "../../../src/pipeline/operations";
import { release } from "../../../src/pipeline/release";
import { previewPlan } from "../../../src/releasePlan";
import { StoreConfigError } from "../../../src/store/errors";
import { FileStore } from "../../../src/store/fileStore";
import { S3Store } from "../../../src/store/s3Store";
import { STORE_ENV, storeFor } from "../../../src/store/url";
import { ROOT } from "../support/harness";

/**
 * Issue 22: which release store a pipeline command takes its lease from (`--store` >
 * SLIPWAY_STORE > derived from the backend > the files in the log directory), and the refusals
 * that come before anything is read or updated. Nothing here reaches a network or an engine.
 */
const ctx = (backendUrl: string) => ({ backendUrl, projectDir: "/project", logDir: "/logs" });
const image = `registry.local/checkout@sha256:${"c".repeat(64)}`;

afterEach(() => {
  delete process.env[STORE_ENV];
});

describe("storeFor: the one place a command's store is chosen", () => {
  it("--store wins over SLIPWAY_STORE, which wins over the backend", () => {
    const env = { [STORE_ENV]: "s3://from-env/x?region=eu-west-1" };
    const flagged = storeFor(ctx("s3://state/pulumi?region=eu-west-1"), "s3://from-flag", env);
    expect(flagged.describe()).toBe("s3://from-flag");
    const fromEnv = storeFor(ctx("s3://state/pulumi?region=eu-west-1"), undefined, env);
    expect(fromEnv.describe()).toBe("s3://from-env/x?region=eu-west-1");
    const files = storeFor(ctx("file:///state"), "file:///from-flag", env);
    expect((files as FileStore).dir).toBe("/from-flag");
    for (const s of [flagged, fromEnv]) s.close();
  });

  it("an s3:// backend gives the S3 store in its bucket under <prefix>/.slipway/", () => {
    const store = storeFor(ctx("s3://state/pulumi?region=eu-west-1"), undefined, {}) as S3Store;
    expect(store).toBeInstanceOf(S3Store);
    expect(store.stageKey("prod", "lease.json")).toBe("pulumi/.slipway/prod/lease.json");
    store.close();
  });

  it("two services on one backend bucket, with stages of the same names, keep their leases and logs apart", () => {
    const project = (name: string) => {
      const dir = mkdtempSync(join(tmpdir(), "slipway-project-"));
      writeFileSync(join(dir, "Pulumi.yaml"), `name: ${name}\nruntime: nodejs\n`);
      return dir;
    };
    const backendUrl = "s3://state/pulumi?region=eu-west-1";
    const [checkout, payments] = ["checkout", "payments"].map(
      (name) =>
        storeFor(
          { backendUrl, projectDir: project(name), logDir: "/logs" },
          undefined,
          {},
        ) as S3Store,
    );
    expect(checkout!.stageKey("prod", "lease.json")).toBe(
      "pulumi/.slipway/checkout/prod/lease.json",
    );
    expect(payments!.log("prod").keyOf(7)).toBe(
      "pulumi/.slipway/payments/prod/log/000000000007.json",
    );
    // An explicit store URL is shared by services just the same.
    const flagged = storeFor(
      { backendUrl, projectDir: project("payments"), logDir: "/logs" },
      "s3://releases/ci?region=eu-west-1",
      {},
    ) as S3Store;
    expect(flagged.stageKey("prod", "lease.json")).toBe("ci/.slipway/payments/prod/lease.json");
    for (const s of [checkout!, payments!, flagged]) s.close();
  });

  it("by default, the files in the context's log directory: today's lease, where resolveContext puts it", () => {
    expect((storeFor(ctx("file:///state"), undefined, {}) as FileStore).dir).toBe("/logs");
    const dir = mkdtempSync(join(tmpdir(), "slipway-choose-"));
    const resolved = resolveContext({
      stage: "local",
      projectDir: dir,
      backendUrl: `file://${join(dir, "state")}`,
    });
    expect((storeFor(resolved, undefined, {}) as FileStore).dir).toBe(
      join(dir, "state", ".slipway-releases"),
    );
  });

  it.each([
    ["--store", (url: string) => storeFor(ctx("file:///state"), url, {})],
    [STORE_ENV, (url: string) => storeFor(ctx("file:///state"), undefined, { [STORE_ENV]: url })],
  ])(
    "a bad URL in %s is refused, naming the setting, the value and the forms allowed",
    (name, choose) => {
      for (const [url, why] of [
        ["gs://bucket/x", /scheme gs:\/\/ is not a release store/],
        ["s3://bucket?endpoint=127.0.0.1:9000", /has no http:\/\/ or https:\/\/ scheme/],
        ["releases", /no scheme/],
      ] as const) {
        let err: unknown;
        try {
          choose(url);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(StoreConfigError);
        const message = (err as Error).message;
        expect(message.startsWith(`${name}: store URL ${url}`)).toBe(true);
        expect(message).toMatch(why);
        expect(message).toContain("allowed: file:///absolute/dir, or s3://bucket");
      }
    },
  );

  it.each(["s3://state", "gs://state", "azblob://state", "https://api.pulumi.com"])(
    "a shared backend %s with the machine-local default or a file:// store is refused, saying how to fix it",
    (backend) => {
      const attempts = [
        () => storeFor(ctx(backend), "file:///tmp/releases", {}),
        () => storeFor(ctx(backend), undefined, { [STORE_ENV]: "file:///tmp/releases" }),
        ...(backend.startsWith("s3:") ? [] : [() => storeFor(ctx(backend), undefined, {})]),
      ];
      for (const attempt of attempts) {
        expect(attempt).toThrow(StoreConfigError);
        expect(attempt).toThrow(
          /is shared by every runner, but the release store .* is on this machine only.*Set SLIPWAY_STORE=s3:\/\/.*or pass --store/,
        );
      }
    },
  );

  it("a file:// backend (every test's) keeps the file store: nothing shared, nothing refused", () => {
    expect(storeFor(ctx("file:///home/ci/state"), undefined, {})).toBeInstanceOf(FileStore);
  });
});

/** A project whose stack was never touched; any engine call would fail (no pulumi on PATH). */
function project(stage = "local") {
  const dir = mkdtempSync(join(tmpdir(), "slipway-choose-"));
  for (const f of ["Pulumi.yaml", `Pulumi.${stage}.yaml`])
    copyFileSync(join(ROOT, f), join(dir, f));
  return {
    dir,
    args: {
      stage,
      projectDir: dir,
      logDir: join(dir, "releases"),
      env: { PATH: "/nonexistent" },
    },
  };
}

describe("the commands refuse a bad or machine-local store before anything", () => {
  it("release with a Pulumi Cloud backend and no store: exit 6, no lease, no log, the fix named", async () => {
    const { dir, args } = project();
    const result = await release({
      ...args,
      backendUrl: "https://api.pulumi.com",
      image,
      version: "2.0.0",
    });
    expect(result).toMatchObject({ outcome: "refused", exitCode: ExitCode.refused });
    expect(result.reason).toMatch(/backend https:\/\/api\.pulumi\.com is shared by every runner/);
    expect(result.reason).toMatch(/SLIPWAY_STORE=s3:\/\/.*--store/);
    expect(existsSync(join(dir, "releases"))).toBe(false);
  });

  it("release, rollback and plan with a bad --store: exit 6 naming it; nothing written", async () => {
    const { dir, args } = project();
    const backendUrl = `file://${join(dir, "state")}`;
    const store = "s3://Bad_Bucket/x";
    const released = await release({ ...args, backendUrl, store, image, version: "2.0.0" });
    const rolledBack = await rollback({ ...args, backendUrl, store });
    const planned = await previewPlan({ ...args, backendUrl, store, image, version: "2.0.0" });
    for (const reason of [released.reason, rolledBack.reason, planned.refused])
      expect(reason).toMatch(/^--store: store URL s3:\/\/Bad_Bucket\/x: bucket "Bad_Bucket"/);
    expect([released.exitCode, rolledBack.exitCode, planned.exitCode]).toEqual([6, 6, 6]);
    expect(existsSync(join(dir, "releases"))).toBe(false);
  });

  it.each([
    ["SLIPWAY_RUNNER_ID", "-not an id", /SLIPWAY_RUNNER_ID="-not an id": not a runner id; allowed/],
    [
      "SLIPWAY_LEASE_TTL_SECONDS",
      "1",
      /SLIPWAY_LEASE_TTL_SECONDS="1": not a lease TTL; allowed: a number of seconds from 5 to 3600/,
    ],
  ])("a bad %s is refused before anything is read or written", async (name, value, message) => {
    const { dir, args } = project();
    vi.stubEnv(name, value);
    try {
      const backendUrl = `file://${join(dir, "state")}`;
      const released = await release({ ...args, backendUrl, image, version: "2.0.0" });
      const rolledBack = await rollback({ ...args, backendUrl });
      const planned = await previewPlan({ ...args, backendUrl, image, version: "2.0.0" });
      expect([released.exitCode, rolledBack.exitCode, planned.exitCode]).toEqual([6, 6, 6]);
      for (const reason of [released.reason, rolledBack.reason, planned.refused])
        expect(reason).toMatch(message);
      expect(existsSync(join(dir, "releases"))).toBe(false);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("status refuses SLIPWAY_STORE with a shared backend (the CLI exits 6 and says why)", async () => {
    const { args } = project();
    await expect(status({ ...args, backendUrl: "gs://state" })).rejects.toThrow(StoreConfigError);
    process.env[STORE_ENV] = "ftp://releases";
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      err.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await main([
        "status",
        "--stage",
        "local",
        "--project-dir",
        args.projectDir,
        "--backend",
        `file://${join(args.projectDir, "state")}`,
      ]);
    } finally {
      spy.mockRestore();
      process.exitCode = undefined;
    }
    expect(code).toBe(ExitCode.refused);
    expect(err.join("")).toMatch(
      /SLIPWAY_STORE: store URL ftp:\/\/releases: scheme ftp:\/\/ is not a release store; allowed:/,
    );
  });
});
