import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ClusterInfo,
  clusterClient,
  clusterDown,
  clusterSignalSync,
  clusterStatus,
  clusterUp,
  conditionStatus,
  findClusterToolchain,
  type KubeClient,
  listening,
  PARTS,
} from "../../src/cluster";
import { runs } from "../../src/cluster/lifecycle";

/**
 * The local cluster for real: kine, kube-apiserver, controller-manager,
 * scheduler, kwok and Traefik, in a state directory of its own. An HTTPRoute
 * with two weighted backends steers real requests through Traefik to two
 * loopback listeners on the Services' ClusterIPs.
 */

const GATEWAY = { name: "test-gateway", namespace: "gateway-system" };
const NS = "split-test";
const REQUESTS = 400;

function projectDir(): string {
  return join(__dirname, "..", "..");
}

/** A listener on ip:port that answers with its name. */
function backend(name: string, ip: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((_req, res) => {
      res.setHeader("connection", "close");
      res.end(name);
    });
    server.once("error", reject);
    server.listen(port, ip, () => resolve(server));
  });
}

function route(weights: { a: number; b: number }) {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "split", namespace: NS },
    spec: {
      parentRefs: [{ name: GATEWAY.name, namespace: GATEWAY.namespace }],
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: "/" } }],
          backendRefs: [
            { name: "backend-a", port: 8080, weight: weights.a },
            { name: "backend-b", port: 8080, weight: weights.b },
          ],
        },
      ],
    },
  };
}

