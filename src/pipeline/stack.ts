import {
  LocalWorkspace,
  type EngineEvent,
  type PulumiCommand,
  type Stack,
} from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { scratchDir, sweepScratchDirs } from "../files";
import { ensureBuilt, hasBuildConfig } from "../programBuild";
import { TESTER_TOKEN_KEY } from "../config/load";
import { parseStageOutputs, type StageOutputs } from "../contract/outputs";
import { StackLockedError } from "./errors";
import { FAILPOINT_UPDATE_ENV } from "./failpoint";
import type { StageState } from "./machine";
import { RoutingNotFoundError } from "./errors";
import { findRoutingResource } from "./routingResource";
import { stackFilePath, writeStageState } from "./stackFile";

/**
 * The Automation API side of the pipeline: one stage is one stack of the
 * program in `projectDir`. Config lives in `Pulumi.<stage>.yaml` (stackFile.ts
 * edits the keys the pipeline owns); each change lands with one `up`.
 */
export interface StageStackOptions {
  stage: string;
  projectDir: string;
  /** `file://…` or a service URL; defaults to PULUMI_BACKEND_URL. */
  backendUrl?: string;
  /** Extra environment for the engine (passphrase, credentials). */
  env?: Record<string, string>;
  onOutput?: (text: string) => void;
  /**
   * The stack settings file every command of this stack reads and writes (`--config-file`)
   * instead of the project's `Pulumi.<stage>.yaml`: `slipway plan` previews in a scratch copy,
   * so the project's file is never written, whatever signal ends the plan.
   */
  configFile?: string;
}

export interface UpdateResult {
  changes: Record<string, number>;
  durationMs: number;
}

/** One resource of an exported deployment (the parts the pipeline reads). */
export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  outputs?: Record<string, any>;
}

export const ENGINE_ENV = {
  PULUMI_SKIP_UPDATE_CHECK: "true",
  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
};

/**
 * Node's on-disk compile cache for the program's Node processes (the language host's
 * program, TypeScript and the SDK it loads): without it every update compiles the same
 * modules again (about 0.8 s of a step). Kept in the user's cache next to the toolchain,
 * never in the project; Node keys its entries by its own version and each file's content.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(cache, "slipway", "node-compile-cache");
}

/** The prefix of the folder each `up` keeps its engine event log in. */
const UP_SCRATCH_PREFIX = "slipway-up-";

/** The run-path wrapper that runs a project's precompiled build (bin/program-run.js). */
export const PROGRAM_RUN_PATH = join(__dirname, "..", "..", "bin", "program-run.js");

/**
 * For a project with a precompiled build (a `tsconfig.build.json`, as Slipway's program has):
 * builds `dist/` when it is missing or stale, and returns the environment that makes the
 * language host run it (without ts-node, about a second of every update). The wrapper checks
 * the build again when the program starts, so an edit made after this never runs stale.
 * Projects without one run their sources as Pulumi runs them.
 */
export function programRunPath(
  projectDir: string,
  say: (line: string) => void = () => {},
): Record<string, string> {
  // Empty: the host's default run path, also when the caller's environment names the wrapper.
  if (!hasBuildConfig(projectDir)) return { PULUMI_LANGUAGE_NODEJS_RUN_PATH: "" };
  ensureBuilt(projectDir, (line) => say(`${line}\n`));
  return { PULUMI_LANGUAGE_NODEJS_RUN_PATH: PROGRAM_RUN_PATH };
}

/**
 * What a release needs of a stage's stack: the outputs of its last update, its
 * stack file, and one update at a time. StageStack is the engine's; a stand-in
 * (the AWS tests, where the AWS provider cannot run) applies updates its own way.
 */
