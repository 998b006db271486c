import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StageLease } from "../../../src/pipeline/context";
import { PipelineBusyError } from "../../../src/pipeline/errors";
import { LogBrokenError, ReleaseLog } from "../../../src/pipeline/log";
import { LeaseLostError } from "../../../src/store/errors";
import { FileStore } from "../../../src/store/fileStore";

const fresh = () => new FileStore(mkdtempSync(join(tmpdir(), "slipway-store-")));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const holder = (runnerId: string) => ({ what: "release 1.0.0", runnerId });

describe("FileStore lease", () => {
  it("writes today's lock file with runner id, generation and expiry; a second runner is told who holds it", async () => {
    const store = fresh();
    const lease = await store.acquireLease("prod", holder("r-a"), { ttlMs: 60_000 });
    const onDisk = JSON.parse(readFileSync(join(store.dir, "prod.lock"), "utf8"));
    expect(onDisk).toMatchObject({
      pid: process.pid,
      host: hostname(),
      runnerId: "r-a",
      generation: 1,
    });
    expect(onDisk.expiresAt).toBe(lease.expiresAt.toISOString());
    const err = await store.acquireLease("prod", holder("r-b")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineBusyError);
    expect((err as Error).message).toMatch(
      /stage prod is busy: release 1\.0\.0 by pid \d+ on .* \(runner r-a\) since .*; its lease expires at .* \(in 60 s\) \(lease .*prod\.lock\)/,
    );
    expect(await store.readLease("prod")).toMatchObject({
      live: true,
      holder: { runnerId: "r-a" },
    });
    await lease.release();
    expect(await store.readLease("prod")).toBeUndefined();
  });

  it("renewal extends the expiry; after a takeover it fails with LeaseLostError and release leaves the new lease", async () => {
    const store = fresh();
    const a = await store.acquireLease("prod", holder("r-a"), { ttlMs: 200 });
    const before = a.expiresAt.getTime();
    await sleep(20);
    await a.renew();
    expect(a.expiresAt.getTime()).toBeGreaterThan(before);
    await sleep(250);
    expect((await store.readLease("prod"))?.live).toBe(false);
    const b = await store.acquireLease("prod", holder("r-b"), { ttlMs: 60_000 });
    expect(b.generation).toBe(2);
    const lost = await a.renew().catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect((lost as LeaseLostError).current?.runnerId).toBe("r-b");
    await a.release();
    expect((await store.readLease("prod"))?.holder?.runnerId).toBe("r-b");
  });

  it("the heartbeat keeps a short lease alive, and reports the loss when another runner took it", async () => {
    const store = fresh();
    const lease = await store.acquireLease("prod", holder("r-a"), { ttlMs: 300 });
    const lost: Error[] = [];
    const beat = lease.startHeartbeat({ intervalMs: 60, onLost: (e) => lost.push(e) });
    await sleep(700);
    expect(lost).toEqual([]);
    await expect(store.acquireLease("prod", holder("r-b"))).rejects.toThrow(PipelineBusyError);
    // Another runner overwrites the lease (as a takeover after expiry would).
    writeFileSync(
      join(store.dir, "prod.lock"),
      JSON.stringify({ ...lease.holder, runnerId: "r-b", generation: 2 }),
    );
    await sleep(200);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(LeaseLostError);
    await beat.stop();
  });

  it("a lease from another host without an expiry (written before expiries) is held, never taken over", async () => {
    const store = fresh();
    writeFileSync(
      join(store.dir, "prod.lock"),
      JSON.stringify({
        pid: 1234,
        host: "other-runner",
        what: "release 0.9",
        since: "2026-01-01T00:00:00Z",
      }),
    );
    await expect(store.acquireLease("prod", holder("r-a"))).rejects.toThrow(
      /busy: release 0\.9 by pid 1234 on other-runner since/,
    );
    expect(await store.readLease("prod")).toMatchObject({
      live: true,
      holder: { host: "other-runner" },
    });
    // One from another host whose expiry passed is taken over.
    writeFileSync(
      join(store.dir, "prod.lock"),
      JSON.stringify({
        pid: 1234,
        host: "other-runner",
        what: "release 0.9",
        since: "2026-01-01T00:00:00Z",
        generation: 4,
        expiresAt: "2026-01-01T00:01:00Z",
      }),
    );
    expect((await store.acquireLease("prod", holder("r-a"))).generation).toBe(5);
  });

  it("today's StageLease callers (no TTL) write no expiry and keep their lease", () => {
    const store = fresh();
    const lease = StageLease.acquire(store.dir, "prod", "rollback");
    const onDisk = JSON.parse(readFileSync(join(store.dir, "prod.lock"), "utf8"));
    expect(onDisk).not.toHaveProperty("expiresAt");
    expect(onDisk).toMatchObject({ what: "rollback", generation: 1 });
    expect(() => StageLease.acquire(store.dir, "prod", "x")).toThrow(PipelineBusyError);
    lease.release();
  });
});

describe("FileStore log", () => {
  it("is today's jsonl: what ReleaseLog wrote reads back, and appends chain onto it", async () => {
    const store = fresh();
    ReleaseLog.forStage(store.dir, "prod").append({
      stage: "prod",
      releaseId: "r-1",
      event: "release.started",
    });
    const log = store.log("prod");
    const heard: string[] = [];
    log.onAppend((r) => heard.push(r.event));
    expect(
      (await log.append({ stage: "prod", releaseId: "r-1", event: "release.completed" })).seq,
    ).toBe(2);
    expect(heard).toEqual(["release.completed"]);
    const reading = await log.read();
    expect(reading.problems).toEqual([]);
    expect(reading.records.map((r) => r.event)).toEqual(["release.started", "release.completed"]);
    expect(ReleaseLog.forStage(store.dir, "prod").readAll()).toHaveLength(2);
    expect(log.where).toBe(join(store.dir, "prod.jsonl"));
  });

  it("refuses to append to a broken chain, as today", async () => {
    const store = fresh();
    const log = store.log("prod");
    await log.append({ stage: "prod", releaseId: "r-1", event: "release.started" });
    await log.append({ stage: "prod", releaseId: "r-1", event: "release.completed" });
    const path = join(store.dir, "prod.jsonl");
    writeFileSync(path, readFileSync(path, "utf8").replace("release.started", "release.refused"));
    expect((await log.read()).problems).toEqual([
      { line: 2, problem: expect.stringMatching(/does not chain to the record on line 1/) },
    ]);
    await expect(
      log.append({ stage: "prod", releaseId: "r-2", event: "release.started" }),
    ).rejects.toThrow(LogBrokenError);
  });

  it("refuses stage names that are not stage names", async () => {
    const store = fresh();
    expect(() => store.log("../etc")).toThrow(/not a stage name/);
    await expect(store.acquireLease("A B", holder("r"))).rejects.toThrow(/not a stage name/);
  });
});