/** Sends `n` requests through the gateway, one at a time; counts answers by body. */
async function sendThroughGateway(url: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    const key = res.ok ? body : `HTTP ${res.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Polls until the gateway answers 200 from both backends' mix (bounded). */
async function waitRouted(url: string, expectShares: (c: Record<string, number>) => boolean) {
  const deadline = Date.now() + 60_000;
  let last: Record<string, number> = {};
  while (Date.now() < deadline) {
    try {
      last = await sendThroughGateway(url, 20);
      if (expectShares(last)) return;
    } catch {
      // Traefik may not have the route yet.
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `the gateway did not route as expected within 60 s; last: ${JSON.stringify(last)}`,
  );
}

describe("cluster: the local Kubernetes cluster", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-test-"));
  const options = {
    projectDir: projectDir(),
    stateDir,
    gateways: [GATEWAY],
    namespaces: [NS],
    onProgress: (line: string) => process.stderr.write(`${line}\n`),
  };
  let info: ClusterInfo;
  let client: KubeClient;
  const servers: Server[] = [];

  // If the worker dies before afterAll, nothing of this test may keep running.
  const onExit = () => clusterSignalSync(options);

  beforeAll(async () => {
    process.once("exit", onExit);
    info = await clusterUp(options);
    expect(info.started).toEqual([...PARTS]);
    client = clusterClient(info);
  });

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    await clusterDown(options);
    process.off("exit", onExit);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("starts every part on 127.0.0.1 and reports all of them ready", async () => {
    const status = await clusterStatus(options);
    expect(status.parts.map((p) => [p.name, p.running, p.ready])).toEqual(
      PARTS.map((p) => [p, true, true]),
    );
    expect(info.apiServerUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(info.gatewayUrl).toBe(`http://127.0.0.1:${info.gatewayPort}`);
    expect(Object.keys(info.pids).sort()).toEqual([...PARTS].sort());
    const gw = await client.getObject<{ spec: { listeners: { port: number }[] } }>(
      "gateway.networking.k8s.io/v1",
      "Gateway",
      GATEWAY.name,
      GATEWAY.namespace,
    );
    expect(gw?.spec.listeners[0]!.port).toBe(info.gatewayPort);
    expect(conditionStatus(gw, "Programmed")).toBe("True");
  });

  it("splits requests through Traefik by the HTTPRoute's weights, to listeners on the Services' ClusterIPs", async () => {
    const ips: Record<string, string> = {};
    for (const name of ["backend-a", "backend-b"]) {
      const svc = await client.apply({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: NS },
        spec: { type: "ClusterIP", ports: [{ name: "http", port: 8080, targetPort: 8080 }] },
      });
      const ip = (svc as unknown as { spec: { clusterIP: string } }).spec.clusterIP;
      expect(ip).toMatch(/^127\.100\.\d+\.\d+$/);
      ips[name] = ip;
      servers.push(await backend(name, ip, 8080));
    }
    await client.apply(route({ a: 80, b: 20 }));
    await waitRouted(
      info.gatewayUrl,
      (c) => (c["backend-a"] ?? 0) > 0 && (c["backend-b"] ?? 0) > 0,
    );

    const counts = await sendThroughGateway(info.gatewayUrl, REQUESTS);
    process.stderr.write(`split at 80/20: ${JSON.stringify(counts)}\n`);
    expect(counts["backend-a"]! + counts["backend-b"]!).toBe(REQUESTS);
    expect(Math.abs(counts["backend-b"]! / REQUESTS - 0.2)).toBeLessThanOrEqual(0.03);

    // A weight change through the API moves the traffic.
    await client.apply(route({ a: 50, b: 50 }));
    await waitRouted(info.gatewayUrl, (c) => Math.abs((c["backend-b"] ?? 0) - 10) <= 2);
    const after = await sendThroughGateway(info.gatewayUrl, REQUESTS);
    process.stderr.write(`split at 50/50: ${JSON.stringify(after)}\n`);
    expect(Math.abs(after["backend-b"]! / REQUESTS - 0.5)).toBeLessThanOrEqual(0.03);
  });

  it("reuses the running parts when started again", async () => {
    const again = await clusterUp(options);
    expect(again.started).toEqual([]);
    expect(again.pids).toEqual(info.pids);
    expect(again.gatewayPort).toBe(info.gatewayPort);
    expect(again.apiServerUrl).toBe(info.apiServerUrl);
  });

  it("names a crashed part in status, and up starts it again", async () => {
    process.kill(info.pids["kube-scheduler"]!, "SIGKILL");
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const s = await clusterStatus(options);
      if (!s.parts.find((p) => p.name === "kube-scheduler")!.running) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const status = await clusterStatus(options);
    const down = status.parts.filter((p) => !p.running).map((p) => p.name);
    expect(down).toEqual(["kube-scheduler"]);
    expect(status.parts.find((p) => p.name === "kube-scheduler")!.detail).toMatch(/has exited/);

    const healed = await clusterUp(options);
    expect(healed.started).toEqual(["kube-scheduler"]);
    expect(healed.pids["kube-scheduler"]).not.toBe(info.pids["kube-scheduler"]);
    expect(healed.pids.kine).toBe(info.pids.kine);
    info = healed;
    expect((await clusterStatus(options)).parts.every((p) => p.ready)).toBe(true);
  });

  it("down stops every recorded process and leaves nothing listening", async () => {
    const recorded = JSON.parse(readFileSync(join(stateDir, "cluster.json"), "utf8")) as {
      ports: Record<string, number>;
      parts: Record<string, { pid: number; command: string }>;
    };
    expect(Object.keys(recorded.parts).sort()).toEqual([...PARTS].sort());
    await clusterDown(options);
    for (const [name, port] of Object.entries(recorded.ports))
      expect([name, await listening(port, 500)]).toEqual([name, false]);
    for (const [name, r] of Object.entries(recorded.parts))
      expect([name, runs(r.pid, r.command)]).toEqual([name, false]);
    const status = await clusterStatus(options);
    expect(status.parts.filter((p) => p.running)).toEqual([]);
  });
});

