import type { Slot } from "../domain";

/**
 * A release's chart as hand-written SVG (no browser, no dependencies): traffic
 * share, error ratio and p99 latency per slot over the release, with the stack
 * updates as dashed lines and the analyses as shaded bands with their verdicts.
 * Pure: data in, text out.
 */

export type Point = [seconds: number, value: number | null];

export interface ChartData {
  title: string;
  subtitle: string;
  /** Seconds from the release's start to the end of the chart. */
  durationS: number;
  slots: Record<Slot, { role: string; version: string }>;
  /** Share of requests per slot, 0..100, measured by Prometheus. */
  share: Record<Slot, Point[]>;
  /** The weights the HTTPRoute held: [seconds, blue weight]; green is 100 minus it. */
  weights: [number, number][];
  /** 5xx / all requests per slot, 0..1. */
  errorRatio: Record<Slot, Point[]>;
  /** p99 latency per slot, seconds. */
  p99: Record<Slot, Point[]>;
  updates: {
    t: number;
    label: string;
    kind: "deploy" | "setWeight" | "promote" | "rollback" | "scaleDown" | "other";
  }[];
  analyses: {
    start: number;
    end: number;
    verdict: "pass" | "fail" | "inconclusive";
    label: string;
    measurements: { t: number; verdict: string }[];
  }[];
}

export const SLOT_COLOURS: Record<Slot, string> = { blue: "#1d4ed8", green: "#15803d" };
const VERDICT_COLOURS: Record<string, string> = {
  pass: "#15803d",
  fail: "#b91c1c",
  inconclusive: "#b45309",
  error: "#6b7280",
};
const UPDATE_COLOURS: Record<string, string> = { promote: "#15803d", rollback: "#b91c1c" };

const W = 960;
const LEFT = 78;
const RIGHT = 24;
const PLOT_W = W - LEFT - RIGHT;
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const f = (n: number) => (Math.round(n * 10) / 10).toString();

interface Panel {
  top: number;
  height: number;
  y: (v: number) => number;
  ticks: { v: number; label: string }[];
  title: string;
}

function linearPanel(
  top: number,
  height: number,
  max: number,
  title: string,
  format: (v: number) => string,
): Panel {
  const y = (v: number) => top + height - (Math.min(Math.max(v, 0), max) / max) * height;
  const step = tickStep(max);
  const ticks: { v: number; label: string }[] = [];
  for (let i = 0; i * step <= max * 1.0000001; i++)
    ticks.push({ v: i * step, label: format(i * step) });
  return { top, height, y, ticks, title };
}

/** A round tick step (1, 2, 2.5 or 5 times a power of ten) giving 3 to 5 intervals up to `max`. */
export function tickStep(max: number): number {
  const p = 10 ** Math.floor(Math.log10(max / 5));
  for (const m of [1, 2, 2.5, 5, 10, 20, 25, 50]) if (max / (m * p) <= 5.0000001) return m * p;
  return max / 4;
}

function logPanel(
  top: number,
  height: number,
  min: number,
  max: number,
  title: string,
  format: (v: number) => string,
): Panel {
  const lmin = Math.log10(min);
  const lmax = Math.log10(max);
  const y = (v: number) =>
    top + height - ((Math.log10(Math.min(Math.max(v, min), max)) - lmin) / (lmax - lmin)) * height;
  const ticks: { v: number; label: string }[] = [];
  for (let e = Math.ceil(lmin); e <= Math.floor(lmax); e++)
    ticks.push({ v: 10 ** e, label: format(10 ** e) });
  return { top, height, y, ticks, title };
}

/** Nice upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten, at least `floor`. */
export function niceMax(value: number, floor: number): number {
  const v = Math.max(value, floor);
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p * 1.0000001) return m * p;
  return 10 * p;
}

/** Polyline paths; a null value or a gap wider than `maxGap` seconds breaks the line. */
function path(
  points: Point[],
  x: (t: number) => number,
  y: (v: number) => number,
  maxGap = 3,
  domain: [number, number] = [-Infinity, Infinity],
): string {
  let d = "";
  let prev: number | undefined;
  for (const [t, v] of points) {
    if (t < domain[0] || t > domain[1]) continue;
    if (v === null || !Number.isFinite(v)) {
      prev = undefined;
      continue;
    }
    d += `${prev === undefined || t - prev > maxGap ? "M" : "L"}${f(x(t))},${f(y(v))}`;
    prev = t;
  }
  return d;
}

/** Places labels left to right on as few rows as keep them apart. */
function stagger(items: { x: number; width: number }[], gap = 6): number[] {
  const rowEnds: number[] = [];
  return items.map((it) => {
    const left = it.x - it.width / 2;
    let row = rowEnds.findIndex((end) => end + gap <= left);
    if (row < 0) row = rowEnds.push(0) - 1;
    rowEnds[row] = it.x + it.width / 2;
    return row;
  });
}

const textWidth = (s: string, size: number) => s.length * size * 0.58;

