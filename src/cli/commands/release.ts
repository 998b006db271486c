import { InvalidArgumentError, type Command } from "commander";
import { release } from "../../pipeline/release";
import { RefusedError } from "../../pipeline/errors";
import {
  approve,
  history,
  promote,
  rollback,
  status,
  summarize,
  type StageStatus,
} from "../../pipeline/operations";
import { rollbackExitCode } from "../exitCodes";
import { ExitCode } from "../../domain";
import { makeReporter } from "../reporter";
import { brokenLogMessage } from "../../pipeline/log";
import { describeLock } from "../../pipeline/engineLock";
import { planCheck } from "./plan";
import { whileHandlingSignals } from "./signals";
import { STORE_OPTION_HELP } from "../storeOption";

interface Common {
  stage: string;
  projectDir?: string;
  backend?: string;
  logDir?: string;
  store?: string;
  json?: boolean;
}

/** `store`: the command reads or writes the stage's lease or release log, and so takes `--store`. */
const common = (cmd: Command, uses: { store?: true } = {}) => {
  cmd
    .option("--project-dir <dir>", "directory with Pulumi.yaml (default: nearest one up from here)")
    .option(
      "--backend <url>",
      "Pulumi backend URL (default: $PULUMI_BACKEND_URL, else file://<project>/.slipway/state)",
    )
    .option("--log-dir <dir>", "release log directory (default: next to a file backend's state)");
  if (uses.store) cmd.option("--store <url>", STORE_OPTION_HELP);
  return cmd.option("--json", "JSON Lines events instead of human output");
};

const ctxArgs = (o: Common) => ({
  stage: o.stage,
  projectDir: o.projectDir,
  backendUrl: o.backend,
  logDir: o.logDir,
  store: o.store,
});

/** The stage's lease as `status` prints it: who holds it, since when, until when, and where. */
export function describeLease(lease: NonNullable<StageStatus["lease"]>): string {
  if (lease.unreadable)
    return `could not be read from ${lease.store} (${lease.unreadable}); counted as held`;
  const h = lease.holder;
  if (!h) return `${lease.where ?? lease.store} names no holder; counted as held`;
  const runner = h.runnerId ? `, runner ${h.runnerId}` : "";
  const job = h.ciJobUrl ? `, ${h.ciJobUrl}` : "";
  const expiry = h.expiresAt
    ? lease.live
      ? `, expires ${h.expiresAt}`
      : `, EXPIRED at ${h.expiresAt}: no longer counts, the next release --resume or rollback takes it over`
    : lease.live
      ? ", until its process ends"
      : ": its process is gone";
  return `held by ${h.what} on ${h.host} (pid ${h.pid}${runner}${job}) since ${h.since}${expiry} (${lease.where ?? lease.store})`;
}

/** Commander reports an InvalidArgumentError as a usage error (exit 2). */
function parseStep(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`got ${JSON.stringify(value)}; allowed: a step number from 1`);
  return n;
}

