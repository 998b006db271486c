/**
 * The release store against a real S3 server (moto_server on loopback): conditional writes
 * decide every race, so these tests race real requests and check who won.
 */
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PipelineBusyError } from "../../src/pipeline/errors";
import { LogBrokenError } from "../../src/pipeline/log";
import type { StageState } from "../../src/pipeline/machine";
import { stageLeaseOf } from "../../src/pipeline/operations";
import { release } from "../../src/pipeline/release";
import { applyUpdate, type StageUpdater } from "../../src/pipeline/update";
import {
  LeaseLostError,
  StoreAccessError,
  LogPositionTakenError,
  MigrationRefusedError,
  StoreUnreachableError,
} from "../../src/store/errors";
import { FileStore } from "../../src/store/fileStore";
import { migrateFileLog } from "../../src/store/migrate";
import { S3Store } from "../../src/store/s3Store";
import {
  runnerHolder,
  verifiedRecords,
  type NewHolder,
  type ReleaseStore,
} from "../../src/store/store";
import { storeFor, storeFromUrl } from "../../src/store/url";
import { slipway } from "../unit/support/cli";
import { clearDeadStageEngineLocks, stageEngineLocks } from "../../src/pipeline/engineLock";
import { hostname } from "node:os";
import { localProject, RenderedStack } from "../unit/support/localStack";
import { freePort, waitFor } from "./servers";
import { S3_CREDENTIALS, startS3 as startServer, type S3Server } from "../support/s3Server";

const CREDENTIALS = S3_CREDENTIALS;
const BUCKET = "slipway-releases";
const startS3 = () => startServer(BUCKET);
type Server = S3Server;
const urlOf = (server: Server, prefix: string) => server.url(prefix);

