import type { Command } from "commander";
import { join } from "node:path";
import type { Runtime } from "../../config/schema";
import { PROFILES } from "../../rehearsal/profile";
import { RehearsalAborted, rehearse } from "../../rehearsal/rehearse";
import { formatSummary } from "../../rehearsal/summary";
import { ExitCode } from "../../domain";
import { makeReporter } from "../reporter";

/** `slipway rehearse` (`npm start`): the local release rehearsal, docs/rehearsal.md. */
export function register(program: Command): void {
  program
    .command("rehearse")
    .description(
      "rehearse two releases on the local stage with real processes, traffic and Prometheus: a good one (promoted) and a bad one (rolled back); on the local cluster (started if needed, traffic through its Gateway) unless --render",
    )
    .option("--runtime <runtime>", "go, rust, or both (one after the other)", "both")
    .option("--profile <name>", `timings: ${Object.keys(PROFILES).join(" or ")}`, "demo")
    .option("--repo <dir>", "the Slipway checkout (default: the one this command runs from)")
    .option("--json", "JSON Lines events instead of human output")
    .option(
      "--render",
      "render mode: no cluster; manifests rendered, the load generator splits by the rendered HTTPRoute",
    )
    .action(
      async (o: {
        runtime: string;
        profile: string;
        repo?: string;
        json?: boolean;
        render?: boolean;
      }) => {
        const runtimes: Runtime[] | undefined =
          o.runtime === "both"
            ? ["go", "rust"]
            : o.runtime === "go" || o.runtime === "rust"
              ? [o.runtime]
              : undefined;
        if (!runtimes)
          throw new Error(`--runtime: got ${JSON.stringify(o.runtime)}; allowed: go, rust or both`);
        const profile = PROFILES[o.profile];
        if (!profile)
          throw new Error(
            `--profile: got ${JSON.stringify(o.profile)}; allowed: ${Object.keys(PROFILES).join(", ")}`,
          );
        const repo = o.repo ?? join(__dirname, "..", "..", "..");

        const controller = new AbortController();
        let interrupts = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          interrupts++;
          if (interrupts > 1) process.exit(ExitCode.interrupted);
          process.stderr.write(
            `\nslipway rehearse: ${signal}, stopping everything it started (again to quit at once)…\n`,
          );
          controller.abort();
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
        const report = makeReporter(!!o.json);
        try {
          const result = await rehearse({
            repo,
            runtimes,
            profile,
            report,
            signal: controller.signal,
            mode: o.render ? "render" : "cluster",
          });
          if (o.json) {
            process.stdout.write(
              JSON.stringify({
                type: "summary",
                ok: result.ok,
                mode: result.mode,
                summaryFile: result.summaryFile,
                durationMs: result.durationMs,
                error: result.error,
                releases: result.releases.map((r) => ({
                  runtime: r.runtime,
                  version: r.version,
                  expected: r.expected,
                  outcome: r.result.outcome,
                  releaseId: r.result.releaseId,
                  reason: r.result.reason,
                  durationMs: r.facts?.durationMs,
                  steps: r.facts && { done: r.facts.stepsDone, planned: r.facts.plan.length },
                  verdicts: r.facts?.analyses.map((a) => ({ step: a.step, verdict: a.verdict })),
                  report: r.reportFile,
                  chart: r.chartFile,
                })),
              }) + "\n",
            );
          } else {
            process.stdout.write(formatSummary(result) + "\n");
          }
          process.exitCode = result.ok ? ExitCode.ok : ExitCode.error;
        } catch (err) {
          if (err instanceof RehearsalAborted) {
            process.stderr.write(
              "slipway rehearse: interrupted; everything it started is stopped\n",
            );
            process.exitCode = ExitCode.interrupted;
            return;
          }
          throw err;
        } finally {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
      },
    );
}
