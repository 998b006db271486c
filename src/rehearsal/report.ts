import { mkdirSync, writeFileSync } from "node:fs";
import { hookAndNotificationLines } from "./hookSink";
import { join } from "node:path";
import { OUTCOMES, outcomeClosedBy, otherSlot, type Slot } from "../domain";
import type { LogRecord } from "../pipeline/log";
import { type ChartData, type Point, renderChart } from "./chart";
import { describeServerErrors, type LoadTally } from "./load";
import type { ObservedStep } from "./split";
import { queryRange } from "./prometheus";

/**
 * One release's report: Markdown and an SVG chart, from the release log (what
 * the pipeline did and why) and Prometheus range queries (what the slots
 * served meanwhile). Written to `<dir>/<releaseId>.md` and `.svg`.
 */

export interface ReleaseFacts {
  releaseId: string;
  version: string;
  image: string;
  previousVersion: string;
  candidate: Slot;
  stable: Slot;
  outcome: string;
  reason?: string;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  plan: string[];
  /** Plan steps that ran, 0..plan.length. */
  stepsDone: number;
  updates: {
    at: number;
    transition: string;
    message: string;
    durationMs?: number;
    changes?: Record<string, number>;
    weights?: { blue: number; green: number };
  }[];
  analyses: {
    stepIndex: number;
    step: string;
    verdict: "pass" | "fail" | "inconclusive";
    start: number;
    end: number;
    measurements: {
      at: number;
      index: number;
      verdict: string;
      windowStart: number;
      windowEnd: number;
    }[];
    reason: string;
    metrics: any[];
  }[];
}

const ms = (iso: string) => Date.parse(iso);

/** Folds a release's log records into the facts a report and a summary need. */
export function releaseFacts(records: LogRecord[]): ReleaseFacts {
  const started = records.find((r) => r.event === "release.started");
  if (!started) throw new Error("no release.started record");
  const end = [...records]
    .reverse()
    .find((r) =>
      ["release.completed", "release.rolledBack", "release.failed", "release.paused"].includes(
        r.event,
      ),
    );
  const previous = (started.figures?.previous ?? {}) as { slot: Slot; version: string };
  const plan = (started.figures?.plan ?? []) as string[];
  const updates: ReleaseFacts["updates"] = [];
  let pendingMessage = "";
  for (const r of records) {
    if (r.event === "update.started") pendingMessage = r.reason ?? "";
    if (r.event === "update.succeeded") {
      const f = (r.figures ?? {}) as {
        transition?: string;
        durationMs?: number;
        changes?: Record<string, number>;
      };
      updates.push({
        at: ms(r.at),
        transition: f.transition ?? "other",
        message: pendingMessage,
        durationMs: f.durationMs,
        changes: f.changes,
        weights: r.weights,
      });
    }
  }
  const analyses: ReleaseFacts["analyses"] = [];
  let measured: ReleaseFacts["analyses"][number]["measurements"] = [];
  let firstWindow: number | undefined;
  for (const r of records) {
    if (r.event === "analysis.measured") {
      const w = (r.figures?.window ?? {}) as { start: string; end: string };
      firstWindow ??= ms(w.start);
      measured.push({
        at: ms(r.at),
        index: Number(r.figures?.measurement ?? measured.length + 1),
        verdict: r.verdict ?? "error",
        windowStart: ms(w.start),
        windowEnd: ms(w.end),
      });
    }
    if (
      r.event === "analysis.passed" ||
      r.event === "analysis.failed" ||
      r.event === "analysis.inconclusive"
    ) {
      analyses.push({
        stepIndex: r.step?.index ?? -1,
        step: r.step?.description ?? "analysis",
        verdict: r.verdict ?? "inconclusive",
        start: firstWindow ?? ms(r.at),
        end: ms(r.at),
        measurements: measured,
        reason: r.reason ?? "",
        metrics: ((r.figures?.metrics as any[]) ?? []).map((m) => m),
      });
      measured = [];
      firstWindow = undefined;
    }
  }
  const startedAt = ms(started.at);
  const endedAt = end ? ms(end.at) : ms(records[records.length - 1]!.at);
  const setWeights = updates.filter((u) => u.transition === "setWeight").length;
  // Steps done: everything up to the last setWeight applied or analysis judged.
  const lastStep = Math.max(
    -1,
    ...records
      .filter(
        (r) =>
          r.step &&
          (r.event === "update.succeeded" ||
            r.event.startsWith("analysis.") ||
            r.event === "pause.ended"),
      )
      .map((r) => r.step!.index),
  );
  const closed = end && outcomeClosedBy(end.event);
  const outcome = closed ? OUTCOMES[closed].word : end ? "failed" : "unfinished";
  return {
    releaseId: started.releaseId,
    version: started.artifact?.version ?? "?",
    image: started.artifact?.image ?? "?",
    previousVersion: previous.version,
    stable: previous.slot,
    candidate: otherSlot(previous.slot),
    outcome,
    reason: end?.reason,
    startedAt,
    endedAt,
    durationMs: endedAt - startedAt,
    plan,
    stepsDone:
      outcome === "promoted" ? plan.length : Math.max(lastStep + 1, setWeights > 0 ? 1 : 0),
    updates,
    analyses,
  };
}