const runner = (n: number | string, what = "release 1.0.0"): NewHolder => ({
  what,
  runnerId: `runner-${n}`,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: Server;
const stores: S3Store[] = [];
let prefixes = 0;

/** A store under a prefix of its own: tests share the server, never a stage's objects. */
function s3Store(): S3Store {
  const store = storeFromUrl(urlOf(server, `t${++prefixes}`), {
    backendUrl: "file:///unused",
    projectDir: "/unused",
  });
  expect(store).toBeInstanceOf(S3Store);
  stores.push(store as S3Store);
  return store as S3Store;
}

beforeAll(async () => {
  // The store reads credentials the standard way; the test's are fake and only moto sees them.
  process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  delete process.env.AWS_PROFILE;
  server = await startS3();
});

afterAll(async () => {
  for (const s of stores) s.close();
  await server?.stop();
});

describe("lease", () => {
  it("concurrent acquires: exactly one of eight racers wins, the others are told who holds it", async () => {
    const store = s3Store();
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.acquireLease("prod", runner(i), { ttlMs: 30_000 })),
    );
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(7);
    const lease = won[0]!.value;
    expect(lease.generation).toBe(1);
    for (const r of lost) {
      const err = r.reason as PipelineBusyError;
      expect(err).toBeInstanceOf(PipelineBusyError);
      expect(err.holder?.runnerId).toBe(lease.holder.runnerId);
      expect(err.message).toContain(`runner ${lease.holder.runnerId}`);
      expect(err.message).toContain(`pid ${process.pid}`);
      expect(err.message).toContain(`since ${lease.holder.since}`);
      expect(err.message).toContain(`expires at ${lease.holder.expiresAt}`);
      expect(err.message).toContain(`/t${prefixes}/.slipway/prod/lease.json`);
    }
    const state = await store.readLease("prod");
    expect(state?.live).toBe(true);
    expect(state?.holder?.runnerId).toBe(lease.holder.runnerId);
    await lease.release();
    expect(await store.readLease("prod")).toBeUndefined();
    // Released: the next holder takes it at once, one generation on.
    const next = await store.acquireLease("prod", runner("next"), { ttlMs: 30_000 });
    expect(next.generation).toBe(2);
  });

  it("a renewal after a takeover fails with LeaseLostError (fencing); the old holder's release leaves the new lease", async () => {
    const store = s3Store();
    const a = await store.acquireLease("staging", runner("a"), { ttlMs: 600 });
    await a.renew(); // still ours
    await sleep(800);
    const b = await store.acquireLease("staging", runner("b"), { ttlMs: 30_000 });
    expect(b.generation).toBe(a.generation + 1);
    const err = await a.renew().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as LeaseLostError).current?.runnerId).toBe("runner-b");
    expect((err as Error).message).toMatch(/lost the lease of stage staging.*runner runner-b/);
    await a.release();
    expect((await store.readLease("staging"))?.holder?.runnerId).toBe("runner-b");
    await b.renew();
  });

  it("an expired lease is taken over by exactly one of several racers, generation + 1", async () => {
    const store = s3Store();
    const dead = await store.acquireLease("prod", runner("dead"), { ttlMs: 500 });
    await sleep(700);
    expect((await store.readLease("prod"))?.live).toBe(false);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.acquireLease("prod", runner(i), { ttlMs: 30_000 })),
    );
    const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    expect(won).toHaveLength(1);
    expect(won[0]!.generation).toBe(dead.generation + 1);
    for (const r of results)
      if (r.status === "rejected") {
        expect(r.reason).toBeInstanceOf(PipelineBusyError);
        expect((r.reason as PipelineBusyError).holder?.runnerId).toBe(won[0]!.holder.runnerId);
      }
  });

  it("a heartbeat keeps a lease past its TTL; onLost fires when the server stops", async () => {
    const own = await startS3();
    const store = storeFromUrl(urlOf(own, "hb"), {
      backendUrl: "file:///unused",
      projectDir: "/unused",
      s3: { maxAttempts: 1, connectTimeoutMs: 300, requestTimeoutMs: 500 },
    }) as S3Store;
    try {
      const lease = await store.acquireLease("prod", runner("hb"), { ttlMs: 1_500 });
      const lost: Error[] = [];
      const heartbeat = lease.startHeartbeat({
        intervalMs: 300,
        retryDelayMs: 100,
        onLost: (e) => lost.push(e),
      });
      await sleep(3_000); // twice the TTL
      expect(lost).toEqual([]);
      await expect(store.acquireLease("prod", runner("other"), { ttlMs: 1_500 })).rejects.toThrow(
        PipelineBusyError,
      );
      const expiryBefore = lease.expiresAt.getTime();
      await own.process.stop();
      const stoppedAt = Date.now();
      await waitFor("onLost", async () => lost.length > 0, 5_000);
      // Given up before the lease could expire under it.
      expect(Date.now()).toBeLessThan(Math.max(expiryBefore, lease.expiresAt.getTime()));
      expect(Date.now() - stoppedAt).toBeLessThan(1_500);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toBeInstanceOf(StoreUnreachableError);
      // Fenced off: no renewal counts any more, even the fencing check before an update.
      await expect(lease.renew()).rejects.toThrow(LeaseLostError);
      await heartbeat.stop();
    } finally {
      store.close();
      await own.stop();
    }
  });
});

