import { callJson, describeAttempts, type Attempt } from "./http";
import { HeaderError, redact, resolveHeaders, urlForLog } from "./secrets";
import { failurePolicyOf, hooksAt, type Hook, type HookPoint } from "./spec";

/** What a hook learns about the release: the documented JSON body (README, "Release hooks"). */
export interface HookContext {
  releaseId: string;
  stage: string;
  service: string;
  artifact: { image: string; digest: string; version: string; revision?: string };
  candidateSlot: string;
  stableSlot: string;
  weights: { blue: number; green: number };
  /** For step points: 0-based index, 1-based number, Argo-style description. */
  step?: { index: number; description: string };
  /** The stage's endpoint from its outputs, where acceptance tests send the tester header. */
  endpoint?: string;
  testerHeader?: { name: string; value: string };
  /** Why the release is rolling back (onRollback). */
  reason?: string;
}

export interface HookBody {
  hook: string;
  at: HookPoint;
  releaseId: string;
  stage: string;
  service: string;
  artifact: HookContext["artifact"];
  candidateSlot: string;
  stableSlot: string;
  step: { index: number; number: number; description: string } | null;
  weights: { blue: number; green: number };
  endpoint: string | null;
  /** The header that routes a request to the candidate; its value only with sendTesterHeader. */
  testerHeader: { name: string; value?: string } | null;
  reason?: string;
}

/** The body sent to `hook`. Pure. The tester header's value only when the hook asked for it. */
export function hookBody(hook: Hook, ctx: HookContext): HookBody {
  return {
    hook: hook.name,
    at: hook.at,
    releaseId: ctx.releaseId,
    stage: ctx.stage,
    service: ctx.service,
    artifact: ctx.artifact,
    candidateSlot: ctx.candidateSlot,
    stableSlot: ctx.stableSlot,
    step: ctx.step
      ? { index: ctx.step.index, number: ctx.step.index + 1, description: ctx.step.description }
      : null,
    weights: ctx.weights,
    endpoint: ctx.endpoint ?? null,
    testerHeader: ctx.testerHeader
      ? {
          name: ctx.testerHeader.name,
          ...(hook.sendTesterHeader ? { value: ctx.testerHeader.value } : {}),
        }
      : null,
    ...(ctx.reason !== undefined ? { reason: ctx.reason } : {}),
  };
}

export type HookDecision =
  { action: "continue" } | { action: "rollback" | "pause"; hook: string; reason: string };

export type HookLogEvent = "hook.called" | "hook.passed" | "hook.failed";

/** A release log entry about a hook; the adapter adds stage, release and actor. */
export interface HookLogEntry {
  event: HookLogEvent;
  step?: { index: number; description: string };
  weights?: { blue: number; green: number };
  verdict?: "pass" | "fail";
  figures: Record<string, unknown>;
  reason?: string;
}

export interface HookRunnerOptions {
  hooks: readonly Hook[];
  /** Where `{fromEnv}` header values come from. */
  env: Record<string, string | undefined>;
  /** Appends to the release log; awaited, so a record is stored before the hook goes on. */
  record: (entry: HookLogEntry) => unknown;
  /** Key prefix for errors, e.g. `slipway:canary.hooks`. */
  key?: string;
  backoffMs?: (attempt: number) => number;
}

/**
 * Runs the hooks at one point of a release, in declared order, logging each
 * call and its result. The first failing hook whose policy is rollback or
 * pause decides; later hooks at that point are not called.
 */
export class HookRunner {
  private readonly key: string;

  constructor(private readonly options: HookRunnerOptions) {
    this.key = options.key ?? "slipway:canary.hooks";
  }

  /** Throws MissingSecretError naming the hook and variable when an `{fromEnv}` header has no value. */
  preflight(): void {
    this.options.hooks.forEach((hook, i) =>
      resolveHeaders(hook.headers, this.options.env, `${this.key}[${i}]`),
    );
  }

  has(point: HookPoint, stepIndex?: number): boolean {
    return hooksAt(this.options.hooks, point, stepIndex).length > 0;
  }

  async run(point: HookPoint, ctx: HookContext): Promise<HookDecision> {
    for (const hook of hooksAt(this.options.hooks, point, ctx.step?.index)) {
      const result = await this.call(hook, ctx);
      if (result.ok) continue;
      const policy = failurePolicyOf(hook);
      if (policy === "ignore") continue;
      return { action: policy, hook: hook.name, reason: result.reason };
    }
    return { action: "continue" };
  }

  private async call(hook: Hook, ctx: HookContext): Promise<{ ok: boolean; reason: string }> {
    const index = this.options.hooks.indexOf(hook);
    let resolved: ReturnType<typeof resolveHeaders>;
    try {
      resolved = resolveHeaders(hook.headers, this.options.env, `${this.key}[${index}]`);
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err;
      resolved = { headers: {}, secrets: [] };
      return this.finish(hook, ctx, [], resolved.secrets, err.message);
    }
    const secrets = [...resolved.secrets, ...(ctx.testerHeader ? [ctx.testerHeader.value] : [])];
    const common = {
      step: ctx.step,
      weights: ctx.weights,
      figures: {
        hook: hook.name,
        at: hook.at,
        method: hook.method,
        url: urlForLog(hook.url),
        // Header names only: values may be tokens.
        headers: Object.keys(resolved.headers),
        sendTesterHeader: hook.sendTesterHeader,
        timeoutSeconds: hook.timeoutSeconds,
        retries: hook.retries,
        failurePolicy: failurePolicyOf(hook),
      },
    };
    await this.options.record({ event: "hook.called", ...common });
    const result = await callJson({
      url: hook.url,
      method: hook.method,
      headers: {
        ...resolved.headers,
        "x-slipway-hook": hook.name,
        "x-slipway-release": ctx.releaseId,
      },
      body: hookBody(hook, ctx),
      timeoutSeconds: hook.timeoutSeconds,
      retries: hook.retries,
      backoffMs: this.options.backoffMs,
      redact: (text) => redact(text, secrets),
    });
    return this.finish(
      hook,
      ctx,
      result.attempts,
      secrets,
      result.ok
        ? undefined
        : `hook ${hook.name} at ${hook.at} failed: ${describeAttempts(result.attempts)}`,
    );
  }

  private async finish(
    hook: Hook,
    ctx: HookContext,
    attempts: Attempt[],
    secrets: string[],
    failure: string | undefined,
  ): Promise<{ ok: boolean; reason: string }> {
    const clean = (text: string) => redact(text, secrets);
    const policy = failurePolicyOf(hook);
    await this.options.record({
      event: failure === undefined ? "hook.passed" : "hook.failed",
      step: ctx.step,
      weights: ctx.weights,
      verdict: failure === undefined ? "pass" : "fail",
      figures: {
        hook: hook.name,
        at: hook.at,
        attempts: attempts.map((a) => ({
          ...a,
          ...(a.error !== undefined ? { error: clean(a.error) } : {}),
          ...(a.excerpt !== undefined ? { excerpt: clean(a.excerpt) } : {}),
        })),
        ...(failure !== undefined ? { failurePolicy: policy } : {}),
      },
      ...(failure !== undefined
        ? {
            reason: clean(
              `${failure}${policy === "ignore" ? " (ignored: failurePolicy ignore)" : ""}`,
            ),
          }
        : {}),
    });
    return { ok: failure === undefined, reason: failure === undefined ? "" : clean(failure) };
  }
}
