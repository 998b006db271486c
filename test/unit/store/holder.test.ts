import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { LEASE_TTL_MS } from "../../../src/defaults";
import { leaseTtlMs } from "../../../src/store/ttl";
import { StoreConfigError } from "../../../src/store/errors";
import { leaseContent, runnerHolder } from "../../../src/store/store";

describe("runnerHolder", () => {
  it("one runner id per process unless SLIPWAY_RUNNER_ID sets it", () => {
    const a = runnerHolder("release 1", {});
    expect(a.runnerId).toMatch(new RegExp(`^${hostname()}-${process.pid}-[0-9a-f]{8}$`));
    expect(runnerHolder("release 2", {}).runnerId).toBe(a.runnerId);
    expect(runnerHolder("x", { SLIPWAY_RUNNER_ID: "gha-1234-1" }).runnerId).toBe("gha-1234-1");
    expect(() => runnerHolder("x", { SLIPWAY_RUNNER_ID: "two words" })).toThrow(
      /SLIPWAY_RUNNER_ID="two words": not a runner id/,
    );
  });

  it("names the CI job: GitHub Actions' run, GitLab's job, else none", () => {
    expect(
      runnerHolder("x", {
        GITHUB_SERVER_URL: "https://github.com",
        GITHUB_REPOSITORY: "acme/shop",
        GITHUB_RUN_ID: "42",
      }).ciJobUrl,
    ).toBe("https://github.com/acme/shop/actions/runs/42");
    expect(
      runnerHolder("x", { CI_JOB_URL: "https://gitlab.com/acme/shop/-/jobs/7" }).ciJobUrl,
    ).toBe("https://gitlab.com/acme/shop/-/jobs/7");
    expect(runnerHolder("x", {})).not.toHaveProperty("ciJobUrl");
  });

  it("the lease content: this process, the holder, generation and expiry", () => {
    const at = Date.parse("2026-01-01T00:00:00.000Z");
    expect(leaseContent({ what: "rollback", runnerId: "r1" }, 3, 60_000, at)).toEqual({
      pid: process.pid,
      host: hostname(),
      runnerId: "r1",
      what: "rollback",
      since: "2026-01-01T00:00:00.000Z",
      generation: 3,
      expiresAt: "2026-01-01T00:01:00.000Z",
    });
  });
});

describe("leaseTtlMs", () => {
  it("defaults to 60 s; SLIPWAY_LEASE_TTL_SECONDS sets it within bounds", () => {
    expect(LEASE_TTL_MS).toBe(60_000);
    expect(leaseTtlMs({})).toBe(60_000);
    expect(leaseTtlMs({ SLIPWAY_LEASE_TTL_SECONDS: "120" })).toBe(120_000);
    expect(leaseTtlMs({ SLIPWAY_LEASE_TTL_SECONDS: "7.5" })).toBe(7_500);
    for (const bad of ["0", "4", "3601", "ten", "-60"])
      expect(() => leaseTtlMs({ SLIPWAY_LEASE_TTL_SECONDS: bad })).toThrow(StoreConfigError);
    expect(() => leaseTtlMs({ SLIPWAY_LEASE_TTL_SECONDS: "ten" })).toThrow(
      /SLIPWAY_LEASE_TTL_SECONDS="ten": not a lease TTL; allowed: a number of seconds from 5 to 3600/,
    );
  });
});
