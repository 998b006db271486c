import type { Command } from "commander";
import { register as registerAnalyze } from "./analyze";
import { register as registerCluster } from "./cluster";
import { register as registerInit } from "./init";
import { register as registerMigrateLog } from "./migrateLog";
import { register as registerArtifactIntegrity } from "./sign";
import { register as registerPipeline } from "./release";
import { register as registerPlan } from "./plan";
import { register as registerRehearse } from "./rehearse";

/**
 * Each subcommand lives in its own file and exports `register(program)`.
 * Add new ones to the list below.
 */
type Register = (program: Command) => void;

const registrations: Register[] = [
  registerAnalyze, // analyze
  registerArtifactIntegrity, // keygen, sign, verify
  registerPipeline, // release, promote, rollback, approve, status, history
  registerPlan, // plan
  registerRehearse, // rehearse (npm start)
  registerCluster, // cluster up, down, status
  registerInit, // init
  registerMigrateLog, // migrate-log
];

export function registerCommands(program: Command): void {
  for (const register of registrations) register(program);
}