export interface UpdatableStack {
  readonly stage: string;
  /** The outputs of the last successful update, or undefined before the first. */
  outputs(): Promise<StageOutputs | undefined>;
  testerHeader(): Promise<{ name: string; value: string } | undefined>;
  /** Writes the pipeline's keys into the stack file; the next `up` applies them. */
  writeState(state: StageState): void;
  /**
   * `kind`: the transition the update lands (the failpoint's `during:<kind>`, failpoint.ts).
   * `only`: the update may change this routing resource and nothing else (the engine's
   * `--target`); a stand-in that applies updates its own way may ignore it.
   */
  up(
    message: string,
    kind?: string,
    only?: StageOutputs["routing"],
    options?: UpOptions,
  ): Promise<UpdateResult>;
  /**
   * The routing resource as the stack last applied it (its state's outputs): what the live
   * object is compared with, whole (readBack.ts). Absent on stand-ins.
   */
  declaredRouting?(routing: StageOutputs["routing"]): Promise<Record<string, any> | undefined>;
  /** Resolves operations a killed update left pending (see StageStack); absent on stand-ins. */
  clearPendingOperations?(): Promise<{ type: string; urn: string }[]>;
}

export interface UpOptions {
  /**
   * Read the targeted resources back from the cloud first (the engine's `--refresh`), so that
   * the update re-creates one deleted outside the stack and re-applies one edited there: a
   * recovery takes the route back to what the stack declares, whatever happened to it.
   */
  refresh?: boolean;
  /**
   * With `only`: Deployments (namespace/name) the update may also change, back to what the stack
   * declares (a rollback repairs the stable slot someone changed by hand). Kubernetes only.
   */
  alsoDeployments?: string[];
}

export class StageStack implements UpdatableStack {
  private constructor(
    readonly options: StageStackOptions,
    readonly stack: Stack,
  ) {}

  /** The stack file this stack reads and writes: `options.configFile`, else the project's. */
  get stackFile(): string {
    return this.options.configFile ?? stackFilePath(this.options.projectDir, this.options.stage);
  }

  /** `--config-file` for every command when the stack reads a file other than the project's. */
  private get configFileArgs(): string[] {
    return this.options.configFile ? ["--config-file", this.options.configFile] : [];
  }

