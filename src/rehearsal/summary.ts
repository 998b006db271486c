import { relative } from "node:path";
import { OUTCOMES } from "../domain";
import type { RehearsalResult } from "./result";

/** The closing table of a rehearsal: per release, steps, verdicts, duration and outcome against what was expected. */
export function formatSummary(result: RehearsalResult, cwd = process.cwd()): string {
  const lines: string[] = [];
  lines.push("", "Rehearsal summary");
  const rows = result.releases.map((r) => {
    const f = r.facts;
    const outcome = OUTCOMES[r.result.outcome].word;
    const expected = OUTCOMES[r.expected].word;
    return {
      release: `${r.runtime} ${r.version}`,
      id: r.result.releaseId ?? "–",
      steps: f ? `${f.stepsDone}/${f.plan.length}` : "–",
      verdicts: f?.analyses.map((a) => a.verdict).join(", ") || "–",
      updates: f ? String(f.updates.length) : "–",
      duration: f ? `${(f.durationMs / 1000).toFixed(1)} s` : "–",
      outcome: `${outcome}${r.result.outcome === r.expected ? " ✓" : ` ✗ (expected ${expected})`}`,
    };
  });
  const head = {
    release: "release",
    id: "id",
    steps: "steps",
    verdicts: "analyses",
    updates: "updates",
    duration: "duration",
    outcome: "outcome",
  };
  const cols = Object.keys(head) as (keyof typeof head)[];
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => r[c].length))]),
  ) as Record<keyof typeof head, number>;
  const fmt = (r: typeof head) => "  " + cols.map((c) => r[c].padEnd(width[c])).join("  ");
  lines.push(fmt(head));
  for (const r of rows) lines.push(fmt(r));
  for (const r of result.releases) {
    const split = (r.steps ?? [])
      .filter((s) => s.candidateShare !== undefined && s.requests.total > 0)
      .map(
        (s) =>
          `${s.candidateWeight}% → ${s.candidateShare!.toFixed(1)}% of ${s.requests.total}${s.verified ? "" : " (drifted)"}`,
      );
    if (split.length)
      lines.push(
        `  split ${r.runtime} ${r.version} (candidate weight held → share the services served): ${split.join(", ")}`,
      );
  }
  for (const r of result.releases) {
    const checks = (r.acceptance ?? []).map(
      (c) =>
        `${c.ok ? "passed" : "failed"} (${c.answered?.slot ?? "-"} answered ${c.answered?.version ?? "-"})`,
    );
    if (checks.length || r.notifications?.length)
      lines.push(
        `  hooks ${r.runtime} ${r.version}: acceptance through the tester header ${checks.join(", ") || "not called"}; ${r.notifications?.length ?? 0} notifications received`,
      );
  }
  for (const r of result.releases) {
    if (r.reportFile)
      lines.push(
        `  report ${r.runtime} ${r.version}: ${relative(cwd, r.reportFile)} (chart: ${relative(cwd, r.chartFile!)})`,
      );
    if (r.result.outcome !== r.expected && r.result.reason)
      lines.push(`  ${r.runtime} ${r.version}: ${r.result.reason}`);
  }
  if (result.error) lines.push(`  error: ${result.error}`);
  lines.push(
    `  mode: ${result.mode === "cluster" ? `the local cluster, traffic through its Gateway ${result.gatewayUrl ?? ""}`.trim() : "render (no cluster)"}${result.summaryFile ? `; ${relative(cwd, result.summaryFile)}` : ""}`,
  );
  lines.push(
    `  total ${(result.durationMs / 1000).toFixed(0)} s; ${result.ok ? "OK: the good release was promoted and the bad one rolled back" : "NOT OK: see above"}`,
  );
  return lines.join("\n");
}

/** `.slipway/rehearsal/summary.json`: what a machine reads of a rehearsal. */
export interface RehearsalSummaryJson {
  schemaVersion: 1;
  ok: boolean;
  /** `cluster`: the live local cluster, traffic through its Gateway; `render`: rendered manifests. */
  mode: RehearsalResult["mode"];
  gatewayUrl?: string;
  durationMs: number;
  error?: string;
  releases: {
    runtime: string;
    version: string;
    releaseId?: string;
    expected: "promoted" | "rolledBack";
    outcome: string;
    ok: boolean;
    reason?: string;
    candidate?: string;
    /** The afterDeploy acceptance hook's checks: what answered the tester header. */
    acceptance: { slot: string; version: string; status: number; ok: boolean }[];
    /** Summaries of the release events the notification sink received, in order. */
    notifications: string[];
    steps: {
      /** The weights the stack held, read back from the route. */
      weights: { blue: number; green: number };
      candidateWeight: number;
      verified: boolean;
      /** Candidate share of the requests the services served, in percent. */
      observedCandidateShare: number | null;
      requests: { candidate: number; stable: number; total: number };
      errors: { candidate: number; stable: number };
      startedAt: string;
      durationMs: number;
    }[];
  }[];
}

export function summaryJson(result: RehearsalResult): RehearsalSummaryJson {
  return {
    schemaVersion: 1,
    ok: result.ok,
    mode: result.mode,
    ...(result.gatewayUrl ? { gatewayUrl: result.gatewayUrl } : {}),
    durationMs: result.durationMs,
    ...(result.error ? { error: result.error } : {}),
    releases: result.releases.map((r) => ({
      runtime: r.runtime,
      version: r.version,
      ...(r.result.releaseId ? { releaseId: r.result.releaseId } : {}),
      expected: r.expected,
      outcome: r.result.outcome,
      ok: r.result.outcome === r.expected,
      ...(r.result.reason ? { reason: r.result.reason } : {}),
      ...(r.facts ? { candidate: r.facts.candidate } : {}),
      acceptance: (r.acceptance ?? []).map((c) => ({
        slot: c.slot,
        version: c.version,
        status: c.status,
        ok: c.ok,
      })),
      notifications: r.notifications ?? [],
      steps: (r.steps ?? []).map((s) => ({
        weights: s.weights,
        candidateWeight: s.candidateWeight,
        verified: s.verified,
        observedCandidateShare:
          s.candidateShare === undefined ? null : Math.round(s.candidateShare * 100) / 100,
        requests: s.requests,
        errors: { candidate: s.candidateErrors, stable: s.stableErrors },
        startedAt: new Date(s.startedAt).toISOString(),
        durationMs: s.endedAt - s.startedAt,
      })),
    })),
  };
}