describe("cluster: a part that fails to start", () => {
  it("is started twice, then named with its exit code and the last lines of its log; nothing this up started keeps running", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-fail-"));
    try {
      const broken = join(stateDir, "kine-that-fails");
      writeFileSync(
        broken,
        "#!/bin/sh\necho 'cannot open the database: disk on fire' >&2\nexit 3\n",
        {
          mode: 0o755,
        },
      );
      const real = findClusterToolchain();
      const toolchain = { ...real, bin: { ...real.bin, kine: broken } };
      const o = {
        projectDir: projectDir(),
        stateDir,
        gateways: [GATEWAY],
        namespaces: [],
        toolchain,
      };
      await expect(clusterUp(o)).rejects.toThrow(
        /kine exited during start-up \(exit code 3\)[\s\S]*disk on fire/,
      );
      // Started twice (its log holds both), then given up.
      const log = readFileSync(join(stateDir, "logs", "kine.log"), "utf8");
      expect(log.match(/^==== .* slipway cluster up: /gm)).toHaveLength(2);
      const status = await clusterStatus(o);
      expect(status.parts.filter((p) => p.running)).toEqual([]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("killed by a signal on its first start, is started once more and named with the signal", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-flaky-"));
    const o = {
      projectDir: projectDir(),
      stateDir,
      gateways: [GATEWAY],
      namespaces: [],
      toolchain: findClusterToolchain(),
    };
    try {
      // kine: killed (SIGKILL, before a line of output) the first time, the real one after.
      // The wrapper stays the recorded process, so it passes a stop on to the real kine.
      const mark = join(stateDir, "kine-was-killed");
      const kine = join(stateDir, "kine-killed-once");
      writeFileSync(
        kine,
        [
          "#!/bin/sh",
          `if [ ! -e '${mark}' ]; then : > '${mark}'; kill -KILL $$; fi`,
          `'${o.toolchain.bin.kine}' "$@" & child=$!`,
          "trap 'kill -TERM $child; wait $child; exit 0' TERM INT",
          "wait $child",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      // kube-apiserver: fails each time, so that the up ends here, after kine is ready.
      const apiServer = join(stateDir, "kube-apiserver-that-fails");
      writeFileSync(apiServer, "#!/bin/sh\necho 'no certificates today' >&2\nexit 4\n", {
        mode: 0o755,
      });
      o.toolchain = {
        ...o.toolchain,
        bin: { ...o.toolchain.bin, kine, "kube-apiserver": apiServer },
      };
      const progress: string[] = [];
      await expect(
        clusterUp({ ...o, onProgress: (line: string) => progress.push(line) }),
      ).rejects.toThrow(
        /kube-apiserver exited during start-up \(exit code 4\)[\s\S]*no certificates/,
      );
      expect(progress).toContainEqual(
        expect.stringMatching(
          /^ {2}kine … exited during start-up \(killed by SIGKILL\); pid \d+ is gone, starting it once more$/,
        ),
      );
      expect(progress).toContainEqual(
        expect.stringMatching(/^ {2}kine … started \(pid \d+\), ready/),
      );
      expect(progress).toContainEqual(
        expect.stringMatching(
          /^ {2}kube-apiserver … exited during start-up \(exit code 4\); pid \d+ is gone, starting it once more$/,
        ),
      );
      // What this up started, the kine that came up on its second start included, is stopped.
      const recorded = JSON.parse(readFileSync(join(stateDir, "cluster.json"), "utf8")) as {
        ports: Record<string, number>;
      };
      expect(await listening(recorded.ports.kine!, 500)).toBe(false);
      const status = await clusterStatus(o);
      expect(status.parts.filter((p) => p.running)).toEqual([]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

/** Whether `pid` is a process that runs (a zombie has ended; only its parent's wait is missing). */
function runningPid(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Every part started by `script` (none of these tests gets past the first part or two). */
function fakeToolchain(dir: string, bin: Partial<Record<(typeof PARTS)[number], string>>) {
  const missing = join(dir, "not-a-part");
  return {
    dir,
    bin: { ...Object.fromEntries(PARTS.map((p) => [p, missing])), ...bin } as Record<
      (typeof PARTS)[number],
      string
    >,
    kwokStages: missing,
    gatewayApiCrds: [],
  };
}

describe("cluster: a part counts as exited only once it is reaped", () => {
  it("one that runs but is never ready is not taken for exited, not started twice, and is stopped when up gives up", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-hung-"));
    try {
      // A wrapper that execs: the pid stays, its command line becomes sleep's (a /proc check by
      // command line called this "exited", started a second copy and left both running).
      const pids = join(stateDir, "kine-pids");
      const kine = join(stateDir, "kine-that-hangs");
      writeFileSync(kine, `#!/bin/sh\necho $$ >> '${pids}'\nexec sleep 600\n`, { mode: 0o755 });
      const progress: string[] = [];
      const o = {
        projectDir: projectDir(),
        stateDir,
        gateways: [GATEWAY],
        namespaces: [],
        toolchain: fakeToolchain(stateDir, { kine }),
        readyTimeoutMs: 4000,
        onProgress: (line: string) => progress.push(line),
      };
      await expect(clusterUp(o)).rejects.toThrow(
        /kine not ready after 4s \(nothing listens on 127\.0\.0\.1:\d+\)/,
      );
      const started = readFileSync(pids, "utf8").trim().split("\n").map(Number);
      expect(started).toHaveLength(1);
      expect(progress.filter((l) => l.includes("starting it once more"))).toEqual([]);
      expect(started.filter(runningPid)).toEqual([]);
      expect((await clusterStatus(o)).parts.filter((p) => p.running)).toEqual([]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("before a second start, the first one's process and whatever it left in its group are gone", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "slipway-cluster-leftover-"));
    try {
      // kine, first start: leaves a child behind in its process group and exits 5; second start:
      // listens on its address (ready). kube-apiserver fails each time, which ends the up.
      const leftovers = join(stateDir, "leftovers");
      const mark = join(stateDir, "kine-started-once");
      const kine = join(stateDir, "kine-exits-once");
      const listen = `const [h, p] = process.argv[1].split(":"); require("node:net").createServer().listen(Number(p), h)`;
      writeFileSync(
        kine,
        [
          "#!/bin/sh",
          `if [ ! -e '${mark}' ]; then : > '${mark}'; sleep 600 & echo $! > '${leftovers}'; exit 5; fi`,
          `exec '${process.execPath}' -e '${listen}' "$2"`,
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      const apiServer = join(stateDir, "kube-apiserver-that-fails");
      writeFileSync(apiServer, "#!/bin/sh\nexit 4\n", { mode: 0o755 });
      const progress: string[] = [];
      const o = {
        projectDir: projectDir(),
        stateDir,
        gateways: [GATEWAY],
        namespaces: [],
        toolchain: fakeToolchain(stateDir, { kine, "kube-apiserver": apiServer }),
        readyTimeoutMs: 30_000,
        onProgress: (line: string) => progress.push(line),
      };
      await expect(clusterUp(o)).rejects.toThrow(/kube-apiserver exited during start-up/);
      const retry = progress.find((l) => l.startsWith("  kine … exited during start-up"));
      expect(retry).toMatch(
        /^ {2}kine … exited during start-up \(exit code 5\); pid \d+ is gone, starting it once more$/,
      );
      const first = Number(/pid (\d+)/.exec(retry!)![1]);
      expect(runningPid(first)).toBe(false);
      expect(runningPid(Number(readFileSync(leftovers, "utf8")))).toBe(false);
      expect(progress).toContainEqual(
        expect.stringMatching(/^ {2}kine … started \(pid \d+\), ready/),
      );
      // The kine that came up on its second start is stopped with the rest.
      const recorded = JSON.parse(readFileSync(join(stateDir, "cluster.json"), "utf8")) as {
        ports: Record<string, number>;
      };
      expect(await listening(recorded.ports.kine!, 500)).toBe(false);
      expect((await clusterStatus(o)).parts.filter((p) => p.running)).toEqual([]);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
