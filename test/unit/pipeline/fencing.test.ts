import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { canaryState } from "../support/canary";
import { guardLease, LEASE_LOST } from "../../../src/pipeline/leaseGuard";
import { verifiedRecords } from "../../../src/store/store";
import { InterruptedError, type StageState, type Transition } from "../../../src/pipeline/machine";
import type { UpdatableStack } from "../../../src/pipeline/stack";
import { stackFilePath, writeStageState } from "../../../src/pipeline/stackFile";
import { applyUpdate } from "../../../src/pipeline/update";
import { LeaseLostError, StoreUnreachableError } from "../../../src/store/errors";
import { FileStore } from "../../../src/store/fileStore";
import { ROOT } from "../support/harness";

/**
 * Issue 22, fencing: before each stack update the runner proves it still holds the stage's
 * lease; a runner that lost it lands no update and appends nothing.
 */
const routing = { kind: "HTTPRoute" as const, id: "checkout-local/checkout" };

const state = (canaryWeight = 10): StageState =>
  canaryState({ id: "r-fence", canaryWeight, greenReplicas: 2 });

/** The fake stack of config-guard.test.ts: a project copy whose `up` only counts. */
async function setup(fence?: () => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), "slipway-fence-"));
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  copyFileSync(join(ROOT, "Pulumi.local.yaml"), join(dir, "Pulumi.local.yaml"));
  const log = new FileStore(dir).log("local");
  await log.append({ stage: "local", releaseId: "r-fence", event: "release.started" });
  const order: string[] = [];
  const stack: UpdatableStack = {
    stage: "local",
    outputs: async () => undefined,
    testerHeader: async () => undefined,
    writeState: (s) => {
      order.push("writeState");
      writeStageState(stackFilePath(dir, "local"), s);
    },
    up: async (message) => {
      order.push(`up ${message}`);
      return { changes: { update: 1 }, durationMs: 1 };
    },
  };
  const updater = {
    stack,
    log,
    report: () => {},
    releaseId: "r-fence",
    routing,
    ...(fence
      ? {
          fence: async () => {
            order.push("fence");
            await fence();
          },
        }
      : {}),
  };
  return { dir, log, order, updater };
}

const setWeight: Transition = { kind: "setWeight", weight: 50, position: 2 };

