import type { NotifyEvent } from "./events";
import type { NotifyFormat } from "./spec";

/** The request body for a webhook of `format`. Pure. */
export function payloadFor(format: NotifyFormat, event: NotifyEvent): unknown {
  return format === "slack" ? slackPayload(event) : genericPayload(event);
}

/** Slipway's own JSON: the event as it is, with a schema name for receivers. */
export function genericPayload(event: NotifyEvent): Record<string, unknown> {
  return { schema: "slipway.notification/v1", ...event };
}

const ICON: Record<NotifyEvent["kind"], string> = {
  started: ":rocket:",
  stepDone: ":arrow_forward:",
  analysis: ":bar_chart:",
  paused: ":double_vertical_bar:",
  promoted: ":white_check_mark:",
  rolledBack: ":leftwards_arrow_with_hook:",
  failed: ":x:",
  drift: ":warning:",
};

/** A Slack incoming-webhook message: `text` for notifications and clients without blocks. */
export function slackPayload(event: NotifyEvent): { text: string; blocks: unknown[] } {
  const fields = [
    `*stage* ${event.stage}`,
    `*release* ${event.releaseId}`,
    ...(event.version ? [`*version* ${event.version}`] : []),
    ...(event.weights
      ? [`*weights* blue ${event.weights.blue}% / green ${event.weights.green}%`]
      : []),
  ];
  return {
    text: `${ICON[event.kind]} ${event.summary}`,
    blocks: [
      {
        type: "section",
        text: { type: "mrkdwn", text: `${ICON[event.kind]} ${escapeSlack(event.summary)}` },
      },
      {
        type: "context",
        elements: fields.map((text) => ({ type: "mrkdwn", text: escapeSlack(text) })),
      },
    ],
  };
}

/** Slack's three control characters in mrkdwn. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