describe("log", () => {
  it("appends chained records across pages and reads them back verified", async () => {
    const first = s3Store();
    const store = new S3Store(first.location, { listPageSize: 2 });
    stores.push(store);
    const log = store.log("prod");
    const heard: number[] = [];
    log.onAppend((r) => heard.push(r.seq));
    for (const event of ["release.started", "update.started", "update.succeeded"] as const)
      await log.append({ stage: "prod", releaseId: "r-1", event });
    const other = first.log("prod"); // another runner's view of the same objects
    const reading = await other.read();
    expect(reading.problems).toEqual([]);
    expect(reading.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(heard).toEqual([1, 2, 3]);
    expect(
      (await other.append({ stage: "prod", releaseId: "r-1", event: "release.completed" })).seq,
    ).toBe(4);
    expect((await log.read()).records.map((r) => r.event).at(-1)).toBe("release.completed");
  });

  it("two writers racing for one position: one wins, the other is told another runner wrote it first", async () => {
    const store = s3Store();
    await store.log("prod").append({ stage: "prod", releaseId: "r-1", event: "release.started" });
    const results = await Promise.allSettled(
      ["a", "b", "c"].map((who) =>
        store
          .log("prod")
          .append({ stage: "prod", releaseId: "r-1", event: "update.started", actor: who }),
      ),
    );
    const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    expect(won).toHaveLength(1);
    expect(won[0]!.seq).toBe(2);
    expect(lost).toHaveLength(2);
    for (const err of lost) {
      expect(err).toBeInstanceOf(LogPositionTakenError);
      expect((err as LogPositionTakenError).seq).toBe(2);
      expect((err as LogPositionTakenError).winner?.actor).toBe(won[0]!.actor);
      expect(err.message).toMatch(
        /another runner wrote record 2 of stage prod's release log first/,
      );
    }
    const reading = await store.log("prod").read();
    expect(reading.problems).toEqual([]);
    expect(reading.records).toHaveLength(2);
  });

  it("an object overwritten in the bucket breaks the chain, is named by key, and blocks appends", async () => {
    const store = s3Store();
    const log = store.log("prod");
    for (const event of ["release.started", "analysis.passed", "release.promoted"] as const)
      await log.append({ stage: "prod", releaseId: "r-1", event });
    const key = `t${prefixes}/.slipway/prod/log/000000000002.json`;
    const forged = { ...(await log.read()).records[1]!, event: "analysis.failed" };
    await server.admin.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(forged) }),
    );
    const reading = await store.log("prod").read();
    expect(reading.problems).toEqual([
      expect.objectContaining({
        line: 3,
        where: `s3://${BUCKET}/t${prefixes}/.slipway/prod/log/000000000003.json`,
        problem: expect.stringMatching(/does not chain to the record on line 2/),
      }),
    ]);
    // The same log read by the runner that wrote it (its cache holds the original) sees it too.
    expect((await log.read()).problems).toHaveLength(1);
    const refused = await log
      .append({ stage: "prod", releaseId: "r-1", event: "release.completed" })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LogBrokenError);
    expect((refused as Error).message).toContain("000000000003.json");
    expect((await log.read()).records).toHaveLength(3);
  });
});

describe("migrate a file log", () => {
  it("copies each line to its object and verifies the copy; a second migration is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-migrate-"));
    const files = new FileStore(dir);
    for (const event of ["release.started", "update.started", "release.completed"] as const)
      await files.log("staging").append({ stage: "staging", releaseId: "r-1", event });
    const store = s3Store();
    const done = await migrateFileLog(files, store, "staging");
    expect(done.copied).toBe(3);
    const lines = readFileSync(join(dir, "staging.jsonl"), "utf8").trimEnd().split("\n");
    expect((await store.log("staging").readLines()).lines).toEqual(lines);
    // The chain goes on in S3 from the migrated records.
    expect(
      (
        await store
          .log("staging")
          .append({ stage: "staging", releaseId: "r-2", event: "release.started" })
      ).seq,
    ).toBe(4);
    await expect(migrateFileLog(files, store, "staging")).rejects.toThrow(
      /already holds 4 record\(s\); nothing was copied/,
    );
  });

  it("refuses a file log that does not verify and copies nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-migrate-"));
    const files = new FileStore(dir);
    await files
      .log("staging")
      .append({ stage: "staging", releaseId: "r-1", event: "release.started" });
    appendFileSync(join(dir, "staging.jsonl"), '{"not": "a record"}\n');
    const store = s3Store();
    await expect(migrateFileLog(files, store, "staging")).rejects.toThrow(MigrationRefusedError);
    await expect(migrateFileLog(files, store, "staging")).rejects.toThrow(
      /the file log does not verify \(line 2: not a release record/,
    );
    expect((await store.log("staging").read()).records).toEqual([]);
  });
});

