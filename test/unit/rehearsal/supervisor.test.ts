import { describe, expect, it } from "vitest";
import { observedStep, SplitRecorder } from "../../../src/rehearsal/split";
import {
  desiredFromApi,
  servedBetween,
  servedFromMetrics,
} from "../../../src/rehearsal/supervisor";
import { summaryJson } from "../../../src/rehearsal/summary";

const deployment = (slot: string, replicas: number, image = "r/c@sha256:" + "a".repeat(64)) => ({
  metadata: { name: `checkout-${slot}` },
  spec: {
    replicas,
    template: {
      spec: {
        containers: [
          {
            image,
            env: [
              { name: "SLOT", value: slot },
              { name: "VERSION", value: "1.0.0" },
            ],
          },
        ],
      },
    },
  },
});
const service = (slot: string, clusterIP: string) => ({
  metadata: { name: `checkout-${slot}` },
  spec: { clusterIP, ports: [{ name: "http", port: 80, targetPort: "http" }] },
});

describe("slot supervisor: what should run, from the API's objects", () => {
  it("each slot listens on its Service's ClusterIP and port, with the Deployment's env", () => {
    const { slots, problems } = desiredFromApi(
      [deployment("blue", 2), deployment("green", 0), { metadata: { name: "other" } }],
      [service("blue", "127.100.12.7"), service("green", "127.100.200.3")],
      "checkout",
    );
    expect(problems).toEqual([]);
    expect(slots.blue).toMatchObject({
      host: "127.100.12.7",
      port: 80,
      replicas: 2,
      env: { SLOT: "blue", VERSION: "1.0.0" },
    });
    expect(slots.green).toMatchObject({ host: "127.100.200.3", replicas: 0 });
  });

  it("refuses a ClusterIP outside loopback and waits for a Service without one", () => {
    const { slots, problems } = desiredFromApi(
      [deployment("blue", 1), deployment("green", 1)],
      [service("blue", "10.96.0.12")],
      "checkout",
    );
    expect(slots).toEqual({});
    expect(problems).toEqual([
      expect.stringMatching(
        /Service checkout-blue has ClusterIP 10\.96\.0\.12, which is not a loopback address/,
      ),
      "slot green: Service checkout-green has no ClusterIP and port yet",
    ]);
  });
});

describe("requests served, from the services' own counters", () => {
  const exposition = `# HELP http_requests_total HTTP requests served
# TYPE http_requests_total counter
http_requests_total{code="200",service="checkout",slot="green",version="1.1.0"} 812
http_requests_total{code="500",service="checkout",slot="green",version="1.1.0"} 143
http_requests_total{code="404",service="checkout",slot="green",version="1.1.0"} 1e0
http_request_duration_seconds_count{service="checkout"} 956
`;
  it("sums http_requests_total over its codes, and its 5xx apart", () => {
    expect(servedFromMetrics(exposition)).toEqual({ total: 956, errors: 143 });
    expect(servedFromMetrics("")).toEqual({ total: 0, errors: 0 });
  });

  it("differences of two readings are what each slot served in between", () => {
    expect(
      servedBetween(
        { blue: { total: 100, errors: 0 }, green: { total: 5, errors: 1 } },
        { blue: { total: 1000, errors: 0 }, green: { total: 105, errors: 20 } },
      ),
    ).toEqual({ blue: { total: 900, errors: 0 }, green: { total: 100, errors: 19 } });
  });
});

describe("split per stretch of held weights", () => {
  const reading = (blue: number, green: number) =>
    Promise.resolve({ blue: { total: blue, errors: 0 }, green: { total: green, errors: 0 } });

  it("opens a stretch when weights are read back, closes it when an update starts", async () => {
    const r = new SplitRecorder("green");
    r.held({ blue: 100, green: 0 }, true, reading(0, 0), 1000);
    r.changing(reading(500, 0), 2000);
    r.held({ blue: 80, green: 20 }, true, reading(510, 0), 3000);
    // The same weights read back again (a drift check) continue the stretch.
    r.held({ blue: 80, green: 20 }, true, reading(700, 50), 3500);
    r.changing(reading(1310, 200), 4000);
    r.held({ blue: 100, green: 0 }, false, reading(1320, 202), 5000);
    const steps = await r.finish(reading(1420, 202), 6000);
    expect(steps.map((s) => [s.candidateWeight, s.requests, s.candidateShare, s.verified])).toEqual(
      [
        [0, { candidate: 0, stable: 500, total: 500 }, 0, true],
        [20, { candidate: 200, stable: 800, total: 1000 }, 20, true],
        [0, { candidate: 0, stable: 100, total: 100 }, 0, false],
      ],
    );
    expect(steps[1]).toMatchObject({ startedAt: 3000, endedAt: 4000 });
  });

  it("has no share when nothing was served", () => {
    const s = observedStep(
      { weights: { blue: 50, green: 50 }, verified: true, at: 0 },
      10,
      { blue: { total: 3, errors: 0 }, green: { total: 3, errors: 0 } },
      { blue: { total: 3, errors: 0 }, green: { total: 3, errors: 0 } },
      "blue",
    );
    expect(s.candidateShare).toBeUndefined();
    expect(s.candidateWeight).toBe(50);
  });

  it("summary.json carries per release the outcome and per step weight, observed share and counts", () => {
    const json = summaryJson({
      ok: true,
      mode: "cluster",
      gatewayUrl: "http://127.0.0.1:30080",
      durationMs: 1,
      releases: [
        {
          runtime: "go",
          version: "1.1.0",
          expected: "promoted",
          result: { outcome: "promoted", exitCode: 0, releaseId: "r-1" },
          steps: [
            observedStep(
              { weights: { blue: 80, green: 20 }, verified: true, at: 0 },
              2000,
              { blue: { total: 0, errors: 0 }, green: { total: 0, errors: 0 } },
              { blue: { total: 791, errors: 0 }, green: { total: 209, errors: 2 } },
              "green",
            ),
          ],
        },
      ],
    });
    expect(json.releases[0]).toMatchObject({
      releaseId: "r-1",
      outcome: "promoted",
      ok: true,
      steps: [
        {
          weights: { blue: 80, green: 20 },
          candidateWeight: 20,
          observedCandidateShare: 20.9,
          requests: { candidate: 209, stable: 791, total: 1000 },
          errors: { candidate: 2, stable: 0 },
          durationMs: 2000,
        },
      ],
    });
  });
});