/** Per-slot series over [from, to] from Prometheus, with `t` in seconds since `origin`. */
async function slotSeries(
  url: string,
  query: string,
  from: number,
  to: number,
  origin: number,
): Promise<Record<Slot, Point[]>> {
  const out: Record<Slot, Point[]> = { blue: [], green: [] };
  for (const s of await queryRange(url, query, from, to, 1)) {
    const slot = s.metric.slot as Slot;
    if (slot !== "blue" && slot !== "green") continue;
    out[slot] = s.values.map(([t, v]) => [t - origin / 1000, Number.isFinite(v) ? v : null]);
  }
  return out;
}

export interface ReportInput {
  records: LogRecord[];
  prometheusUrl: string;
  service: string;
  runtime: string;
  dir: string;
  /** Requests the load generator sent during the release and their answers. */
  load?: LoadTally;
  /** The split the services served per stretch of weights the stack held. */
  steps?: ObservedStep[];
  /** The load went through the Gateway (the live cluster) rather than being split by the generator. */
  throughGateway?: boolean;
  /** Faults baked into the candidate's image, if any. */
  faults?: Record<string, string>;
  /** The rate window of the chart's queries, seconds; each value is plotted at its window's middle. */
  rateWindowSeconds?: number;
  /**
   * When the load generator switched weights (read from the rendered HTTPRoute). The engine
   * writes the manifest before its update ends, so these lead the log's update records by a
   * second or two; without them the chart takes the weights from the log.
   */
  weightChanges?: { at: number; weights: { blue: number; green: number } }[];
}

export interface WrittenReport {
  facts: ReleaseFacts;
  markdown: string;
  svg: string;
}