describe("slipway migrate-log", () => {
  it("moves a stage's file log into the S3 store, which history then reads; once only; an S3 store only", async () => {
    const { dir: projectDir } = localProject();
    const logDir = mkdtempSync(join(tmpdir(), "slipway-migrate-cli-"));
    for (const event of ["release.started", "update.started", "release.completed"] as const)
      await new FileStore(logDir).log("local").append({ stage: "local", releaseId: "r-1", event });
    const store = urlOf(server, `cli${++prefixes}`);
    const common = ["--stage", "local", "--project-dir", projectDir, "--backend", "file:///unused"];
    const moved = await slipway(["migrate-log", ...common, "--from", logDir, "--store", store]);
    expect(moved.status, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(
      /migrated 3 record\(s\) of stage local from .*local\.jsonl to s3:\/\/.*\/local\/log\/; the copy verifies/,
    );
    const history = await slipway(["history", ...common, "--store", store, "--json"]);
    expect(history.status, history.stderr).toBe(0);
    const lines = readFileSync(join(logDir, "local.jsonl"), "utf8").trimEnd().split("\n");
    expect(
      history.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual(lines.map((l) => JSON.parse(l)));
    const again = await slipway(["migrate-log", ...common, "--from", logDir, "--store", store]);
    expect(again.status).toBe(6);
    expect(again.stderr).toMatch(/already holds 3 record\(s\); nothing was copied/);
    const toFiles = await slipway([
      "migrate-log",
      ...common,
      "--from",
      logDir,
      "--store",
      `file://${mkdtempSync(join(tmpdir(), "slipway-migrate-to-"))}`,
    ]);
    expect(toFiles.status).toBe(6);
    expect(toFiles.stderr).toMatch(/not an S3 store; name one with --store s3:\/\//);
  });
});

describe("engine locks on an S3 backend", () => {
  it("are listed per stage; dead when their process is gone here or their host's lease was taken over; only dead ones are cleared", async () => {
    const prefix = `locks${++prefixes}`;
    const backend = urlOf(server, prefix);
    const put = (key: string, lock: object) =>
      server.admin.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `${prefix}/.pulumi/locks/${key}`,
          Body: JSON.stringify(lock),
        }),
      );
    const since = "2026-12-08T00:00:00Z";
    // A pid that is not running here (the highest a Linux pid can be, plus one).
    await put("organization/slipway/local/gone.json", {
      pid: 4194305,
      hostname: hostname(),
      timestamp: since,
    });
    await put("organization/slipway/local/live.json", {
      pid: process.pid,
      hostname: hostname(),
      timestamp: since,
    });
    await put("organization/slipway/local/other.json", {
      pid: 77,
      hostname: "runner-b-host",
      timestamp: since,
    });
    await put("organization/slipway/staging/elsewhere.json", {
      pid: 1,
      hostname: "x",
      timestamp: since,
    });
    const locks = await stageEngineLocks(backend, "local");
    const byName = Object.fromEntries(locks.map((l) => [l.file.split("/").at(-1)!, l]));
    expect(Object.keys(byName).sort()).toEqual(["gone.json", "live.json", "other.json"]);
    expect(byName["gone.json"]).toMatchObject({ dead: true, pid: 4194305, since });
    expect(byName["live.json"]!.dead).toBe(false);
    // Another host's lock: alive for all this runner can tell, until its runner's lease was taken over.
    expect(byName["other.json"]!.dead).toBe(false);
    expect(byName["other.json"]!.file).toBe(
      `s3://${BUCKET}/${prefix}/.pulumi/locks/organization/slipway/local/other.json`,
    );
    const cleared = await clearDeadStageEngineLocks(backend, "local", {
      deadHosts: ["runner-b-host"],
    });
    expect(cleared.map((l) => l.file.split("/").at(-1)).sort()).toEqual([
      "gone.json",
      "other.json",
    ]);
    expect((await stageEngineLocks(backend, "local")).map((l) => l.file.split("/").at(-1))).toEqual(
      ["live.json"],
    );
    expect(await stageEngineLocks(backend, "staging")).toHaveLength(1);
  });
});

