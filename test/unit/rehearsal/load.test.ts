import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  describeServerErrors,
  sendRequests,
  untilNoRouteServes,
} from "../../../src/rehearsal/load";

describe("the load generator's tally of 5xx answers", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** A loopback server answering the given statuses in turn. */
  const answering = async (statuses: number[]) => {
    let next = 0;
    server = createServer((_req, res) => {
      res.statusCode = statuses[Math.min(next++, statuses.length - 1)]!;
      res.end("x");
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/work`;
  };

  it("counts 5xx by code, and apart those before the first 2xx (a stage not serving yet)", async () => {
    const url = await answering([502, 502, 500, 200, 200, 503, 200]);
    const since = Date.now();
    const out = await sendRequests({ url, count: 7, concurrency: 1 });
    expect(out).toMatchObject({ sent: 7, ok: 3, serverErrors: 4, serverErrorsBeforeServing: 3 });
    expect(out.serverErrorCodes).toEqual({ 500: 1, 502: 2, 503: 1 });
    expect(out.firstOkAt).toBeGreaterThanOrEqual(out.serverErrorSpan!.first);
    expect(out.serverErrorSpan!.last).toBeGreaterThanOrEqual(out.firstOkAt!);
    expect(describeServerErrors(out, since)).toMatch(
      /^500×1 502×2 503×1, from \d+\.\d s to \d+\.\d s, 3 of them before the first 2xx at \d+\.\d s$/,
    );
  });

  it("says nothing when every answer was 2xx", async () => {
    const out = await sendRequests({ url: await answering([200]), count: 3, concurrency: 1 });
    expect(out).toMatchObject({ ok: 3, serverErrors: 0 });
    expect(out.serverErrorsBeforeServing).toBeUndefined();
    expect(describeServerErrors(out, 0)).toBe("");
  });
});

describe("untilNoRouteServes", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const gateway = async (answer: (host: string | undefined) => number) => {
    server = createServer((req, res) => {
      res.statusCode = answer(req.headers.host);
      res.end();
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  };

  it("returns once the Gateway answers 404 for the host, not before", async () => {
    let asked = 0;
    const url = await gateway((host) => (host === "checkout.local" && ++asked < 3 ? 502 : 404));
    await untilNoRouteServes({ url, host: "checkout.local", timeoutMs: 5000 });
    expect(asked).toBe(3);
  });

  it("throws after its time, naming the host and the last answer", async () => {
    const url = await gateway(() => 200);
    await expect(
      untilNoRouteServes({ url, host: "checkout.local", timeoutMs: 300 }),
    ).rejects.toThrow(/still routes host checkout\.local after 300 ms \(last answer: 200\)/);
  });
});
