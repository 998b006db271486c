import { z } from "zod";
import { HOOK_POINTS, type HookPoint } from "../domain";

/**
 * Release hooks (`slipway:canary.hooks`): HTTP calls the pipeline makes at
 * named points of a release. Pure: the schema, the defaults and the rule for
 * which hooks run at a point. The HTTP side is in ./call.ts.
 */

// Where a hook runs: src/domain, since the machine's typed pause reasons name the point.
export { HOOK_POINTS, type HookPoint };

/** Points that observe an outcome already reached: a failure there can only be logged. */
export const OBSERVING_POINTS: readonly HookPoint[] = ["postRollout", "onRollback"];
/** Points that are about one step of the plan. */
export const STEP_POINTS: readonly HookPoint[] = ["beforeStep", "afterStep"];

export const FAILURE_POLICIES = ["rollback", "pause", "ignore"] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/**
 * CR, LF, NUL and the other control characters but tab: a value carrying them would end the
 * header early (header injection) and every HTTP client refuses it at send time, mid-release.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export const HEADER_VALUE_ALLOWED =
  "allowed: printable characters, spaces and tabs (no CR, LF or other control characters)";

/** A header value: a literal (not secret), or an environment variable's value read at release time. */
export const headerValueSchema = z.union(
  [
    z.string().refine((v) => !CONTROL_CHARACTER.test(v), { error: HEADER_VALUE_ALLOWED }),
    z
      .object({
        fromEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
          error: "allowed: an environment variable name [A-Za-z_][A-Za-z0-9_]*",
        }),
      })
      .strict(),
  ],
  { error: 'allowed: a string, or {fromEnv: "ENV_VAR_NAME"} to keep a token out of stack files' },
);
export type HeaderValue = z.infer<typeof headerValueSchema>;

export const headersSchema = z.record(
  z.string().regex(/^[A-Za-z0-9-]+$/, { error: "allowed: HTTP header names [A-Za-z0-9-]" }),
  headerValueSchema,
);

const httpUrl = z
  .string({ error: "allowed: an http:// or https:// URL" })
  .refine((v) => /^https?:$/.test(safeUrl(v)?.protocol ?? ""), {
    error: "allowed: an http:// or https:// URL",
  });

function safeUrl(v: string): URL | undefined {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
}

/** True for an https URL or one on this machine: the only places a secret may be sent. */
export function isHttpsOrLoopback(url: string): boolean {
  const u = safeUrl(url);
  if (!u) return false;
  if (u.protocol === "https:") return true;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

export const hookSchema = z
  .object({
    name: z
      .string({ error: "allowed: a name such as acceptance-tests ([a-z0-9-], at most 63)" })
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
        error: "allowed: a name such as acceptance-tests ([a-z0-9-], at most 63)",
      }),
    at: z.enum(HOOK_POINTS, { error: `allowed: ${HOOK_POINTS.join(", ")}` }),
    url: httpUrl,
    method: z.enum(["POST", "PUT"], { error: 'allowed: "POST" or "PUT"' }).default("POST"),
    headers: headersSchema.default({}),
    timeoutSeconds: z
      .number({ error: "allowed: seconds, a number greater than 0 and at most 600" })
      .positive({ error: "allowed: seconds, a number greater than 0 and at most 600" })
      .max(600, { error: "allowed: seconds, a number greater than 0 and at most 600" })
      .default(10),
    retries: z
      .number({ error: "allowed: an integer from 0 to 10" })
      .int({ error: "allowed: an integer from 0 to 10" })
      .min(0, { error: "allowed: an integer from 0 to 10" })
      .max(10, { error: "allowed: an integer from 0 to 10" })
      .default(0),
    /** Omitted: rollback at the gates, ignore at postRollout/onRollback (see failurePolicyOf). */
    failurePolicy: z
      .enum(FAILURE_POLICIES, { error: `allowed: ${FAILURE_POLICIES.join(", ")}` })
      .optional(),
    /** beforeStep/afterStep only: step numbers (1-based, as in `slipway status`), or "all". */
    steps: z
      .union(
        [
          z.literal("all"),
          z.array(z.number().int().min(1), { error: "allowed: step numbers from 1" }).min(1),
        ],
        { error: 'allowed: "all" or a list of step numbers from 1' },
      )
      .optional(),
    /** Put the tester header's secret value in the body: only to https or loopback URLs. */
    sendTesterHeader: z.boolean({ error: "allowed: true or false" }).default(false),
  })
  .strict()
  .superRefine((hook, ctx) => {
    if (hook.sendTesterHeader && !isHttpsOrLoopback(hook.url)) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        input: hook.url,
        message:
          "sendTesterHeader: true would send the tester header's secret value over plain HTTP to another host; " +
          "allowed: an https:// URL or a loopback one (127.0.0.1, ::1, localhost), or sendTesterHeader: false",
      });
    }
    if (hook.steps !== undefined && !STEP_POINTS.includes(hook.at)) {
      ctx.addIssue({
        code: "custom",
        path: ["steps"],
        input: hook.steps,
        message: `applies only to hooks at beforeStep or afterStep (this one is at ${hook.at}); allowed: omit it`,
      });
    }
    if (
      OBSERVING_POINTS.includes(hook.at) &&
      hook.failurePolicy !== undefined &&
      hook.failurePolicy !== "ignore"
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["failurePolicy"],
        input: hook.failurePolicy,
        message: `a hook at ${hook.at} runs after the outcome is reached, so a failure can only be logged; allowed: "ignore" (or omit it)`,
      });
    }
  });
export type Hook = z.infer<typeof hookSchema>;

export const hooksSchema = z.array(hookSchema).superRefine((hooks, ctx) => {
  const seen = new Set<string>();
  hooks.forEach((hook, i) => {
    if (seen.has(hook.name)) {
      ctx.addIssue({
        code: "custom",
        path: [i, "name"],
        input: hook.name,
        message:
          "is the name of an earlier hook; allowed: a name used once (the log tells hooks apart by it)",
      });
    }
    seen.add(hook.name);
  });
});

/** Problems with hooks that need the plan's length (step numbers beyond the plan never run). */
export function stepNumberProblems(
  hooks: readonly Hook[],
  planLength: number,
): { index: number; step: number }[] {
  const out: { index: number; step: number }[] = [];
  hooks.forEach((hook, index) => {
    if (Array.isArray(hook.steps))
      for (const step of hook.steps) if (step > planLength) out.push({ index, step });
  });
  return out;
}

export function failurePolicyOf(hook: Hook): FailurePolicy {
  if (hook.failurePolicy) return hook.failurePolicy;
  return OBSERVING_POINTS.includes(hook.at) ? "ignore" : "rollback";
}

/** The hooks that run at `point` (in declared order); `stepIndex` is 0-based, for step points. */
export function hooksAt(hooks: readonly Hook[], point: HookPoint, stepIndex?: number): Hook[] {
  return hooks.filter((hook) => {
    if (hook.at !== point) return false;
    if (!STEP_POINTS.includes(point)) return true;
    if (hook.steps === undefined || hook.steps === "all") return true;
    return stepIndex !== undefined && hook.steps.includes(stepIndex + 1);
  });
}