describe("store faults", () => {
  it("server down at start: a typed unreachable error naming the URL, never the credentials", async () => {
    const port = await freePort(); // nothing listens there
    const store: ReleaseStore = storeFromUrl(
      `s3://${BUCKET}/down?endpoint=http://127.0.0.1:${port}&s3ForcePathStyle=true&region=us-east-1`,
      { backendUrl: "file:///unused", projectDir: "/unused", s3: { maxAttempts: 1 } },
    );
    stores.push(store as S3Store);
    for (const attempt of [
      () => store.acquireLease("prod", runner("x")),
      () => store.log("prod").read(),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnreachableError);
      expect((err as StoreUnreachableError).url).toBe(
        `s3://${BUCKET}/down?endpoint=http://127.0.0.1:${port}&s3ForcePathStyle=true&region=us-east-1`,
      );
      expect((err as Error).message).toContain(`http://127.0.0.1:${port}`);
      expect((err as Error).message).not.toContain(CREDENTIALS.secretAccessKey);
      expect((err as Error).message).not.toContain(CREDENTIALS.accessKeyId);
    }
  });

  it("a bucket that does not exist: a typed access error naming it and the fix", async () => {
    const store = storeFromUrl(
      `s3://no-such-bucket/x?endpoint=${server.endpoint}&s3ForcePathStyle=true&region=us-east-1`,
      { backendUrl: "file:///unused", projectDir: "/unused" },
    ) as S3Store;
    stores.push(store);
    const err = await store.acquireLease("prod", runner("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreAccessError);
    expect((err as StoreAccessError).code).toBe("NoSuchBucket");
    expect((err as Error).message).toContain("Bucket no-such-bucket does not exist");
  });
});

/**
 * Issue 22: the pipeline's lease, as the commands take it (storeFor, runnerHolder, the fence
 * before each update), against the same moto S3.
 */
describe("the pipeline's lease in an S3 store", () => {
  const env = (runnerId: string) => ({ SLIPWAY_RUNNER_ID: runnerId });
  /** Two runners: each its own store object (its own S3 client), both derived from one backend. */
  const runners = () => {
    const prefix = `pipeline${++prefixes}`;
    const backendUrl = urlOf(server, prefix);
    const ctx = { backendUrl, projectDir: "/unused", logDir: "/unused" };
    const [a, b] = [storeFor(ctx, undefined, {}), storeFor(ctx, undefined, {})] as S3Store[];
    stores.push(a!, b!);
    return { a: a!, b: b!, prefix };
  };

  it("two runners contend for one stage: exactly one acquires, the other is refused naming the holder", async () => {
    const { a, b, prefix } = runners();
    // Derived from an s3:// backend: the bucket's <prefix>/.slipway/.
    expect(a.stageKey("prod", "lease.json")).toBe(`${prefix}/.slipway/prod/lease.json`);
    const results = await Promise.allSettled([
      a.acquireLease("prod", runnerHolder("release 2.0.0", env("runner-a"))),
      b.acquireLease("prod", runnerHolder("release 2.0.1", env("runner-b"))),
    ]);
    const won = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const holder = won[0]!.holder;
    expect(lost[0]).toBeInstanceOf(PipelineBusyError);
    expect(lost[0]!.message).toMatch(
      new RegExp(
        `stage prod is busy: ${holder.what} by pid ${process.pid} on .* \\(runner ${holder.runnerId}\\) since ${holder.since}; its lease expires at ${holder.expiresAt} \\(in \\d+ s\\)`,
      ),
    );
    // What `status` shows: the live holder, from either runner's view of the store.
    const seen = await stageLeaseOf(b, "prod");
    expect(seen).toMatchObject({ live: true, holder: { runnerId: holder.runnerId } });
    await won[0]!.release();
    expect(await stageLeaseOf(a, "prod")).toBeUndefined();
  });

  it("a runner paused past its TTL is taken over; its fence then throws LeaseLostError and its update never runs", async () => {
    const { a, b } = runners();
    // No heartbeat: a process stopped (SIGSTOP, a frozen VM) renews nothing.
    const paused = await a.acquireLease("prod", runnerHolder("release 2.0.0", env("runner-a")), {
      ttlMs: 600,
    });
    await expect(
      b.acquireLease("prod", runnerHolder("release --resume", env("runner-b"))),
    ).rejects.toThrow(PipelineBusyError);
    await sleep(800);
    const next = await b.acquireLease("prod", runnerHolder("release --resume", env("runner-b")));
    expect(next.generation).toBe(paused.generation + 1);
    // Runner A wakes up and goes on with its next update.
    const dir = mkdtempSync(join(tmpdir(), "slipway-fenced-"));
    const log = new FileStore(dir).log("prod");
    const ups: string[] = [];
    const written: StageState[] = [];
    const updater: StageUpdater = {
      stack: {
        stage: "prod",
        outputs: async () => undefined,
        testerHeader: async () => undefined,
        writeState: (s) => written.push(s),
        up: async (message) => {
          ups.push(message);
          return { changes: { update: 1 }, durationMs: 1 };
        },
      },
      log,
      report: () => {},
      releaseId: "r-paused",
      routing: { kind: "HTTPRoute", id: "checkout-prod/checkout" },
      fence: () => paused.renew(),
    };
    const state: StageState = {
      stable: "blue",
      canaryWeight: 10,
      slots: {
        blue: { image: `registry.local/checkout@sha256:${"a".repeat(64)}`, version: "1.0.0" },
        green: { image: `registry.local/checkout@sha256:${"b".repeat(64)}`, version: "2.0.0" },
      },
    };
    const err = await applyUpdate(
      updater,
      state,
      { ...state, canaryWeight: 50 },
      { kind: "setWeight", weight: 50, position: 2 },
      "step 2: weight 50",
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect((err as LeaseLostError).current?.runnerId).toBe("runner-b");
    expect((err as Error).message).toMatch(
      /lost the lease of stage prod \(generation 1, s3:\/\/.*\/\.slipway\/prod\/lease\.json\): now held by release --resume .*\(runner runner-b\), generation 2/,
    );
    expect(ups).toEqual([]);
    expect(written).toEqual([]);
    expect((await log.read()).records).toEqual([]);
    // Its release() in a finally leaves the new holder's lease alone.
    await paused.release();
    expect((await b.readLease("prod"))?.holder?.runnerId).toBe("runner-b");
    await next.renew();
    await next.release();
  });

  it("release --store s3://…: a takeover mid-release ends it leaseLost (exit 7), with no further update", async () => {
    const prefix = `release${++prefixes}`;
    const store = urlOf(server, prefix);
    // No analysis before the second step: the fence before it is what finds the takeover.
    const { dir, logDir } = localProject([
      { setWeight: 10 },
      { pause: { duration: "5s" } },
      { setWeight: 50 },
    ]);
    const stack = await RenderedStack.deployed(dir, "local");
    // The project's own folder: Pulumi.yaml names it "slipway".
    const key = `${prefix}/.slipway/slipway/local/lease.json`;
    let clock = Date.now();
    let tookOver = false;
    const report = await release({
      stage: "local",
      projectDir: dir,
      backendUrl: `file://${join(dir, "state")}`,
      logDir,
      store,
      image: `registry.local/checkout@sha256:${"c".repeat(64)}`,
      version: "2.0.0",
      openStack: async () => stack,
      weightsReadBack: stack.readBack,
      now: () => clock,
      sleep: async (ms) => {
        if (!tookOver) {
          // In the first pause, another runner holds the stage: as one that took over this
          // runner's expired lease would, it wrote the next generation over the lease object.
          tookOver = true;
          const mine = JSON.parse(
            await (
              await server.admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
            ).Body!.transformToString(),
          );
          expect(mine.runnerId).toBeDefined();
          await server.admin.send(
            new PutObjectCommand({
              Bucket: BUCKET,
              Key: key,
              Body: JSON.stringify({
                pid: 4242,
                host: "runner-b-host",
                runnerId: "runner-b",
                what: "release --resume",
                since: new Date().toISOString(),
                generation: mine.generation + 1,
                expiresAt: new Date(Date.now() + 60_000).toISOString(),
              }),
            }),
          );
        }
        clock += ms;
      },
    });
    expect(tookOver).toBe(true);
    expect(report.outcome, report.reason).toBe("leaseLost");
    expect(report.exitCode).toBe(7);
    expect(report.reason).toMatch(
      /now held by release --resume by pid 4242 on runner-b-host \(runner runner-b\)/,
    );
    // The deploy and the first step landed; nothing after the takeover did.
    expect(stack.updates).toHaveLength(2);
    // The release's log is the store's: one object per record, in the bucket.
    const after = storeFromUrl(store, { backendUrl: "file:///unused", projectDir: dir });
    stores.push(after as S3Store);
    const records = await verifiedRecords(after.log("local"));
    expect(records[0]!.event).toBe("release.started");
    expect(records.map((r) => r.event)).not.toContain("release.interrupted");
    expect(records.filter((r) => r.event === "update.started")).toHaveLength(2);
    expect(existsSync(join(logDir, "local.jsonl"))).toBe(false);
    expect((await after.readLease("local"))?.holder?.runnerId).toBe("runner-b");
  });
});
