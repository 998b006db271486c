#!/usr/bin/env node
import { Command } from "commander";
import { registerCommands } from "./commands";
import { ExitCode } from "../domain";
import { RefusedError } from "../pipeline/errors";

export function buildProgram(): Command {
  const program = new Command("slipway")
    .description("Progressive delivery for Go and Rust services on Pulumi stacks")
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (err: unknown) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return ExitCode.ok;
    if (e.code?.startsWith("commander.")) return ExitCode.usage;
    // A command that refuses by throwing (unknown stage, bad stage name) refused before any change.
    if (err instanceof RefusedError) {
      process.stderr.write(`slipway: ${err.message}\n`);
      return ExitCode.refused;
    }
    process.stderr.write(`slipway: ${e.message ?? String(err)}\n`);
    return ExitCode.error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`slipway: ${String(err)}\n`);
      process.exit(ExitCode.error);
    },
  );
}
