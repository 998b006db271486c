import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Hook } from "../hooks";
import { isLoopbackHost } from "./load";
import type { LogRecord } from "../pipeline/log";
import type { Webhook } from "../notify";

/**
 * The rehearsal's stand-ins for a CI system and a chat channel, on loopback:
 * `/acceptance` is an afterDeploy hook that checks the candidate through the
 * tester header, and `/notify` records the release events the pipeline
 * announces. On the live cluster the check goes through the Gateway, so
 * Traefik's header route is what sends it to the candidate; in render mode
 * there is no router that reads the header and it goes to the candidate
 * slot's process directly. Either way the candidate must answer `/version`
 * with its own slot and the release's version.
 */
export interface HookSink {
  url: string;
  hooks: Hook[];
  webhooks: Webhook[];
  /** Notification summaries received, in order. */
  messages: string[];
  /** Acceptance checks run: the slot and version expected, what answered, the verdict. */
  checks: AcceptanceCheck[];
  stop(): Promise<void>;
}

export interface AcceptanceCheck {
  releaseId: string;
  slot: string;
  version: string;
  status: number;
  /** What `/version` said: its slot and version, when it answered JSON. */
  answered?: { slot?: string; version?: string };
  ok: boolean;
}

/** Where the acceptance check sends its request for a candidate slot. */
export interface AcceptanceTarget {
  url: string;
  headers?: Record<string, string>;
}

export async function startHookSink(opts: {
  /** Where to reach the candidate: the Gateway (live cluster) or the slot's process. */
  target: (candidateSlot: string) => AcceptanceTarget | undefined;
  /** How long one check waits for the candidate to answer as itself (default 10 s). */
  waitMs?: number;
}): Promise<HookSink> {
  const waitMs = opts.waitMs ?? 10_000;
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
        const slot = String(body.candidateSlot);
        const version = String(body.artifact?.version);
        const target = opts.target(slot);
        const header = body.testerHeader;
        if (!target || !header?.name || !header?.value) {
          res.writeHead(400).end("no candidate or no tester header");
          return;
        }
        if (!isLoopbackHost(new URL(target.url).hostname)) {
          res.writeHead(400).end(`${target.url} is not a loopback address`);
          return;
        }
        // The candidate's process starts when the supervisor sees its Deployment scaled up,
        // moments after the deploy update: retry a bounded while, as a rollout check would.
        const ask = async () => {
          const r = await getJson(new URL("/version", target.url), {
            ...target.headers,
            [header.name]: header.value,
          });
          return { status: r.status, answered: r.body as AcceptanceCheck["answered"] };
        };
        const until = Date.now() + waitMs;
        let { status, answered } = await ask();
        while (!(status >= 200 && status < 300 && answered?.slot === slot) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
          ({ status, answered } = await ask());
        }
        const ok =
          status >= 200 && status < 300 && answered?.slot === slot && answered?.version === version;
        checks.push({
          releaseId: String(body.releaseId),
          slot,
          version,
          status,
          ...(answered ? { answered: { slot: answered.slot, version: answered.version } } : {}),
          ok,
        });
        res
          .writeHead(ok ? 200 : 502)
          .end(
            `candidate ${slot} /version: ${status} (answered slot ${answered?.slot ?? "-"}, version ${answered?.version ?? "-"}; expected ${slot} ${version})`,
          );
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

/**
 * One GET with node:http (fetch cannot set Host, which the Gateway routes by); status 0 when
 * nothing answered within 2 s.
 */
function getJson(
  url: URL,
  headers: Record<string, string>,
): Promise<{ status: number; body?: unknown }> {
  return new Promise((resolve) => {
    const req = request(url, { headers, timeout: 2000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: no answer to compare
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", () => resolve({ status: 0 }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0 }));
    req.end();
  });
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
