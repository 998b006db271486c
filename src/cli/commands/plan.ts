import type { Command } from "commander";
import { resolveContext } from "../../pipeline/context";
import { readStageConfig } from "../../pipeline/stackFile";
import { formatPlan, previewPlan, type PlanOptions, type PlanReport } from "../../releasePlan";
import { ExitCode } from "../../domain";
import { whileHandlingSignals } from "./signals";
import { STORE_OPTION_HELP } from "../storeOption";

/**
 * `slipway plan`: what each transition of a release would change, previewed
 * by the real engine, nothing applied; exit 6 when an invariant would break.
 */
export function register(program: Command): void {
  program
    .command("plan")
    .description(
      "preview every transition of a release (deploy, each setWeight, promote, scale down, rollback from each point) without applying anything",
    )
    .requiredOption("--stage <stage>", "the stage (stack) the release would go into")
    .requiredOption("--image <ref>", "the artifact, pinned by digest: repo@sha256:<64 hex>")
    .requiredOption("--version <label>", "the release's version label")
    .option("--revision <sha>", "source revision of the artifact")
    .option("--project-dir <dir>", "directory with Pulumi.yaml (default: nearest one up from here)")
    .option(
      "--backend <url>",
      "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else file://<project>/.slipway/state)",
    )
    .option(
      "--log-dir <dir>",
      "release log directory (the plan takes the stage's lease while it runs)",
    )
    .option("--store <url>", STORE_OPTION_HELP)
    .option("--json", "one JSON object instead of human output")
    .action(
      async (o: {
        stage: string;
        image: string;
        version: string;
        revision?: string;
        projectDir?: string;
        backend?: string;
        logDir?: string;
        store?: string;
        json?: boolean;
      }) => {
        // Ctrl-C stops the previews and releases the lease (the stack file is never written).
        const report = await whileHandlingSignals(
          "plan",
          (signal) =>
            previewPlan({
              stage: o.stage,
              image: o.image,
              version: o.version,
              revision: o.revision,
              projectDir: o.projectDir,
              backendUrl: o.backend,
              logDir: o.logDir,
              store: o.store,
              signal,
              progress: o.json ? undefined : (line) => process.stderr.write(`… ${line}\n`),
            }),
          "no further preview starts; nothing was applied",
        );
        process.stdout.write((o.json ? JSON.stringify(report) : formatPlan(report)) + "\n");
        process.exitCode = report.exitCode;
      },
    );
}

/**
 * Whether `slipway release` runs the plan first: `--plan-check` / `--no-plan-check`,
 * else on for stages whose promotions need an approval (slipway:promotion.requireApproval).
 */
export function planCheckWanted(
  flag: boolean | undefined,
  projectDir: string,
  stage: string,
): boolean {
  if (flag !== undefined) return flag;
  try {
    return readStageConfig(projectDir, stage).promotion.requireApproval;
  } catch {
    return false; // the release itself refuses bad config, with the full message
  }
}

/** Runs the plan check before a release; returns the report when the release must not start. */
export async function planCheck(
  options: PlanOptions & { flag?: boolean; print: (text: string) => void },
): Promise<PlanReport | undefined> {
  const projectDir = resolveContext(options).projectDir;
  if (!planCheckWanted(options.flag, projectDir, options.stage)) return undefined;
  if (!options.image) return undefined; // --resume: nothing new to plan
  const report = await previewPlan(options);
  options.print(formatPlan(report));
  return report.exitCode === ExitCode.ok ? undefined : report;
}
