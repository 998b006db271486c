import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Hook } from "../hooks";
import type { LogRecord } from "../pipeline/log";
import type { Webhook } from "../notify";

/**
 * The rehearsal's stand-ins for a CI system and a chat channel, on loopback:
 * `/acceptance` is an afterDeploy hook that checks the candidate through the
 * tester header (sent straight to the candidate slot's process: the local
 * stage has no router that reads the header), and `/notify` records the
 * release events the pipeline announces.
 */
export interface HookSink {
  url: string;
  hooks: Hook[];
  webhooks: Webhook[];
  /** Notification summaries received, in order. */
  messages: string[];
  /** Acceptance checks run: slot, status. */
  checks: { releaseId: string; slot: string; status: number }[];
  stop(): Promise<void>;
}

export async function startHookSink(opts: {
  /** Base URL of a slot's process, e.g. http://127.0.0.1:8081. */
  slotUrl: (slot: string) => string | undefined;
  readyPath: string;
}): Promise<HookSink> {
  const messages: string[] = [];
  const checks: HookSink["checks"] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    const answer = async () => {
      let body: any = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
      } catch {
        // answered 400 below
      }
      if (req.url === "/notify") {
        if (typeof body.summary === "string") messages.push(body.summary);
        res.writeHead(204).end();
        return;
      }
      if (req.url === "/acceptance") {
        const base = opts.slotUrl(String(body.candidateSlot));
        const header = body.testerHeader;
        if (!base || !header?.name || !header?.value) {
          res.writeHead(400).end("no candidate or no tester header");
          return;
        }
        // The slot's process starts when the cluster stand-in follows the rendered Deployment,
        // moments after the deploy update: wait for it a bounded while, as a rollout check would.
        let status = 0;
        for (let attempt = 0; attempt < 40; attempt++) {
          try {
            const r = await fetch(new URL(opts.readyPath, base), {
              headers: { [header.name]: header.value },
              signal: AbortSignal.timeout(2000),
            });
            status = r.status;
          } catch {
            status = 0;
          }
          if (status !== 0) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        checks.push({
          releaseId: String(body.releaseId),
          slot: String(body.candidateSlot),
          status,
        });
        const ok = status >= 200 && status < 300;
        res
          .writeHead(ok ? 200 : 502)
          .end(`candidate ${body.candidateSlot} ${opts.readyPath}: ${status}`);
        return;
      }
      res.writeHead(404).end();
    };
    req.on("end", () => void answer());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    hooks: [
      {
        name: "acceptance",
        at: "afterDeploy",
        url: `${url}/acceptance`,
        method: "POST",
        headers: {},
        timeoutSeconds: 20,
        retries: 1,
        failurePolicy: "rollback",
        sendTesterHeader: true,
      },
    ],
    webhooks: [
      {
        name: "rehearsal-sink",
        url: `${url}/notify`,
        format: "generic",
        headers: {},
        timeoutSeconds: 2,
        retries: 1,
      },
    ],
    messages,
    checks,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The report's lines about hooks and notifications, from the release log. Pure. */
export function hookAndNotificationLines(records: readonly LogRecord[]): string[] {
  const hooks = records.filter((r) => r.event === "hook.passed" || r.event === "hook.failed");
  const notes = records.filter(
    (r) => r.event === "notification.delivered" || r.event === "notification.failed",
  );
  if (hooks.length === 0 && notes.length === 0) return [];
  const lines = ["## Hooks and notifications", ""];
  for (const r of hooks) {
    const f = (r.figures ?? {}) as {
      hook?: string;
      at?: string;
      attempts?: { status?: number; error?: string }[];
    };
    const attempts = (f.attempts ?? []).map((a) => a.status ?? a.error).join(", ");
    lines.push(
      `- hook **${f.hook}** at ${f.at}: ${r.event === "hook.passed" ? "passed" : "failed"} (${attempts})`,
    );
  }
  for (const r of notes) {
    const f = (r.figures ?? {}) as { webhook?: string; kind?: string; summary?: string };
    lines.push(
      `- notification ${r.event === "notification.delivered" ? "delivered" : "NOT delivered"} to ${f.webhook}: ${f.summary ?? f.kind}`,
    );
  }
  lines.push("");
  return lines;
}