  static async open(options: StageStackOptions): Promise<StageStack> {
    const envVars: Record<string, string> = {
      ...ENGINE_ENV,
      NODE_COMPILE_CACHE: compileCacheDir(),
      ...programRunPath(options.projectDir, options.onOutput),
      ...(options.env ?? {}),
    };
    const backend = options.backendUrl ?? process.env.PULUMI_BACKEND_URL;
    if (backend) envVars.PULUMI_BACKEND_URL = backend;
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: options.stage, workDir: options.projectDir },
      { envVars },
    );
    const opened = new StageStack(options, stack);
    await opened.ensureTesterToken();
    return opened;
  }

  /**
   * On a stage whose tester header comes from `secretGenerator: builtin`, makes sure the
   * stack file holds `slipway:testerToken`, a Pulumi secret (encrypted with the stack's
   * secrets provider): the value the stage's outputs serve (a checkout that lacks it: another
   * runner's, a fresh clone); else, on a stack deployed before the token moved to config, the
   * value its SecretToken resource holds in state, so the header and the route stay as they are
   * (the next update deletes that resource and changes nothing else); else a new one.
   */
  private async ensureTesterToken(): Promise<void> {
    const file = this.stackFile;
    if (!existsSync(file)) return;
    const doc = (parse(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, any> };
    const config = doc.config ?? {};
    if (config[`slipway:${TESTER_TOKEN_KEY}`] !== undefined) return;
    if (config["slipway:traffic"]?.headerRoute?.secretGenerator !== "builtin") return;
    // A checkout without the token (another CI runner's, a fresh clone) takes the value the stage
    // serves now, from the stack's outputs: every runner then sends and deploys the same header.
    const value =
      (await this.servedTesterToken()) ??
      (await this.stateTesterToken()) ??
      randomBytes(24).toString("base64url");
    if (!this.options.configFile)
      return this.stack.setConfig(`slipway:${TESTER_TOKEN_KEY}`, { value, secret: true });
    // The Automation API's setConfig has no --config-file; `--` keeps a value starting with "-" a value.
    await this.cli(
      ["config", "set", `slipway:${TESTER_TOKEN_KEY}`, "--secret", "--non-interactive"],
      this.configFileArgs,
      ["--", value],
    );
  }

  /** The tester header's value in the stack's last outputs (what the route matches now), if any. */
  private async servedTesterToken(): Promise<string | undefined> {
    const value = (await this.testerHeader().catch(() => undefined))?.value;
    return typeof value === "string" && value !== "" ? value : undefined;
  }

  /** The value of the SecretToken a stack deployed before `slipway:testerToken` holds in state. */
  private async stateTesterToken(): Promise<string | undefined> {
    const token = (await this.resourcesWithSecrets()).find(
      (r) =>
        r.type === "pulumi-nodejs:dynamic/slipway:SecretToken" && r.urn.endsWith("-tester-header"),
    );
    const value: unknown = revealSecrets(token?.outputs?.value);
    return typeof value === "string" ? value : undefined;
  }

  /** The resources of the stack's last checkpoint with their secrets shown (`stack export --show-secrets`). */
  private async resourcesWithSecrets(): Promise<StateResource[]> {
    const { stdout } = await this.cli(["stack", "export", "--show-secrets"]);
    return ((JSON.parse(stdout) as { deployment?: { resources?: StateResource[] } }).deployment
      ?.resources ?? []) as StateResource[];
  }

  get stage(): string {
    return this.options.stage;
  }

  writeState(state: StageState): void {
    writeStageState(this.stackFile, state);
  }

  /** The outputs of the last successful update, or undefined before the first. */
  async outputs(): Promise<StageOutputs | undefined> {
    const map = await this.outputValues();
    if (!map.schemaVersion) return undefined;
    return parseStageOutputs(map, `stack ${this.stage}`);
  }

  async testerHeader(): Promise<{ name: string; value: string } | undefined> {
    const map = await this.outputValues();
    return map.testerHeader as { name: string; value: string } | undefined;
  }

  /**
   * One `pulumi up` and nothing else. `Stack.up()` of the Automation API runs three more
   * commands after the update (`stack output` twice and `stack history`, each decrypting the
   * stack's secrets: about 1.2 s a step); the change counts come from the update's own
   * summary event instead, and outputs are read only when the caller asks for them.
   */
  async up(
    message: string,
    kind?: string,
    only?: StageOutputs["routing"],
    options: UpOptions = {},
  ): Promise<UpdateResult> {
    const started = Date.now();
    const target = only ? ["--target", await this.routingUrn(only)] : [];
    if (only)
      for (const ref of options.alsoDeployments ?? []) {
        const urn = await this.deploymentUrn(ref);
        if (urn) target.push("--target", urn);
      }
    const refresh = options.refresh ? ["--refresh"] : [];
    // What the update applies replaces what was known of the routing resource.
    this.declaredRoutes.clear();
    // Fault injection only: tells the program which update it runs in (inert without SLIPWAY_FAILPOINT).
    if (process.env.SLIPWAY_FAILPOINT)
      (this.stack.workspace as LocalWorkspace).envVars[FAILPOINT_UPDATE_ENV] = kind ?? "";
    // Those of runs killed before their `finally` (SIGKILL) go first.
    sweepScratchDirs(UP_SCRATCH_PREFIX);
    const dir = scratchDir(UP_SCRATCH_PREFIX);
    const eventLog = join(dir, "events.jsonl");
    try {
      await this.cli(
        ["up", "--yes", "--skip-preview", "--message", message, "--color", "never"],
        [
          "--exec-kind",
          "auto.local",
          "--event-log",
          eventLog,
          ...refresh,
          ...target,
          ...this.configFileArgs,
        ],
      );
      return { changes: summaryOf(readEvents(eventLog)), durationMs: Date.now() - started };
    } catch (err) {
      throw asLockError(err);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The routing resources' outputs as the last update applied them, by URN; emptied by each update. */
  private readonly declaredRoutes = new Map<string, Record<string, any>>();

  /**
   * Read from the checkpoint with its secrets shown (one `stack export --show-secrets` after each
   * update, at the first read): the route's rules hold the tester header's value, a secret, so
   * without them the whole rule list is one opaque secret that nothing could be compared with.
   * The values stay in this process; nothing of them is logged.
   */
  async declaredRouting(
    routing: StageOutputs["routing"],
  ): Promise<Record<string, any> | undefined> {
    const known = this.routingUrns.get(routing.id);
    const cached = known ? this.declaredRoutes.get(known) : undefined;
    if (cached) return cached;
    const found = findRoutingResource(await this.resourcesWithSecrets(), routing);
    if (!found?.outputs) return undefined;
    const outputs = revealSecrets(found.outputs) as Record<string, any>;
    this.routingUrns.set(routing.id, found.urn);
    this.declaredRoutes.set(found.urn, outputs);
    return outputs;
  }

  private readonly deploymentUrns = new Map<string, string>();

  /** The URN of the Deployment `namespace/name` in the stack's state, or undefined when it has none. */
  private async deploymentUrn(ref: string): Promise<string | undefined> {
    const known = this.deploymentUrns.get(ref);
    if (known) return known;
    const found = (await this.resources()).find(
      (r) =>
        r.type === DEPLOYMENT_TYPE &&
        `${r.outputs?.metadata?.namespace}/${r.outputs?.metadata?.name}` === ref,
    );
    if (found) this.deploymentUrns.set(ref, found.urn);
    return found?.urn;
  }

  /** URNs of routing resources by id: a routing resource keeps its URN for the stack's life. */
  private readonly routingUrns = new Map<string, string>();

  /**
   * The URN of the routing resource `routing` (the stack's outputs name it by id), found in the
   * stack's state. Not there: nothing is updated, since an untargeted update could change more.
   */
  private async routingUrn(routing: StageOutputs["routing"]): Promise<string> {
    const known = this.routingUrns.get(routing.id);
    if (known) return known;
    const found = findRoutingResource(await this.resources(), routing);
    if (!found)
      throw new RoutingNotFoundError(
        routing.id,
        `no ${routing.kind} with that id in the state of stack ${this.stage}, so an update limited to it cannot run (nothing was changed); \`slipway status\` shows the stage`,
      );
    this.routingUrns.set(routing.id, found.urn);
    return found.urn;
  }

  /**
   * The plaintext outputs of the last update, with one `stack output --show-secrets` (the
   * Automation API's `outputs()` runs it twice, once masked to learn which are secret; the
   * pipeline reads the values only).
   */
  private async outputValues(): Promise<Record<string, unknown>> {
    const { stdout } = await this.cli(["stack", "output", "--json", "--show-secrets"]);
    return JSON.parse(stdout) as Record<string, unknown>;
  }

  /**
   * One CLI command on this stack, run the way the Automation API runs its own (the
   * workspace's CLI, environment and working directory; errors are its CommandErrors).
   */
  private cli(
    args: string[],
    extra: string[] = [],
    trailing: string[] = [],
  ): Promise<{ stdout: string; stderr: string }> {
    const ws = this.stack.workspace as LocalWorkspace;
    const env: Record<string, string> = {
      PULUMI_DEBUG_COMMANDS: "true",
      ...(ws.pulumiHome ? { PULUMI_HOME: ws.pulumiHome } : {}),
      ...ws.envVars,
    };
    // PulumiCommand.run is the SDK's own command runner (marked internal, not in its typings).
    const command = ws.pulumiCommand as PulumiCommand & InternalRun;
    return command.run(
      [...args, ...extra, "--stack", this.stage, ...trailing],
      ws.workDir,
      env,
      this.options.onOutput,
    );
  }

  async preview(): Promise<Record<string, number>> {
    try {
      const result = await this.stack.preview({
        color: "never",
        configFile: this.options.configFile,
      });
      return result.changeSummary as Record<string, number>;
    } catch (err) {
      throw asLockError(err);
    }
  }

  /** The resources of the stack's last checkpoint. */
  async resources(): Promise<StateResource[]> {
    return ((await this.stack.exportStack()).deployment.resources ?? []) as StateResource[];
  }

  /**
   * Operations an update killed mid-way left pending in the checkpoint (the engine
   * refuses to update over pending creates). They are removed from the state, as
   * `pulumi stack export | import` with the list emptied does, and returned so
   * the caller can record them; the next update converges each resource from its
   * last recorded state (an update or delete is re-applied; a resource whose
   * create was cut short is created again).
   */
  async clearPendingOperations(): Promise<{ type: string; urn: string }[]> {
    const state = await this.stack.exportStack();
    const pending = (state.deployment?.pending_operations ?? []) as {
      type?: string;
      resource?: { urn?: string };
    }[];
    if (pending.length === 0) return [];
    state.deployment.pending_operations = [];
    await this.stack.importStack(state);
    return pending.map((p) => ({ type: String(p.type), urn: String(p.resource?.urn) }));
  }

  /** Refreshes only `urns` from the cloud (no other resource is read or changed); returns the state. */
  async refresh(urns: string[], message: string): Promise<StateResource[]> {
    this.declaredRoutes.clear();
    try {
      await this.stack.refresh({
        target: urns,
        color: "never",
        message,
        configFile: this.options.configFile,
      });
    } catch (err) {
      throw asLockError(err);
    }
    return this.resources();
  }
}

interface InternalRun {
  run(
    args: string[],
    cwd: string,
    env: Record<string, string>,
    onOutput?: (text: string) => void,
  ): Promise<{ stdout: string; stderr: string }>;
}

/** The engine events of a finished command's `--event-log` file. */
function readEvents(file: string): EngineEvent[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as EngineEvent);
}

/** Engine type token of a Kubernetes Deployment (a slot's workload). */
const DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment";

/** The key that marks a secret value in the engine's checkpoint (Pulumi's `sig.Secret`). */
export const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** A value of an export with --show-secrets, each secret ({<sig>, plaintext: "<JSON>"}) replaced by its value. */
function revealSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealSecrets);
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (SECRET_SIG in o && typeof o.plaintext === "string")
      return revealSecrets(JSON.parse(o.plaintext));
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, revealSecrets(v)]));
  }
  return value;
}

