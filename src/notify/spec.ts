import { z } from "zod";
import { headersSchema } from "../hooks/spec";

/**
 * `slipway:notifications`: webhooks that hear about releases. Pure schema.
 * A notification never changes a release's outcome (./notifier.ts).
 */

/** The release events a webhook can subscribe to. */
export const NOTIFY_EVENTS = [
  "started",
  "stepDone",
  "analysis",
  "paused",
  "promoted",
  "rolledBack",
  "failed",
  "drift",
] as const;
export type NotifyKind = (typeof NOTIFY_EVENTS)[number];

export const NOTIFY_FORMATS = ["generic", "slack"] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

export const webhookSchema = z
  .object({
    name: z
      .string({ error: "allowed: a name such as team-chat ([a-z0-9-], at most 63)" })
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
        error: "allowed: a name such as team-chat ([a-z0-9-], at most 63)",
      }),
    url: z
      .string({ error: "allowed: an http:// or https:// URL" })
      .regex(/^https?:\/\/[^\s]+$/, { error: "allowed: an http:// or https:// URL" }),
    /** generic: Slipway's JSON event; slack: an incoming-webhook message {text, blocks}. */
    format: z.enum(NOTIFY_FORMATS, { error: 'allowed: "generic" or "slack"' }).default("generic"),
    /** Which events; omitted: all of them. */
    events: z
      .array(z.enum(NOTIFY_EVENTS, { error: `allowed: ${NOTIFY_EVENTS.join(", ")}` }))
      .min(1, {
        error: `allowed: at least one of ${NOTIFY_EVENTS.join(", ")} (or omit it for all)`,
      })
      .optional(),
    headers: headersSchema.default({}),
    timeoutSeconds: z
      .number({ error: "allowed: seconds, a number greater than 0 and at most 60" })
      .positive({ error: "allowed: seconds, a number greater than 0 and at most 60" })
      .max(60, { error: "allowed: seconds, a number greater than 0 and at most 60" })
      .default(5),
    retries: z
      .number({ error: "allowed: an integer from 0 to 10" })
      .int({ error: "allowed: an integer from 0 to 10" })
      .min(0, { error: "allowed: an integer from 0 to 10" })
      .max(10, { error: "allowed: an integer from 0 to 10" })
      .default(2),
  })
  .strict();
export type Webhook = z.infer<typeof webhookSchema>;

export const notificationsSchema = z
  .object({
    webhooks: z
      .array(webhookSchema)
      .default([])
      .superRefine((hooks, ctx) => {
        const seen = new Set<string>();
        hooks.forEach((h, i) => {
          if (seen.has(h.name))
            ctx.addIssue({
              code: "custom",
              path: [i, "name"],
              input: h.name,
              message: "is the name of an earlier webhook; allowed: a name used once",
            });
          seen.add(h.name);
        });
      }),
  })
  .strict();

export const subscribes = (webhook: Webhook, kind: NotifyKind): boolean =>
  webhook.events === undefined || webhook.events.includes(kind);
