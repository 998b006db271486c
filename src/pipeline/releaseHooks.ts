import type { StageConfig } from "../config/schema";
import { parseImageRef } from "../governance/artifact";
import { HookRunner, resolveHeaders, type HookPoint } from "../hooks";
import { Notifier } from "../notify";
import { verifiedRecords, type StoreLog } from "../store/store";
import { weightsOf, type CheckpointDecision, type StageState } from "./machine";
import { describeStep } from "./plan";
import type { PlanStep } from "../domain";

/**
 * The pipeline side of hooks and notifications. Notifications hear the release
 * log (every decision is written there first); hooks run at the state
 * machine's checkpoints. Both read `{fromEnv}` header values from `env`,
 * checked before anything changes.
 */

/** Throws MissingSecretError naming the key and variable of any `{fromEnv}` header without a value. */
export function checkHookSecrets(
  config: StageConfig,
  env: Record<string, string | undefined>,
): void {
  config.canary.hooks.forEach((h, i) =>
    resolveHeaders(h.headers, env, `slipway:canary.hooks[${i}]`),
  );
  config.notifications.webhooks.forEach((w, i) =>
    resolveHeaders(w.headers, env, `slipway:notifications.webhooks[${i}]`),
  );
}

/** A notifier subscribed to `log`, or undefined when the stage has no webhooks. */
export async function startNotifier(
  config: StageConfig,
  log: StoreLog,
  env: Record<string, string | undefined>,
): Promise<Notifier | undefined> {
  if (config.notifications.webhooks.length === 0) return undefined;
  const notifier = new Notifier({
    webhooks: config.notifications.webhooks,
    service: config.service.name,
    env,
    // Deliveries recorded before a resume are not repeated.
    history: await verifiedRecords(log),
    record: (entry) => log.append(entry),
  });
  log.onAppend((record) => notifier.observe(record));
  return notifier;
}

export interface CheckpointArgs {
  config: StageConfig;
  log: StoreLog;
  env: Record<string, string | undefined>;
  plan: readonly PlanStep[];
  /** The stage as the last successful update left it. */
  state: () => StageState;
  endpoint?: string;
  /** The tester header (a secret stack output), read only when a hook runs. */
  testerHeader: () => Promise<{ name: string; value: string } | undefined>;
}

/** The machine's `checkpoint` effect: records the point, then runs the hooks there. */
export function checkpointEffect(
  a: CheckpointArgs,
): (point: HookPoint, at?: { index?: number; reason?: string }) => Promise<CheckpointDecision> {
  const stage = a.config.stage;
  const base = () => ({ stage, releaseId: a.state().release!.id });
  const runner = new HookRunner({
    hooks: a.config.canary.hooks,
    env: a.env,
    record: (entry) => a.log.append({ ...base(), ...entry }),
  });
  let header: { name: string; value: string } | undefined | null = null;
  return async (point, at = {}) => {
    const state = a.state();
    const record = state.release!;
    const planned = at.index === undefined ? undefined : a.plan[at.index];
    const step = planned ? { index: at.index!, description: describeStep(planned) } : undefined;
    // The facts notifications announce, written where the machine establishes them
    // (release.promoted is written by applyUpdate when the promote update lands, once).
    if (point === "afterStep" && step)
      await a.log.append({ ...base(), event: "step.completed", step, weights: weightsOf(state) });
    if (!runner.has(point, at.index)) return { action: "continue" };
    if (header === null) header = await a.testerHeader();
    const decision = await runner.run(point, {
      releaseId: record.id,
      stage,
      service: a.config.service.name,
      artifact: {
        image: record.artifact.image,
        digest: parseImageRef(record.artifact.image, "artifact").digest,
        version: record.artifact.version,
        ...(record.artifact.revision ? { revision: record.artifact.revision } : {}),
      },
      candidateSlot: record.candidateSlot,
      stableSlot: state.stable,
      weights: weightsOf(state),
      ...(step ? { step } : {}),
      ...(a.endpoint ? { endpoint: a.endpoint } : {}),
      ...(header ? { testerHeader: header } : {}),
      ...(at.reason !== undefined ? { reason: at.reason } : {}),
    });
    return decision.action === "continue"
      ? decision
      : { action: decision.action, reason: decision.reason, hook: decision.hook };
  };
}
