import { resolve } from "node:path";
import type { Command } from "commander";
import { ExitCode } from "../../domain";
import { PLATFORMS, RUNTIMES } from "../../config/schema";
import { InitError, initServiceProject, type InitOptions } from "../../init/project";

/** `slipway init`: a new service project that uses the Slipway package. Files only, no engine. */
export function register(program: Command): void {
  program
    .command("init")
    .description(
      "Write a new service project that releases with Slipway (program, stages, package)",
    )
    .argument("<dir>", "where to write it: a new or empty directory")
    .requiredOption(
      "--service <name>",
      "the service's name (slipway:service.name; also the project's)",
    )
    .requiredOption("--runtime <runtime>", `the service's runtime: ${RUNTIMES.join(" | ")}`)
    .option(
      "--platform <platform>",
      `where staging and prod run: ${PLATFORMS.join(" | ")} (the local stage renders Kubernetes manifests)`,
      "kubernetes",
    )
    .addHelpText(
      "after",
      "\nExit codes: 0 written, 2 refused (bad flag, non-empty directory): nothing written.",
    )
    .action((dir: string, opts: InitOptions) => {
      process.exitCode = runInit(dir, opts);
    });
}

function runInit(dir: string, opts: InitOptions): number {
  let files: string[];
  try {
    files = initServiceProject(dir, opts);
  } catch (err) {
    if (!(err instanceof InitError)) throw err;
    process.stderr.write(`slipway init: ${err.message}. Nothing was written.\n`);
    return ExitCode.usage;
  }
  process.stdout.write(
    `wrote ${opts.service} (${opts.runtime}, ${opts.platform ?? "kubernetes"}) into ${resolve(dir)}:\n` +
      files.map((f) => `  ${f}\n`).join("") +
      "next: npm install <the slipway package or its .tgz>, then pulumi up --stack local (see README.md)\n",
  );
  return ExitCode.ok;
}
