import { relative } from "node:path";
import type { RehearsalResult } from "./rehearse";

/** The closing table of a rehearsal: per release, steps, verdicts, duration and outcome against what was expected. */
export function formatSummary(result: RehearsalResult, cwd = process.cwd()): string {
  const lines: string[] = [];
  lines.push("", "Rehearsal summary");
  const rows = result.releases.map((r) => {
    const f = r.facts;
    const outcome = r.result.outcome === "rolledBack" ? "rolled back" : r.result.outcome;
    const expected = r.expected === "rolledBack" ? "rolled back" : "promoted";
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
    if (r.reportFile)
      lines.push(
        `  report ${r.runtime} ${r.version}: ${relative(cwd, r.reportFile)} (chart: ${relative(cwd, r.chartFile!)})`,
      );
    if (r.result.outcome !== r.expected && r.result.reason)
      lines.push(`  ${r.runtime} ${r.version}: ${r.result.reason}`);
  }
  if (result.error) lines.push(`  error: ${result.error}`);
  lines.push(
    `  total ${(result.durationMs / 1000).toFixed(0)} s; ${result.ok ? "OK: the good release was promoted and the bad one rolled back" : "NOT OK: see above"}`,
  );
  return lines.join("\n");
}
