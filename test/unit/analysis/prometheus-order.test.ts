import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderError } from "../../../src/analysis/providers/errors";
import { createPrometheusProvider } from "../../../src/analysis/providers/prometheus";

/**
 * When several queries come back empty, the error names the first in the analysis's own
 * order, however the answers race (the providers tier once failed on a loaded machine
 * because a later query's answer arrived first).
 */
describe("Prometheus provider: which failure is reported", () => {
  let server: Server;
  let url: string;
  const seen: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const query = new URLSearchParams(body).get("query") ?? "";
        seen.push(query);
        const instant = req.url?.startsWith("/api/v1/query?") || req.url === "/api/v1/query";
        const data = { resultType: instant ? "vector" : "matrix", result: [] };
        // The first metric's queries answer last.
        const delay = query.includes("http_requests_total") ? 150 : 0;
        setTimeout(() => res.end(JSON.stringify({ status: "success", data })), delay);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("names the first metric's stable-slot query, not the first answer to arrive", async () => {
    const fetchWindow = createPrometheusProvider({
      url,
      service: "checkout",
      stableSlot: "blue",
      candidateSlot: "green",
      stepSeconds: 1,
    });
    const end = new Date("2026-12-01T12:00:00Z");
    const err = await fetchWindow({ start: new Date(end.getTime() - 60_000), end }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(
      /^prometheus: no data for sum\(increase\(http_requests_total\{service="checkout",slot="blue"/,
    );
    // The later metrics were asked too (their empty answers arrived first).
    expect(seen.some((q) => !q.includes("http_requests_total"))).toBe(true);
  });
});