export function register(program: Command): void {
  common(
    program
      .command("release")
      .description(
        "release an artifact into a stage: deploy to the idle slot, step traffic, analyse, promote or roll back",
      )
      .requiredOption("--stage <stage>", "the stage (stack) to release into")
      .option("--image <ref>", "the artifact, pinned by digest: repo@sha256:<64 hex>")
      .option("--version <label>", "the release's version label")
      .option("--revision <sha>", "source revision of the artifact")
      .option(
        "--attestation <file>",
        "DSSE envelope (in-toto SLSA provenance) signed for the image digest",
      )
      .option(
        "--resume",
        "continue (or finish) the release in progress, from where the stack says it stands",
      )
      .option("--smoke-url <url>", "base URL for the smoke check through the tester header route")
      .option(
        "--prometheus-url <url>",
        "Prometheus for the analysis (default: slipway:kubernetes.prometheusUrl)",
      )
      .option(
        "--plan-check",
        "run `slipway plan` first and start only if every invariant holds (default on where slipway:promotion.requireApproval is true)",
      )
      .option("--no-plan-check", "skip the plan check"),
    { store: true },
  ).action(
    async (
      o: Common & {
        image?: string;
        version?: string;
        revision?: string;
        attestation?: string;
        resume?: boolean;
        smokeUrl?: string;
        prometheusUrl?: string;
        planCheck?: boolean;
      },
    ) => {
      // Missing flags are usage errors (exit 2), before anything is read.
      const missing = o.resume
        ? []
        : [!o.image && "--image <repo@sha256:...>", !o.version && "--version <label>"].filter(
            Boolean,
          );
      if (missing.length > 0) {
        process.stderr.write(
          `slipway release: ${missing.join(" and ")} required (or --resume to continue the release in progress)\n`,
        );
        process.exitCode = ExitCode.usage;
        return;
      }
      const refusedByPlan = await planCheck({
        ...ctxArgs(o),
        image: o.resume ? undefined : o.image,
        version: o.version,
        revision: o.revision,
        flag: o.planCheck,
        print: (text) => (o.json ? process.stderr : process.stdout).write(text + "\n"),
      });
      if (refusedByPlan) {
        process.exitCode = refusedByPlan.exitCode;
        return;
      }
      const result = await whileHandlingSignals("release", (signal) =>
        release({ ...ctxArgs(o), ...o, signal, report: makeReporter(!!o.json) }),
      );
      process.exitCode = result.exitCode;
    },
  );

  common(
    program
      .command("promote")
      .description(
        "promote the artifact that passed one stage into the next (same digest), after soak, approval and freeze gates",
      )
      .requiredOption("--from <stage>", "source stage, where the release ended promoted")
      .requiredOption("--to <stage>", "target stage")
      .option(
        "--image <ref>",
        "which promoted artifact (default: the source's latest completed release)",
      )
      .option(
        "--attestation <file>",
        "DSSE envelope for the artifact, verified against the target stage's key",
      )
      .option("--smoke-url <url>", "base URL for the smoke check")
      .option("--prometheus-url <url>", "Prometheus for the analysis"),
    { store: true },
  ).action(
    async (
      o: Omit<Common, "stage"> & {
        from: string;
        to: string;
        image?: string;
        attestation?: string;
        smokeUrl?: string;
        prometheusUrl?: string;
      },
    ) => {
      const result = await whileHandlingSignals("promote", (signal) =>
        promote({
          signal,
          ...o,
          projectDir: o.projectDir,
          backendUrl: o.backend,
          logDir: o.logDir,
          report: makeReporter(!!o.json),
        }),
      );
      process.exitCode = result.exitCode;
    },
  );

  common(
    program
      .command("rollback")
      .description(
        "back to known-good from any point: weight 0 mid-canary, flip back after promotion, or restore the previous release",
      )
      .requiredOption("--stage <stage>", "the stage")
      .option("--reason <text>", "why (goes to the release log)"),
    { store: true },
  ).action(async (o: Common & { reason?: string }) => {
    // A rollback is the update that must land: a signal waits for it instead of leaving a lock.
    const result = await whileHandlingSignals("rollback", () =>
      rollback({
        ...ctxArgs(o),
        reason: o.reason,
        report: makeReporter(!!o.json),
      }),
    );
    process.exitCode = rollbackExitCode(result.outcome);
  });

  common(
    program
      .command("approve")
      .description(
        "record an approval: a paused step of a release, or promoting a release into this stage",
      )
      .requiredOption("--stage <stage>", "the stage the approval is for")
      .requiredOption("--release <id>", "release id (see `slipway history`)")
      .option("--step <n>", "step number (default: any step of the release)", parseStep)
      .option("--reason <text>", "why"),
    { store: true },
  ).action(async (o: Common & { release: string; step?: number; reason?: string }) => {
    try {
      const record = await approve({
        ...ctxArgs(o),
        release: o.release,
        step: o.step,
        reason: o.reason,
      });
      process.stdout.write(
        o.json
          ? JSON.stringify(record) + "\n"
          : `approved ${o.release} for ${o.stage} by ${record.actor} at ${record.at}\n`,
      );
    } catch (err) {
      if (!(err instanceof RefusedError)) throw err;
      process.stderr.write(`slipway approve: ${err.message}\n`);
      process.exitCode = ExitCode.refused;
    }
  });

  common(
    program
      .command("status")
      .description("where the stage and its release stand")
      .requiredOption("--stage <stage>", "the stage"),
    { store: true },
  ).action(async (o: Common) => {
    const s = await status(ctxArgs(o));
    if (o.json) {
      process.stdout.write(JSON.stringify(s) + "\n");
      return;
    }
    const lines = [`stage ${s.stage}: ${s.deployed ? "deployed" : "never deployed"}`];
    if (s.outputs) {
      const o2 = s.outputs;
      lines.push(
        `  stable ${o2.stableSlot} ${o2.releases[o2.stableSlot].version}, candidate ${o2.candidateSlot} ${o2.releases[o2.candidateSlot].version}`,
      );
      lines.push(
        `  weights blue ${o2.weights.blue}% / green ${o2.weights.green}%   routing ${o2.routing.kind} ${o2.routing.id}`,
      );
    }
    if (s.release) {
      const c = s.condition;
      lines.push(
        `  release ${s.release.id} ${s.release.artifact.version}: ${s.release.phase}${s.release.active ? `, step ${s.release.position}/${s.release.steps}${c ? `, ${c.condition.toUpperCase()}` : ""}` : ""}`,
      );
      if (c?.doing) lines.push(`  now: ${c.doing}`);
      if (c?.next && s.release.active) lines.push(`  next: ${c.next}`);
      for (const command of c?.commands ?? []) lines.push(`  run: ${command}`);
      if (s.release.waitingFor) lines.push(`  waiting: ${s.release.waitingFor}`);
      if (s.release.reason) lines.push(`  reason: ${s.release.reason}`);
    }
    if (s.unlanded) {
      const c = s.unlanded.condition;
      lines.push(
        `  release ${s.unlanded.id} ${s.unlanded.version}: ${c.condition.toUpperCase()} before its deploy landed (traffic never moved)`,
      );
      for (const command of c.commands) lines.push(`  run: ${command}`);
    }
    if (s.lease) lines.push(`  lease: ${describeLease(s.lease)}`);
    for (const l of s.engineLocks)
      lines.push(
        `  engine lock: ${describeLock(l)}${l.dead ? "; cleared by the next release --resume or rollback" : ""}`,
      );
    if (s.logProblems.length > 0)
      lines.push(
        `  release log: does not verify (${s.logProblems.length} bad line(s), first line ${s.logProblems[0]!.line}: ${s.logProblems[0]!.problem}); see slipway history --stage ${s.stage}`,
      );
    for (const f of s.flags)
      lines.push(
        `  flag ${f.name}: ${f.enabled ? "on" : "off"}, owner ${f.owner}, expires ${f.expires}${f.health === "ok" ? "" : ` (${f.health.toUpperCase()})`}`,
      );
    process.stdout.write(lines.join("\n") + "\n");
  });

  common(
    program
      .command("history")
      .description("the release log of a stage")
      .requiredOption("--stage <stage>", "the stage")
      .option("--release <id>", "one release only"),
    { store: true },
  ).action(async (o: Common & { release?: string }) => {
    let view: Awaited<ReturnType<typeof history>>;
    try {
      view = await history({ ...ctxArgs(o), release: o.release });
    } catch (err) {
      if (!(err instanceof RefusedError)) throw err;
      process.stderr.write(`slipway history: ${err.message}\n`);
      process.exitCode = ExitCode.refused;
      return;
    }
    const { path, records, problems } = view;
    if (problems.length > 0) {
      // The valid records are still shown: they are what someone recovering needs to read.
      process.stderr.write(`slipway history: ${brokenLogMessage(path, o.stage, problems)}\n`);
      process.exitCode = ExitCode.refused;
    }
    if (o.json) {
      for (const r of records) process.stdout.write(JSON.stringify(r) + "\n");
      return;
    }
    if (!o.release) {
      for (const s of summarize(records)) {
        process.stdout.write(
          `${s.startedAt}  ${s.releaseId}  ${s.artifact?.version ?? "?"}  ${s.outcome ?? "in progress"}\n`,
        );
      }
      return;
    }
    for (const r of records) {
      const w = r.weights ? ` [blue ${r.weights.blue}/green ${r.weights.green}]` : "";
      process.stdout.write(
        `${r.at}  #${r.seq} ${r.event}${r.step ? ` step ${r.step.index + 1} (${r.step.description})` : ""}${w}${r.verdict ? ` ${r.verdict}` : ""}${r.reason ? ` — ${r.reason}` : ""}  (${r.actor})\n`,
      );
    }
  });
}
