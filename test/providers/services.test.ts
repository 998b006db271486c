/**
 * The reference services (examples/services/{go,rust}), built by
 * scripts/build-services.sh exactly as releases are, then run as real
 * processes on loopback. Both runtimes get the same assertions: the HTTP
 * contract, the Prometheus metrics canary analysis reads, the fault knobs,
 * configuration validation and graceful shutdown (docs/services.md).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./servers";

const ROOT = resolve(__dirname, "../..");
const BUILD_TIMEOUT_MS = 20 * 60_000; // a cold Rust build on 2 cores takes ~2 minutes
const RUNTIMES = ["go", "rust"] as const;
type Runtime = (typeof RUNTIMES)[number];

const binaries = new Map<Runtime, string>();
const children = new Set<ChildProcess>();

beforeAll(async () => {
  const { stdout } = await promisify(execFile)("bash", ["scripts/build-services.sh"], {
    cwd: ROOT,
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  // One "sha256  path" line per service.
  for (const line of stdout.trim().split("\n")) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw new Error(`unexpected build-services output line: ${line}`);
    const name = basename(m[2]);
    if (name === "slipway-demo-go") binaries.set("go", m[2]);
    if (name === "slipway-demo-rust") binaries.set("rust", m[2]);
  }
  expect([...binaries.keys()].sort()).toEqual(["go", "rust"]);
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

interface Service {
  url: string;
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const LABELS = { service: "", slot: "green", version: "1.4.2" };

/** Starts a service on a free loopback port and waits until /healthz answers. */
async function startService(runtime: Runtime, env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const child = spawn(binaries.get(runtime)!, [], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PORT: String(port),
      BIND_ADDR: "127.0.0.1",
      SERVICE_NAME: `demo-${runtime}`,
      SLOT: LABELS.slot,
      VERSION: LABELS.version,
      REVISION: "0123abc",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-16_000));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once("exit", (code, signal) => res({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${runtime} service exited (${child.exitCode}):\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${runtime} service did not answer /healthz in 10 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, child, output: () => output, exit };
}

async function stop(svc: Service): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (svc.child.exitCode === null && svc.child.signalCode === null) svc.child.kill("SIGTERM");
  const timer = setTimeout(() => svc.child.kill("SIGKILL"), 15_000);
  const result = await svc.exit;
  clearTimeout(timer);
  return result;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (samples only). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

async function metrics(svc: Service): Promise<Sample[]> {
  const res = await fetch(`${svc.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return parseMetrics(await res.text());
}

/** The one sample with exactly these labels (undefined when absent). */
function sample(
  samples: Sample[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const want = Object.entries(labels).sort();
  const found = samples.filter(
    (s) =>
      s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(want),
  );
  expect(found.length, `${name}${JSON.stringify(labels)} appears at most once`).toBeLessThanOrEqual(
    1,
  );
  return found[0]?.value;
}

/** SplitMix64's step applied n times to 0: what /work?iterations=n returns, in hex. */
function splitmixChain(n: number): string {
  const mask = (1n << 64n) - 1n;
  let x = 0n;
  for (let i = 0; i < n; i++) {
    x = (x + 0x9e3779b97f4a7c15n) & mask;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    x = z ^ (z >> 31n);
  }
  return x.toString(16).padStart(16, "0");
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe.each(RUNTIMES)("%s reference service", (runtime) => {
  const labels = () => ({ ...LABELS, service: `demo-${runtime}` });

  it("answers /healthz, /readyz and /version", async () => {
    const svc = await startService(runtime);
    try {
      expect(await getJson(`${svc.url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
      expect(await getJson(`${svc.url}/readyz`)).toEqual({
        status: 200,
        body: { status: "ready" },
      });
      expect(await getJson(`${svc.url}/version`)).toEqual({
        status: 200,
        body: {
          service: `demo-${runtime}`,
          version: "1.4.2",
          slot: "green",
          runtime,
          revision: "0123abc",
        },
      });
      expect((await fetch(`${svc.url}/no-such-path`)).status).toBe(404);
    } finally {
      expect(await stop(svc)).toEqual({ code: 0, signal: null });
    }
  });

  it("serves /work and counts it in http_requests_total and the latency histogram", async () => {
    const svc = await startService(runtime);
    try {
      const before = await metrics(svc);
      // Both outcome series exist from the start, at zero, so error ratios are defined.
      expect(sample(before, "http_requests_total", { ...labels(), code: "200" })).toBe(0);
      expect(sample(before, "http_requests_total", { ...labels(), code: "500" })).toBe(0);
      expect(sample(before, "service_info", { ...labels(), revision: "0123abc", runtime })).toBe(1);

      const expected = splitmixChain(1000);
      for (let i = 0; i < 5; i++) {
        const { status, body } = await getJson(`${svc.url}/work?iterations=1000`);
        expect(status).toBe(200);
        expect(body).toMatchObject({ ...labels(), runtime, iterations: 1000, result: expected });
      }
      expect((await getJson(`${svc.url}/work`)).status).toBe(200); // default amount of work
      expect((await getJson(`${svc.url}/work?iterations=-1`)).status).toBe(400);
      // Probes and scrapes are not application traffic and are not counted.
      await fetch(`${svc.url}/healthz`);
      await fetch(`${svc.url}/readyz`);

      const after = await metrics(svc);
      expect(sample(after, "http_requests_total", { ...labels(), code: "200" })).toBe(6);
      expect(sample(after, "http_requests_total", { ...labels(), code: "400" })).toBe(1);
      expect(sample(after, "http_requests_total", { ...labels(), code: "500" })).toBe(0);
      expect(sample(after, "http_request_duration_seconds_count", labels())).toBe(7);
      const buckets = after.filter((s) => s.name === "http_request_duration_seconds_bucket");
      expect(buckets.map((b) => b.labels.le)).toEqual([
        "0.001",
        "0.0025",
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1",
        "2.5",
        "+Inf",
      ]);
      expect(
        sample(after, "http_request_duration_seconds_bucket", { ...labels(), le: "+Inf" }),
      ).toBe(7);
      expect(sample(after, "http_request_duration_seconds_sum", labels())).toBeLessThan(1);
    } finally {
      expect(await stop(svc)).toEqual({ code: 0, signal: null });
    }
  });

  it('FAULT_ERROR_RATIO=1 answers every /work with 500, counted as code="500"', async () => {
    const svc = await startService(runtime, { FAULT_ERROR_RATIO: "1" });
    try {
      for (let i = 0; i < 4; i++) {
        const { status, body } = await getJson(`${svc.url}/work?iterations=10`);
        expect(status).toBe(500);
        expect(body.error).toMatch(/FAULT_ERROR_RATIO/);
      }
      expect((await getJson(`${svc.url}/version`)).status).toBe(200); // only /work is faulted
      const m = await metrics(svc);
      expect(sample(m, "http_requests_total", { ...labels(), code: "500" })).toBe(4);
      expect(sample(m, "http_requests_total", { ...labels(), code: "200" })).toBe(1);
    } finally {
      expect(await stop(svc)).toEqual({ code: 0, signal: null });
    }
  });

  it("FAULT_LATENCY_MS raises the request duration histogram", async () => {
    const fast = await startService(runtime);
    const slow = await startService(runtime, { FAULT_LATENCY_MS: "120" });
    try {
      for (const svc of [fast, slow]) {
        for (let i = 0; i < 3; i++)
          expect((await getJson(`${svc.url}/work?iterations=10`)).status).toBe(200);
      }
      const fastSum = sample(await metrics(fast), "http_request_duration_seconds_sum", labels())!;
      const slowMetrics = await metrics(slow);
      const slowSum = sample(slowMetrics, "http_request_duration_seconds_sum", labels())!;
      expect(fastSum).toBeLessThan(0.1);
      expect(slowSum).toBeGreaterThanOrEqual(3 * 0.12);
      expect(slowSum).toBeGreaterThan(fastSum + 0.3);
      // All three land above the 100 ms bucket.
      expect(
        sample(slowMetrics, "http_request_duration_seconds_bucket", { ...labels(), le: "0.1" }),
      ).toBe(0);
      expect(
        sample(slowMetrics, "http_request_duration_seconds_bucket", { ...labels(), le: "2.5" }),
      ).toBe(3);
    } finally {
      expect(await stop(fast)).toEqual({ code: 0, signal: null });
      expect(await stop(slow)).toEqual({ code: 0, signal: null });
    }
  });

  const badValues: Array<[string, string]> = [
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["SLOT", "purple"],
    ["FAULT_ERROR_RATIO", "1.5"],
    ["FAULT_ERROR_RATIO", "lots"],
    ["FAULT_LATENCY_MS", "-5"],
    ["SERVICE_NAME", "Not_A_Label"],
    ["VERSION", "1.0 beta"],
    ["BIND_ADDR", "localhost:80"],
    ...(runtime === "rust" ? ([["TOKIO_WORKER_THREADS", "0"]] as Array<[string, string]>) : []),
  ];
  it.each(badValues)("rejects %s=%s: exits non-zero naming the variable", (name, value) => {
    const r = spawnSync(binaries.get(runtime)!, [], {
      env: { PATH: process.env.PATH ?? "", PORT: "18999", [name]: value },
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`invalid ${name}=${JSON.stringify(value)}`);
  });

  it("names a bad flag the same way", () => {
    const r = spawnSync(binaries.get(runtime)!, ["--slot", "teal"], {
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('invalid --slot="teal"');
  });

  it("drains on SIGTERM: readiness fails first, in-flight requests finish, exit 0", async () => {
    // Timeline: request in flight at 0 (takes 2.5 s), SIGTERM at ~0.2 s, drain delay
    // until ~1.7 s, then the server waits for the in-flight request. Generous margins
    // so a loaded CI machine does not race the delay.
    const svc = await startService(runtime, {
      FAULT_LATENCY_MS: "2500",
      SHUTDOWN_DELAY_MS: "1500",
    });
    const inFlight = fetch(`${svc.url}/work?iterations=10`);
    await new Promise((r) => setTimeout(r, 200));
    svc.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 150));
    // During the drain delay: not ready, still alive.
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect((await inFlight).status).toBe(200);
    expect(await svc.exit).toEqual({ code: 0, signal: null });
    expect(svc.output()).toMatch(/"msg":"stopped"/);
  });

  it("stops cleanly on SIGINT", async () => {
    const svc = await startService(runtime);
    svc.child.kill("SIGINT");
    expect(await svc.exit).toEqual({ code: 0, signal: null });
  });

  if (runtime === "go") {
    it("runs with the GOMAXPROCS it is given and prints it", async () => {
      const svc = await startService(runtime, { GOMAXPROCS: "1" });
      try {
        expect(svc.output()).toMatch(/"gomaxprocs":1\b/);
        expect(svc.output()).toMatch(/"gomemlimit":"unlimited"/);
      } finally {
        await stop(svc);
      }
    });
  } else {
    it("builds its Tokio runtime from TOKIO_WORKER_THREADS", async () => {
      const svc = await startService(runtime, { TOKIO_WORKER_THREADS: "3" });
      try {
        expect(svc.output()).toMatch(/"tokio_worker_threads":3\b/);
        const tasks = readdirSync(`/proc/${svc.child.pid}/task`);
        const workers = tasks.filter(
          (t) =>
            readFileSync(join(`/proc/${svc.child.pid}/task`, t, "comm"), "utf8").trim() ===
            "slipway-worker",
        );
        expect(workers).toHaveLength(3);
      } finally {
        await stop(svc);
      }
    });
  }
});