/** The update's change counts per operation ("same", "update", "create", …), from its summary event. */
function summaryOf(events: EngineEvent[]): Record<string, number> {
  const summary = events.find((e) => e.summaryEvent)?.summaryEvent;
  return { ...(summary?.resourceChanges ?? {}) } as Record<string, number>;
}

function asLockError(err: unknown): unknown {
  const text = String((err as Error)?.message ?? err);
  if (/currently locked|conflict: Another update is currently in progress/i.test(text)) {
    return new StackLockedError(
      `the stack is locked by another update in progress: ${text.split("\n").find((l) => /lock/i.test(l)) ?? ""}`.trim(),
    );
  }
  return new EngineError(text);
}

/** An engine failure, led by the engine's diagnostics instead of the whole transcript. */
export class EngineError extends Error {
  constructor(readonly transcript: string) {
    super(summarizeEngineOutput(transcript));
    this.name = "EngineError";
  }
}

/** The `Diagnostics:` block of an engine transcript (each resource's errors), else its `error:` lines. */
export function summarizeEngineOutput(transcript: string): string {
  const lines = transcript.split("\n");
  const start = lines.findIndex((l) => l.trim() === "Diagnostics:");
  if (start >= 0) {
    const block: string[] = [];
    for (const line of lines.slice(start + 1)) {
      if (/^\S/.test(line) && line.trim() !== "") break; // "Resources:", "Outputs:", "Duration:" …
      if (line.trim()) block.push(line.trim());
    }
    if (block.length > 0) return [...new Set(block)].join("\n");
  }
  const errors = [...new Set(lines.map((l) => l.trim()).filter((l) => /(^|\s)error:/.test(l)))];
  return errors.length > 0 ? errors.slice(0, 10).join("\n") : lines.slice(-5).join("\n");
}
