import type { Command } from "commander";
import { InputError, parseAnalysisInput, toJudgeArguments } from "../../analysis/input";
import { judge, type JudgeResult, type MetricVerdict } from "../../analysis/judge";
import { readInputFile } from "../../files";
import { analyzeExitCode } from "../exitCodes";
import { ExitCode } from "../../domain";

export function register(program: Command): void {
  program
    .command("analyze")
    .description("Judge a canary offline: compare candidate with stable metrics from a JSON file")
    .requiredOption("--input <file>", "analysis input (schemas/analysis-input.schema.json)")
    .option("--json", "print one JSON object instead of text")
    .addHelpText(
      "after",
      `\nExit codes: ${ExitCode.ok} pass, ${ExitCode.rolledBack} fail, ${ExitCode.inconclusive} inconclusive, ${ExitCode.usage} bad input.`,
    )
    .action((opts: { input: string; json?: boolean }) => {
      process.exitCode = analyze(opts.input, Boolean(opts.json));
    });
}

/** Samples of a window are thousands of numbers, not hundreds of megabytes. */
const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** Runs the judge on a file, writes the report, returns the exit code. */
export function analyze(
  file: string,
  json: boolean,
  out = process.stdout,
  err = process.stderr,
): number {
  let text: string;
  try {
    text = readInputFile(file, MAX_INPUT_BYTES);
  } catch (e) {
    err.write(
      `slipway analyze: --input ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}\n`,
    );
    return analyzeExitCode("badInput");
  }
  let args: ReturnType<typeof toJudgeArguments>;
  try {
    args = toJudgeArguments(parseAnalysisInput(text));
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    for (const problem of e.problems) err.write(`slipway analyze: ${file}: ${problem}\n`);
    return analyzeExitCode("badInput");
  }
  const result = judge(args.metrics, args.options);
  out.write(json ? `${JSON.stringify(toJson(result))}\n` : renderText(result));
  return analyzeExitCode(result.verdict);
}

/** JSON has no Infinity: an unbounded relative change (baseline at 0) is written as null. */
function finiteOrNull(value: number | undefined): number | null | undefined {
  return value === undefined ? undefined : Number.isFinite(value) ? value : null;
}

function toJson(result: JudgeResult) {
  return {
    verdict: result.verdict,
    reasons: result.reasons,
    metrics: result.metrics.map((m) => ({
      ...m,
      relativeEffect: finiteOrNull(m.relativeEffect),
    })),
  };
}

function renderText(result: JudgeResult): string {
  const rows = result.metrics.map((m) => [
    m.verdict.toUpperCase(),
    m.name + (m.critical ? " (critical)" : ""),
    m.type,
    stats(m),
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = [`verdict: ${result.verdict}`];
  for (const reason of result.reasons) lines.push(`  ${reason}`);
  lines.push("");
  result.metrics.forEach((m, i) => {
    const row = rows[i];
    lines.push(
      `${row[0].padEnd(widths[0])}  ${row[1].padEnd(widths[1])}  ${row[2].padEnd(widths[2])}  ${row[3]}`.trimEnd(),
    );
    lines.push(`${" ".repeat(widths[0])}  ${m.reason}`);
  });
  return `${lines.join("\n")}\n`;
}

function stats(m: MetricVerdict): string {
  const parts: string[] = [];
  if (m.canary) parts.push(`canary n=${m.canary.n}`);
  if (m.baseline) parts.push(`baseline n=${m.baseline.n}`);
  if (m.p !== undefined)
    parts.push(
      `p=${m.pAdjusted !== undefined && m.pAdjusted !== m.p ? `${fmt(m.p)} (adj ${fmt(m.pAdjusted)})` : fmt(m.p)}`,
    );
  if (m.relativeEffect !== undefined)
    parts.push(
      `effect=${Number.isFinite(m.relativeEffect) ? `${(m.relativeEffect * 100).toFixed(1)}%` : "∞"}`,
    );
  return parts.join("  ");
}

const fmt = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
