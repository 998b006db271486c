import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeLease } from "../../../src/cli/commands/release";
import type { ReleaseRecord } from "../../../src/config/schema";
import { releaseCondition } from "../../../src/pipeline/condition";
import { stageLeaseOf } from "../../../src/pipeline/operations";
import { StoreUnreachableError } from "../../../src/store/errors";
import { FileStore } from "../../../src/store/fileStore";
import type { ReleaseStore } from "../../../src/store/store";

/**
 * Issue 22, point 5: `status` names the live holder from the store (host, runner id, since,
 * expiry) and never calls a release interrupted while that holder's lease is live.
 */
const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const record: ReleaseRecord = {
  id: "r-status",
  phase: "canary",
  candidateSlot: "green",
  artifact: { image: image("b"), version: "2.0.0" },
  previous: { slot: "blue", image: image("a"), version: "1.0.0" },
  position: 1,
  steps: 2,
  startedAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
};
const conditionWith = (lease: Awaited<ReturnType<typeof stageLeaseOf>>) =>
  releaseCondition({
    stage: "prod",
    release: record,
    records: [],
    plan: [
      { kind: "setWeight", weight: 10 },
      { kind: "setWeight", weight: 50 },
    ],
    leaseHeldByLiveProcess: lease?.live ?? false,
    deadEngineLocks: 0,
  }).condition;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the lease status reads from the store", () => {
  it("a live lease: its holder named, the release running (never interrupted)", async () => {
    const store = new FileStore(mkdtempSync(join(tmpdir(), "slipway-status-")));
    const lease = await store.acquireLease("prod", {
      what: "release 2.0.0",
      runnerId: "ci-runner-7",
      ciJobUrl: "https://github.com/acme/shop/actions/runs/42",
    });
    try {
      const seen = await stageLeaseOf(store, "prod");
      expect(seen).toMatchObject({ live: true, holder: { runnerId: "ci-runner-7" } });
      expect(conditionWith(seen)).toBe("running");
      const line = describeLease(seen!);
      expect(line).toContain(`held by release 2.0.0 on ${lease.holder.host}`);
      expect(line).toContain(`pid ${process.pid}, runner ci-runner-7`);
      expect(line).toContain("https://github.com/acme/shop/actions/runs/42");
      expect(line).toContain(`since ${lease.holder.since}`);
      expect(line).toContain(`expires ${lease.holder.expiresAt}`);
    } finally {
      await lease.release();
    }
    // Released: no lease, and a release left mid-canary is interrupted.
    expect(await stageLeaseOf(store, "prod")).toBeUndefined();
    expect(conditionWith(undefined)).toBe("interrupted");
  });

  it("an expired lease (a runner that died on another host) no longer counts: interrupted, and said so", async () => {
    const store = new FileStore(mkdtempSync(join(tmpdir(), "slipway-status-")));
    const lease = await store.acquireLease(
      "prod",
      { what: "release 2.0.0", runnerId: "gone" },
      { ttlMs: 50 },
    );
    await sleep(120);
    const seen = await stageLeaseOf(store, "prod");
    expect(seen).toMatchObject({ live: false, holder: { runnerId: "gone" } });
    expect(conditionWith(seen)).toBe("interrupted");
    expect(describeLease(seen!)).toMatch(/EXPIRED at .*: no longer counts/);
    await lease.release();
  });

  it("a store that does not answer: the lease counts as held, so the release is not called interrupted", async () => {
    const down: ReleaseStore = {
      describe: () => "s3://releases/shop",
      acquireLease: () => Promise.reject(new Error("unused")),
      readLease: () =>
        Promise.reject(
          new StoreUnreachableError("s3://releases/shop", "GetObject", "ECONNREFUSED"),
        ),
      log: () => {
        throw new Error("unused");
      },
      close: () => {},
    };
    const seen = await stageLeaseOf(down, "prod");
    expect(seen).toMatchObject({ live: true, store: "s3://releases/shop" });
    expect(seen?.unreadable).toMatch(/unreachable \(GetObject: ECONNREFUSED\)/);
    expect(conditionWith(seen)).toBe("running");
    expect(describeLease(seen!)).toMatch(
      /could not be read from s3:\/\/releases\/shop .*counted as held/,
    );
  });
});
