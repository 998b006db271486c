import type { Command } from "commander";
import { ExitCode } from "../../domain";
import { resolveContext } from "../../pipeline/context";
import { RefusedError } from "../../pipeline/errors";
import { migrateStageLog } from "../../store/migrate";
import { storeFor } from "../../store/url";
import { STORE_OPTION_HELP } from "../storeOption";

/** `slipway migrate-log`: a stage's file log moved once into the S3 release store, verified. */
export function register(program: Command): void {
  program
    .command("migrate-log")
    .description(
      "move a stage's release log from files into the S3 release store, once: verified before and after, under the stage's lease",
    )
    .requiredOption("--stage <stage>", "the stage")
    .requiredOption("--from <dir>", "the directory holding <stage>.jsonl (the old --log-dir)")
    .option("--store <url>", STORE_OPTION_HELP)
    .option("--project-dir <dir>", "directory with Pulumi.yaml (default: nearest one up from here)")
    .option("--backend <url>", "Pulumi backend URL (default: $PULUMI_BACKEND_URL)")
    .action(
      async (o: {
        stage: string;
        from: string;
        store?: string;
        projectDir?: string;
        backend?: string;
      }) => {
        try {
          const ctx = resolveContext({
            stage: o.stage,
            projectDir: o.projectDir,
            backendUrl: o.backend,
          });
          const store = storeFor(ctx, o.store);
          try {
            const done = await migrateStageLog({ stage: o.stage, fromDir: o.from, to: store });
            process.stdout.write(
              `migrated ${done.copied} record(s) of stage ${o.stage} from ${done.from} to ${done.to}; the copy verifies. ` +
                `Keep ${done.from} as it is for review; slipway no longer reads it once the store is used.\n`,
            );
          } finally {
            store.close();
          }
        } catch (err) {
          if (!(err instanceof RefusedError)) throw err;
          process.stderr.write(`slipway migrate-log: ${err.message}\n`);
          process.exitCode = ExitCode.refused;
        }
      },
    );
}