export async function writeReleaseReport(input: ReportInput): Promise<WrittenReport> {
  const facts = releaseFacts(input.records);
  const window = input.rateWindowSeconds ?? 4;
  const rw = `${window}s`;
  const sel = (extra = "") => `{service="${input.service}"${extra}}`;
  const from = facts.startedAt - 2000;
  const to = facts.endedAt + 3000;
  // Centre each trailing rate window on the time it describes.
  const origin = facts.startedAt + (window / 2) * 1000;
  const [rates, errors, p99] = await Promise.all([
    slotSeries(
      input.prometheusUrl,
      `sum by (slot) (rate(http_requests_total${sel()}[${rw}]))`,
      from,
      to,
      origin,
    ),
    slotSeries(
      input.prometheusUrl,
      `sum by (slot) (rate(http_requests_total${sel(',code=~"5.."')}[${rw}])) / sum by (slot) (rate(http_requests_total${sel()}[${rw}]))`,
      from,
      to,
      origin,
    ),
    slotSeries(
      input.prometheusUrl,
      `histogram_quantile(0.99, sum by (slot, le) (rate(http_request_duration_seconds_bucket${sel()}[${rw}])))`,
      from,
      to,
      origin,
    ),
  ]);
  const share = shareOf(rates);
  const t0 = facts.startedAt;
  const weights: [number, number][] = [];
  if (input.weightChanges?.length) {
    const before = input.weightChanges.filter((c) => c.at <= from).at(-1);
    weights.push([
      (from - t0) / 1000,
      before ? before.weights.blue : facts.stable === "blue" ? 100 : 0,
    ]);
    for (const c of input.weightChanges)
      if (c.at > from && c.at <= to) weights.push([(c.at - t0) / 1000, c.weights.blue]);
  } else {
    weights.push([(from - t0) / 1000, facts.stable === "blue" ? 100 : 0]);
    for (const u of facts.updates)
      if (u.weights) weights.push([(u.at - t0) / 1000, u.weights.blue]);
  }

  const chart: ChartData = {
    title: `${facts.releaseId} · ${input.service} ${facts.version} (${input.runtime}) · ${facts.outcome.toUpperCase()}`,
    subtitle: `candidate ${facts.candidate} ${facts.version} vs stable ${facts.stable} ${facts.previousVersion} · curves: Prometheus, ${rw} rate windows (centred) · weights: the HTTPRoute ${input.throughGateway ? "read from the API server" : "as the load followed it"}`,
    durationS: (to - t0) / 1000,
    slots: {
      [facts.candidate]: { role: "candidate", version: facts.version },
      [facts.stable]: { role: "stable", version: facts.previousVersion },
    } as ChartData["slots"],
    share,
    weights,
    errorRatio: errors,
    p99,
    updates: facts.updates.map((u) => ({
      t: (u.at - t0) / 1000,
      label: updateLabel(u),
      kind: kindOf(u.transition),
    })),
    analyses: facts.analyses.map((a, i) => ({
      start: (a.start - t0) / 1000,
      end: (a.end - t0) / 1000,
      verdict: a.verdict,
      label: `analysis ${i + 1}: ${a.verdict}`,
      measurements: a.measurements.map((m) => ({ t: (m.at - t0) / 1000, verdict: m.verdict })),
    })),
  };
  const svg = renderChart(chart);
  const markdown = renderMarkdown(facts, input);
  mkdirSync(input.dir, { recursive: true });
  writeFileSync(join(input.dir, `${facts.releaseId}.svg`), svg);
  writeFileSync(join(input.dir, `${facts.releaseId}.md`), markdown);
  return { facts, markdown, svg };
}

function shareOf(rates: Record<Slot, Point[]>): Record<Slot, Point[]> {
  const byT = new Map<number, { blue?: number; green?: number }>();
  for (const slot of ["blue", "green"] as Slot[])
    for (const [t, v] of rates[slot]) if (v !== null) byT.set(t, { ...byT.get(t), [slot]: v });
  const out: Record<Slot, Point[]> = { blue: [], green: [] };
  for (const [t, r] of [...byT].sort((a, b) => a[0] - b[0])) {
    const total = (r.blue ?? 0) + (r.green ?? 0);
    if (total <= 0) continue;
    out.blue.push([t, (100 * (r.blue ?? 0)) / total]);
    out.green.push([t, (100 * (r.green ?? 0)) / total]);
  }
  return out;
}

function kindOf(transition: string): ChartData["updates"][number]["kind"] {
  return (
    (["deploy", "setWeight", "promote", "rollback", "scaleDown"] as const).find(
      (k) => k === transition,
    ) ?? "other"
  );
}

