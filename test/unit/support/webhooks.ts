import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A real HTTP server on loopback that records every request and answers per
 * path: a status sequence (the last one repeats), or "hang" (never answers
 * until the server closes). For hook and notification tests.
 */
export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: any;
}

export interface WebhookServer {
  url: (path: string) => string;
  received: Received[];
  on(path: string, behaviour: number[] | "hang"): void;
  close(): Promise<void>;
}

export async function webhookServer(): Promise<WebhookServer> {
  const received: Received[] = [];
  const plans = new Map<string, number[] | "hang">();
  const served = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const path = (req.url ?? "/").split("?")[0]!;
      received.push({
        method: req.method ?? "",
        path,
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      });
      const plan = plans.get(path) ?? [200];
      if (plan === "hang") return; // answered by close()
      const n = served.get(path) ?? 0;
      served.set(path, n + 1);
      const status = plan[Math.min(n, plan.length - 1)]!;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status >= 300 ? `status ${status} from ${path}` : "ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    on: (path, behaviour) => plans.set(path, behaviour),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
