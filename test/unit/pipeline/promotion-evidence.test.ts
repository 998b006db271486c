import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StageOutputs } from "../../../src/contract/outputs";
import { ReleaseLog, type LogRecord } from "../../../src/pipeline/log";
import { promote } from "../../../src/pipeline/operations";
import { passedReleaseOf } from "../../../src/pipeline/promotionEvidence";
import { ROOT } from "../support/harness";

/** Observation 3 of issue 12: two hand-written JSONL lines must not promote anything. */

const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

describe("promote --from staging --to prod with a forged source log", () => {
  it("refuses hand-written lines before any gate or stack is consulted", async () => {
    const logDir = mkdtempSync(join(tmpdir(), "slipway-forged-"));
    const at = "2026-01-01T00:00:00.000Z";
    const line = (seq: number, event: string, extra: object = {}) =>
      JSON.stringify({
        seq,
        at,
        stage: "staging",
        releaseId: "r-forged",
        event,
        actor: "x",
        ...extra,
      });
    writeFileSync(
      join(logDir, "staging.jsonl"),
      [
        line(1, "release.started", {
          artifact: { image: image("6"), digest: "sha256:66", version: "6.6.6" },
        }),
        line(2, "release.completed"),
      ].join("\n") + "\n",
    );
    writeFileSync(
      join(logDir, "prod.jsonl"),
      JSON.stringify({
        seq: 1,
        at,
        stage: "prod",
        releaseId: "r-forged",
        event: "approval.recorded",
        actor: "x",
      }) + "\n",
    );
    const result = await promote({
      from: "staging",
      to: "prod",
      projectDir: ROOT,
      logDir,
      backendUrl: "file:///nonexistent-backend-never-used",
    });
    expect(result.outcome).toBe("refused");
    expect(result.exitCode).toBe(6);
    expect(result.reason).toMatch(
      /staging\.jsonl does not verify: line 1: not a release record \(prev/,
    );
  });
});

describe("the source stack must agree with its log", () => {
  const rid = "r-20260101-000000-ab12";
  const promotedAt = "2026-01-01T01:00:00.000Z";
  const good = image("a");
  const outputs = (over: Partial<NonNullable<StageOutputs["release"]>> = {}, stableImage = good) =>
    ({
      stableSlot: "green",
      releases: {
        blue: { image: image("b"), version: "1.0.0", replicas: 0 },
        green: { image: stableImage, version: "2.0.0", replicas: 2 },
      },
      release: {
        id: rid,
        phase: "completed",
        candidateSlot: "green",
        artifact: { image: good, version: "2.0.0" },
        previous: { slot: "blue", image: image("b"), version: "1.0.0" },
        position: 2,
        steps: 2,
        startedAt: "2026-01-01T00:00:00.000Z",
        updatedAt: promotedAt,
        promotedAt,
        ...over,
      },
    }) as unknown as StageOutputs;

  /** A well-chained log, as someone with write access to the log directory could make. */
  function chained(artifactImage = good, digest = `sha256:${"a".repeat(64)}`): LogRecord[] {
    const log = ReleaseLog.forStage(mkdtempSync(join(tmpdir(), "slipway-chained-")), "staging");
    const base = { stage: "staging", releaseId: rid } as const;
    log.append({
      ...base,
      event: "release.started",
      artifact: { image: artifactImage, digest, version: "2.0.0" },
    });
    log.append({
      ...base,
      event: "update.succeeded",
      at: "2026-01-01T01:00:09.000Z",
      figures: { transition: "promote" },
    });
    log.append({ ...base, event: "release.completed" });
    return log.readAll();
  }
  const check = (records: LogRecord[], out: StageOutputs | undefined, img?: string) =>
    passedReleaseOf({ from: "staging", to: "prod", records, outputs: out, image: img });

  it("accepts the release the stack holds as promoted, with the stack's promotion time", () => {
    expect(check(chained(), outputs())).toEqual({
      ok: true,
      passed: { releaseId: rid, artifact: expect.objectContaining({ image: good }), promotedAt },
    });
  });

  it.each([
    ["never deployed", () => undefined, /never been deployed/],
    ["rolled back", () => outputs({ phase: "rolledBack" }), /is rolledBack, not promoted/],
    ["another image on stable", () => outputs({}, image("c")), /stable slot green runs .*ccc/],
    [
      "another release id",
      () => outputs({ id: "r-20260101-000000-ffff" }),
      /no start record for release r-20260101-000000-ffff/,
    ],
    ["no promotion time", () => outputs({ promotedAt: undefined }), /no promotion time/],
  ])("refuses when the stack says %s", (_what, out, pattern) => {
    const verdict = check(chained(), out());
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reason).toMatch(pattern);
  });

  it("refuses a log whose digest is not the stack's (sha256:66)", () => {
    const verdict = check(chained(good, "sha256:66"), outputs());
    expect(verdict).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/\(sha256:66\); its stack says/),
    });
  });

  it("refuses an artifact that is not the source's stable release", () => {
    expect(check(chained(), outputs(), image("d"))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/is not the stable release of staging/),
    });
  });
});