describe("applyUpdate with a fence", () => {
  it("proves the lease before anything of the update is written", async () => {
    const { order, updater, log } = await setup(async () => {});
    const s = state();
    await applyUpdate(updater, s, { ...s, canaryWeight: 50 }, setWeight, "step 2");
    expect(order).toEqual(["fence", "writeState", "up step 2"]);
    expect((await verifiedRecords(log)).map((r) => r.event)).toEqual([
      "release.started",
      "update.started",
      "update.succeeded",
    ]);
  });

  it.each([
    [
      "LeaseLostError (taken over)",
      () =>
        new LeaseLostError("local", "/tmp/local.lock", 1, {
          pid: 4242,
          host: "runner-b-host",
          what: "release --resume",
          since: new Date().toISOString(),
          runnerId: "runner-b",
          generation: 2,
        }),
    ],
    [
      "StoreUnreachableError (cannot prove it)",
      () => new StoreUnreachableError("s3://releases/x", "PutObject", "ECONNREFUSED"),
    ],
  ])(
    "a fence that throws %s: no update runs, the stack file and the log are untouched",
    async (_, error) => {
      const thrown = error();
      const { dir, log, order, updater } = await setup(async () => {
        throw thrown;
      });
      const file = stackFilePath(dir, "local");
      const fileBefore = readFileSync(file, "utf8");
      const logBefore = readFileSync(log.where, "utf8");
      const s = state();
      const err = await applyUpdate(
        updater,
        s,
        { ...s, canaryWeight: 50 },
        setWeight,
        "step 2",
      ).catch((e: unknown) => e);
      expect(err).toBe(thrown);
      expect(order).toEqual(["fence"]);
      expect(readFileSync(file, "utf8")).toBe(fileBefore);
      expect(readFileSync(log.where, "utf8")).toBe(logBefore);
      // A rollback is fenced the same way: a runner that lost the stage does not roll it back either.
      const rolled = await applyUpdate(
        updater,
        s,
        state(0),
        { kind: "rollback", reason: "r" },
        "rb",
      ).catch((e: unknown) => e);
      expect(rolled).toBe(thrown);
      expect(order).toEqual(["fence", "fence"]);
      expect(readFileSync(log.where, "utf8")).toBe(logBefore);
    },
  );
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a runner that took the stage over writes into the lease file (after A's lease expired). */
function takeOver(dir: string, stage: string, generation: number) {
  writeFileSync(
    join(dir, `${stage}.lock`),
    JSON.stringify({
      pid: 4242,
      host: "runner-b-host",
      runnerId: "runner-b",
      what: "release --resume",
      since: new Date().toISOString(),
      generation,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    }),
  );
}

describe("guardLease on the file store", () => {
  it("a takeover is found by the next fence: LeaseLostError naming the new holder, the release signal aborted, the log closed to this runner", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-fence-"));
    const store = new FileStore(dir);
    const lease = await store.acquireLease("local", {
      what: "release 2.0.0",
      runnerId: "runner-a",
    });
    const log = new FileStore(dir).log("local");
    const notes: string[] = [];
    const guard = guardLease(lease, { logs: [log], note: (m) => notes.push(m) });
    try {
      await guard.fence(); // still ours
      await log.append({ stage: "local", releaseId: "r-1", event: "release.started" });
      takeOver(dir, "local", lease.generation + 1);
      const err = await guard.fence().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LeaseLostError);
      expect((err as LeaseLostError).current?.runnerId).toBe("runner-b");
      expect((err as Error).message).toMatch(
        /lost the lease of stage local \(generation 1, .*local\.lock\): now held by release --resume by pid 4242 on runner-b-host \(runner runner-b\), generation 2/,
      );
      expect(guard.lost()).toBe(err);
      expect(guard.signal.aborted).toBe(true);
      expect(guard.signal.reason).toBe(LEASE_LOST);
      expect(notes.join("\n")).toMatch(
        /lease lost on stage local .*stopping at the next safe point/,
      );
      const before = readFileSync(log.where, "utf8");
      await expect(
        log.append({ stage: "local", releaseId: "r-1", event: "release.interrupted" }),
      ).rejects.toThrow(InterruptedError);
      expect(readFileSync(log.where, "utf8")).toBe(before);
    } finally {
      await guard.end();
    }
    // Giving up a lease another runner took over leaves theirs in place.
    expect((await store.readLease("local"))?.holder?.runnerId).toBe("runner-b");
  });

  it("a runner that wakes past its lease's expiry proves it still holds it before it appends: taken over, nothing is appended", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-fence-"));
    const store = new FileStore(dir);
    const lease = await store.acquireLease(
      "local",
      { what: "release 2.0.0", runnerId: "runner-a" },
      { ttlMs: 5_000 },
    );
    const log = store.log("local");
    // A stopped process: its heartbeat never beats, its lease runs out.
    const stopped = Object.create(lease) as typeof lease;
    stopped.startHeartbeat = () => ({ stop: async () => {} });
    const guard = guardLease(stopped, { logs: [log] });
    try {
      await log.append({ stage: "local", releaseId: "r-1", event: "release.started" });
      const wake = Date.now() + 6_000;
      const spy = vi.spyOn(Date, "now").mockImplementation(() => wake);
      try {
        // Woken past its expiry, with nobody else on the stage: its renewal succeeds, it goes on.
        await log.append({ stage: "local", releaseId: "r-1", event: "pause.ended" });
        expect(guard.lost()).toBeUndefined();
        // Woken past its expiry again, and this time another runner took the stage meanwhile.
        spy.mockImplementation(() => wake + 6_000);
        takeOver(dir, "local", lease.generation + 1);
        await expect(
          log.append({ stage: "local", releaseId: "r-1", event: "step.completed" }),
        ).rejects.toThrow(/lease lost; nothing more is recorded by this runner: .*now held by/);
      } finally {
        spy.mockRestore();
      }
      expect(guard.lost()).toBeInstanceOf(LeaseLostError);
      expect(guard.signal.aborted).toBe(true);
      expect((await verifiedRecords(log)).map((r) => r.event)).toEqual([
        "release.started",
        "pause.ended",
      ]);
    } finally {
      await guard.end();
    }
  });

  it("the heartbeat renews the lease past its TTL, and finds a takeover on its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-fence-"));
    const store = new FileStore(dir);
    // TTL 400 ms: the heartbeat renews every 100 ms.
    const lease = await store.acquireLease(
      "local",
      { what: "release 2.0.0", runnerId: "runner-a" },
      { ttlMs: 400 },
    );
    const guard = guardLease(lease);
    try {
      await sleep(900);
      expect(guard.lost()).toBeUndefined();
      const state = await store.readLease("local");
      expect(state?.live).toBe(true);
      expect(state?.holder?.runnerId).toBe("runner-a");
      takeOver(dir, "local", lease.generation + 1);
      for (let i = 0; i < 20 && !guard.signal.aborted; i++) await sleep(50);
      expect(guard.signal.aborted).toBe(true);
      expect(guard.lost()).toBeInstanceOf(LeaseLostError);
      await expect(guard.fence()).rejects.toBeInstanceOf(LeaseLostError);
    } finally {
      await guard.end();
    }
    expect((await store.readLease("local"))?.holder?.runnerId).toBe("runner-b");
  });

  it("end() gives the lease up: the next runner takes it at once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-fence-"));
    const store = new FileStore(dir);
    const guard = guardLease(
      await store.acquireLease("local", { what: "rollback", runnerId: "runner-a" }),
    );
    await guard.end();
    expect(await store.readLease("local")).toBeUndefined();
    const next = await store.acquireLease("local", { what: "rollback", runnerId: "runner-b" });
    await next.release();
  });
});