export function renderChart(data: ChartData): string {
  const duration = Math.max(1, data.durationS);
  const x = (t: number) => LEFT + (Math.min(Math.max(t, 0), duration) / duration) * PLOT_W;
  const out: string[] = [];

  // Header and legend.
  out.push(`<text x="${LEFT}" y="26" font-size="17" font-weight="bold">${esc(data.title)}</text>`);
  out.push(`<text x="${LEFT}" y="46" font-size="12" fill="#374151">${esc(data.subtitle)}</text>`);
  let lx = LEFT;
  const legendY = 68;
  for (const slot of ["blue", "green"] as Slot[]) {
    const label = `${slot}: ${data.slots[slot].role}, ${data.slots[slot].version}`;
    out.push(
      `<line x1="${lx}" y1="${legendY - 4}" x2="${lx + 22}" y2="${legendY - 4}" stroke="${SLOT_COLOURS[slot]}" stroke-width="2.5"/>`,
    );
    out.push(`<text x="${lx + 28}" y="${legendY}" font-size="12">${esc(label)}</text>`);
    lx += 28 + textWidth(label, 12) + 22;
  }
  out.push(
    `<line x1="${lx}" y1="${legendY - 4}" x2="${lx + 22}" y2="${legendY - 4}" stroke="#111827" stroke-width="1.5" stroke-dasharray="5 3"/>`,
  );
  out.push(`<text x="${lx + 28}" y="${legendY}" font-size="12">HTTPRoute weight</text>`);
  lx += 28 + textWidth("HTTPRoute weight", 12) + 22;
  out.push(
    `<rect x="${lx}" y="${legendY - 11}" width="22" height="12" fill="#e5e7eb" stroke="#9ca3af" stroke-width="0.5"/>`,
  );
  out.push(`<text x="${lx + 28}" y="${legendY}" font-size="12">analysis window</text>`);

  // Update labels above the first panel, staggered so they never overlap.
  const labelsTop = 88;
  const labelSize = 11;
  const updates = [...data.updates].sort((a, b) => a.t - b.t);
  // Label centres, kept inside the picture.
  const labelXs = updates.map((u) => {
    const half = textWidth(u.label, labelSize) / 2 + 2;
    return Math.min(Math.max(x(u.t), half + 4), W - half - 4);
  });
  const rows = stagger(
    updates.map((u, i) => ({ x: labelXs[i]!, width: textWidth(u.label, labelSize) + 8 })),
  );
  const rowCount = Math.max(1, ...rows.map((r) => r + 1));
  const rowH = 15;

  // Panels.
  const panelH = 140;
  const panelGap = 34;
  const firstTop = labelsTop + rowCount * rowH + 26;
  const maxError = Math.max(
    0,
    ...(["blue", "green"] as Slot[]).flatMap((s) => data.errorRatio[s].map(([, v]) => v ?? 0)),
  );
  const p99Values = (["blue", "green"] as Slot[])
    .flatMap((s) => data.p99[s].map(([, v]) => v ?? 0))
    .filter((v) => v > 0);
  const latMax = niceMax(Math.max(...p99Values, 0.01) * 1.5, 0.01);
  const panels = {
    share: linearPanel(firstTop, panelH, 100, "traffic share (%)", (v) => `${v}%`),
    errors: linearPanel(
      firstTop + panelH + panelGap,
      panelH,
      niceMax(maxError * 1.15, 0.05),
      "error ratio, 5xx / requests (%)",
      (v) => `${+(v * 100).toFixed(1)}%`,
    ),
    latency: logPanel(
      firstTop + 2 * (panelH + panelGap),
      panelH,
      5e-4,
      latMax,
      "p99 latency (log scale)",
      (v) => (v >= 1 ? `${v} s` : `${+(v * 1000).toPrecision(3)} ms`),
    ),
  };
  const plotBottom = panels.latency.top + panels.latency.height;
  const H = plotBottom + 64;

  // Analysis bands behind everything, across the three panels.
  for (const a of data.analyses) {
    const x0 = x(a.start);
    const x1 = Math.max(x(a.end), x0 + 2);
    for (const p of Object.values(panels)) {
      out.push(
        `<rect x="${f(x0)}" y="${p.top}" width="${f(x1 - x0)}" height="${p.height}" fill="#e5e7eb" opacity="0.75"/>`,
      );
    }
  }

  // Panel frames, grid, ticks and titles.
  for (const p of Object.values(panels)) {
    out.push(
      `<text x="${LEFT}" y="${p.top - 7}" font-size="12" font-weight="bold" fill="#111827">${esc(p.title)}</text>`,
    );
    for (const t of p.ticks) {
      const ty = p.y(t.v);
      out.push(
        `<line x1="${LEFT}" y1="${f(ty)}" x2="${LEFT + PLOT_W}" y2="${f(ty)}" stroke="#d1d5db" stroke-width="0.6"/>`,
      );
      out.push(
        `<text x="${LEFT - 6}" y="${f(ty + 4)}" font-size="10.5" text-anchor="end" fill="#4b5563">${esc(t.label)}</text>`,
      );
    }
    out.push(
      `<rect x="${LEFT}" y="${p.top}" width="${PLOT_W}" height="${p.height}" fill="none" stroke="#6b7280" stroke-width="0.8"/>`,
    );
  }

  // Stack updates: dashed vertical lines through all panels, labels on top.
  updates.forEach((u, i) => {
    const ux = x(u.t);
    const colour = UPDATE_COLOURS[u.kind] ?? "#374151";
    const ly = labelsTop + rows[i]! * rowH + 10;
    const labelX = labelXs[i]!;
    out.push(
      `<line x1="${f(ux)}" y1="${ly + 3}" x2="${f(ux)}" y2="${plotBottom}" stroke="${colour}" stroke-width="1" stroke-dasharray="4 3" opacity="0.8"/>`,
    );
    out.push(
      `<text x="${f(labelX)}" y="${ly}" font-size="${labelSize}" text-anchor="middle" fill="${colour}" font-weight="${u.kind === "promote" || u.kind === "rollback" ? "bold" : "normal"}">${esc(u.label)}</text>`,
    );
  });

  // HTTPRoute weights: dashed step lines in the share panel.
  for (const slot of ["blue", "green"] as Slot[]) {
    const steps: Point[] = [];
    data.weights.forEach(([at, blue], i) => {
      const t = Math.min(Math.max(at, 0), duration);
      const v = slot === "blue" ? blue : 100 - blue;
      if (i > 0) steps.push([t, steps[steps.length - 1]![1]]);
      steps.push([t, v]);
    });
    if (steps.length > 0) steps.push([duration, steps[steps.length - 1]![1]]);
    const d = path(steps, x, panels.share.y, Infinity);
    if (d)
      out.push(
        `<path d="${d}" fill="none" stroke="${SLOT_COLOURS[slot]}" stroke-width="1.3" stroke-dasharray="5 3" opacity="0.9"/>`,
      );
  }

  // Measured series.
  const series: [Panel, Record<Slot, Point[]>, (v: number) => number][] = [
    [panels.share, data.share, (v) => v],
    [panels.errors, data.errorRatio, (v) => v],
    [panels.latency, data.p99, (v) => v],
  ];
  for (const [panel, bySlot] of series) {
    for (const slot of ["blue", "green"] as Slot[]) {
      const d = path(bySlot[slot], x, panel.y, 3, [0, duration]);
      if (d)
        out.push(
          `<path d="${d}" fill="none" stroke="${SLOT_COLOURS[slot]}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>`,
        );
    }
  }

  // Verdicts: the analysis's verdict above its band in the error panel, and one dot per measurement.
  for (const a of data.analyses) {
    const x0 = x(a.start);
    const x1 = Math.max(x(a.end), x0 + 2);
    const colour = VERDICT_COLOURS[a.verdict] ?? "#374151";
    const mark = a.verdict === "pass" ? "✓" : a.verdict === "fail" ? "✗" : "?";
    const label = `${mark} ${a.label}`;
    const cx = (x0 + x1) / 2;
    const w = textWidth(label, 11) + 10;
    const bx = Math.min(Math.max(cx - w / 2, LEFT + 2), LEFT + PLOT_W - w - 2);
    const by = panels.errors.top + 6;
    out.push(
      `<rect x="${f(bx)}" y="${by}" width="${f(w)}" height="17" rx="3" fill="#ffffff" stroke="${colour}" stroke-width="1.2"/>`,
    );
    out.push(
      `<text x="${f(bx + w / 2)}" y="${by + 12.5}" font-size="11" text-anchor="middle" fill="${colour}" font-weight="bold">${esc(label)}</text>`,
    );
    for (const m of a.measurements) {
      out.push(
        `<circle cx="${f(x(m.t))}" cy="${panels.errors.top + panels.errors.height - 6}" r="4" fill="${VERDICT_COLOURS[m.verdict] ?? "#6b7280"}" stroke="#ffffff" stroke-width="1"/>`,
      );
    }
  }

  // Time axis.
  const step = niceMax(duration / 8, 1);
  for (let t = 0; t <= duration + 1e-9; t += step) {
    const tx = x(t);
    out.push(
      `<line x1="${f(tx)}" y1="${plotBottom}" x2="${f(tx)}" y2="${plotBottom + 5}" stroke="#6b7280"/>`,
    );
    out.push(
      `<text x="${f(tx)}" y="${plotBottom + 18}" font-size="10.5" text-anchor="middle" fill="#4b5563">${Math.round(t)}s</text>`,
    );
  }
  out.push(
    `<text x="${LEFT + PLOT_W / 2}" y="${plotBottom + 36}" font-size="12" text-anchor="middle" fill="#111827">seconds since the release started</text>`,
  );
  out.push(
    `<text x="${LEFT}" y="${plotBottom + 56}" font-size="10.5" fill="#6b7280">dots: one per analysis measurement (green pass, amber inconclusive, red fail); dashed verticals: stack updates</text>`,
  );

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}