function updateLabel(u: ReleaseFacts["updates"][number]): string {
  if (u.transition === "setWeight" && u.weights)
    return `${Math.min(u.weights.blue, u.weights.green)}%`;
  if (u.transition === "scaleDown") return "scale down";
  return u.transition;
}

const secs = (msValue: number) => `${(msValue / 1000).toFixed(1)} s`;
const pct = (v: number | undefined) => (v === undefined ? "–" : `${(v * 100).toFixed(2)}%`);
const latency = (v: number | undefined) =>
  v === undefined ? "–" : v >= 0.1 ? `${(v * 1000).toFixed(0)} ms` : `${(v * 1000).toFixed(2)} ms`;

function renderMarkdown(facts: ReleaseFacts, input: ReportInput): string {
  const t = (at: number) => `+${((at - facts.startedAt) / 1000).toFixed(1)} s`;
  const lines: string[] = [];
  lines.push(
    `# Release ${facts.releaseId}: ${input.service} ${facts.version} (${input.runtime}), ${facts.outcome}`,
  );
  lines.push("");
  lines.push(
    `![traffic share, error ratio and p99 latency per slot over the release](${facts.releaseId}.svg)`,
  );
  lines.push("");
  lines.push("| | |", "|---|---|");
  lines.push(
    `| outcome | **${facts.outcome}**${facts.reason ? `: ${facts.reason.replace(/\|/g, "\\|")}` : ""} |`,
  );
  lines.push(`| artifact | \`${facts.image}\` |`);
  if (input.faults && Object.keys(input.faults).length) {
    lines.push(
      `| injected faults (image config) | ${Object.entries(input.faults)
        .map(([k, v]) => `\`${k}=${v}\``)
        .join(", ")} |`,
    );
  }
  lines.push(
    `| candidate | ${facts.candidate} (${facts.version}), stable ${facts.stable} (${facts.previousVersion}) |`,
  );
  lines.push(`| duration | ${secs(facts.durationMs)}, ${facts.updates.length} stack updates |`);
  lines.push(
    `| steps | ${facts.stepsDone} of ${facts.plan.length} run: ${facts.plan.join(" → ")} → promote |`,
  );
  lines.push("");
  lines.push("## Stack updates", "");
  lines.push(
    "| at | transition | weights after (blue / green) | update took | changes |",
    "|---|---|---|---|---|",
  );
  for (const u of facts.updates) {
    const changes = Object.entries(u.changes ?? {})
      .filter(([k, v]) => k !== "same" && v > 0)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    lines.push(
      `| ${t(u.at)} | ${u.transition} | ${u.weights ? `${u.weights.blue} / ${u.weights.green}` : "–"} | ${u.durationMs ? secs(u.durationMs) : "–"} | ${changes || "none"} |`,
    );
  }
  lines.push("");
  lines.push("## Analyses", "");
  if (facts.analyses.length === 0) lines.push("None ran.");
  for (const [i, a] of facts.analyses.entries()) {
    lines.push(`### ${i + 1}. ${a.step} (plan step ${a.stepIndex + 1}): **${a.verdict}**`, "");
    lines.push(
      `Window ${t(a.start)} to ${t(a.end)}; measurements: ${a.measurements.map((m) => `#${m.index} ${m.verdict}`).join(", ") || "none"}.`,
      "",
    );
    lines.push(
      "| metric | verdict | candidate | stable | test | p (Holm) | α |",
      "|---|---|---|---|---|---|---|",
    );
    for (const m of a.metrics) {
      const cand =
        m.type === "ratio"
          ? `${pct(m.canary?.rate)} (${m.canary?.bad ?? "–"}/${m.canary?.n ?? "–"})`
          : `median ${latency(m.canary?.median)} (n=${m.canary?.n ?? 0})`;
      const base =
        m.type === "ratio"
          ? `${pct(m.baseline?.rate)} (${m.baseline?.bad ?? "–"}/${m.baseline?.n ?? "–"})`
          : `median ${latency(m.baseline?.median)} (n=${m.baseline?.n ?? 0})`;
      const p =
        m.pAdjusted === undefined
          ? "–"
          : m.pAdjusted < 1e-4
            ? m.pAdjusted.toExponential(1)
            : m.pAdjusted.toFixed(4);
      lines.push(
        `| ${m.name}${m.critical ? " (critical)" : ""} | ${m.verdict} | ${cand} | ${base} | ${m.test ?? "–"} | ${p} | ${Number(m.alpha).toPrecision(2)} |`,
      );
    }
    lines.push("");
    for (const m of a.metrics) lines.push(`- ${m.name}: ${String(m.reason).replace(/\n/g, " ")}`);
    lines.push("", `Verdict: ${a.reason.replace(/\n/g, " ")}`, "");
  }
  if (input.steps?.length) {
    lines.push("## Traffic split observed at the services", "");
    lines.push(
      `Per stretch in which the stack held one set of weights (read back after each update, until the next update started): the requests each slot served by its own \`http_requests_total\`${input.throughGateway ? "; Traefik split them by the HTTPRoute" : ""}. The smoke check's tester-header requests reach the candidate at any weight, so they show in the stretch after the deploy.`,
      "",
    );
    lines.push(
      `| from | for | weights held (blue / green) | candidate weight | candidate share served | requests candidate / stable | 5xx candidate / stable |`,
      "|---|---|---|---|---|---|---|",
    );
    for (const st of input.steps) {
      lines.push(
        `| ${t(st.startedAt)} | ${secs(st.endedAt - st.startedAt)} | ${st.weights.blue} / ${st.weights.green}${st.verified ? "" : " (drifted)"} | ${st.candidateWeight}% | ${st.candidateShare === undefined ? "–" : `${st.candidateShare.toFixed(1)}%`} | ${st.requests.candidate} / ${st.requests.stable} | ${st.candidateErrors} / ${st.stableErrors} |`,
      );
    }
    lines.push("");
  }
  if (input.load) {
    lines.push("## Load during the release", "");
    const l = input.load.total;
    lines.push(
      input.throughGateway
        ? `The load generator sent ${l.sent} requests to the Gateway (it does not know the weights): ${l.ok} answered 2xx, ${l.serverErrors} 5xx${l.serverErrors ? ` (${describeServerErrors(l, input.load.since ?? 0)} after the release began)` : ""}, ${l.otherStatus} other (Traefik answers 404 while the stage has no HTTPRoute yet, during the first deploy), ${l.failed} without answer.`
        : "Requests the rehearsal's load generator sent, split by the rendered HTTPRoute's weights:",
      "",
    );
    if (input.load.bySlot) {
      lines.push("| slot | sent | 2xx | 5xx | no answer |", "|---|---|---|---|---|");
      for (const slot of ["blue", "green"] as Slot[]) {
        const b = input.load.bySlot[slot];
        lines.push(`| ${slot} | ${b.sent} | ${b.ok} | ${b.serverErrors} | ${b.failed} |`);
      }
    }
    lines.push("");
  }
  lines.push(...hookAndNotificationLines(input.records));
  lines.push("## Sources", "");
  lines.push(
    `The timeline, verdicts and figures come from the release log (\`history --release ${facts.releaseId}\`); the chart's curves from Prometheus range queries at 1 s resolution over ${input.rateWindowSeconds ?? 4} s rate windows, each plotted at its window's middle: ` +
      "requests per slot (`http_requests_total`), 5xx ratio, and `histogram_quantile(0.99, …http_request_duration_seconds_bucket…)`. " +
      "A p99 from the histogram is interpolated inside a bucket (the first bucket ends at 1 ms), so a slot answering in well under a millisecond shows about 1 ms.",
    "",
  );
  return lines.join("\n");
}
