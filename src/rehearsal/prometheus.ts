import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { writeFileWhole } from "../files";
import {
  type Child,
  freePort,
  httpOk,
  type PidFile,
  startChild,
  waitUntil,
  which,
} from "../processes";

/**
 * A real Prometheus server (the Debian package's /usr/bin/prometheus) on
 * loopback, scraping both slots' metrics every second. Its data lives in the
 * rehearsal's directory and goes with it.
 */

export interface LocalPrometheus {
  url: string;
  child: Child;
  /** Replaces the scrape targets (a file Prometheus watches; it picks changes up within a second or so). */
  setTargets(targets: string[]): void;
  stop(): Promise<void>;
}

export const PROMETHEUS_HINT =
  "Prometheus is not installed: run `bash scripts/install-test-servers.sh` (installs the Debian package `prometheus`), or put a prometheus binary on PATH or in $SLIPWAY_PROMETHEUS";

export function findPrometheus(): string | undefined {
  const candidates = [process.env.SLIPWAY_PROMETHEUS, "/usr/bin/prometheus", "prometheus"].filter(
    (c): c is string => !!c,
  );
  for (const c of candidates) {
    const found = which(c);
    if (found) return found;
  }
  return undefined;
}

/**
 * Installs the Debian package when no Prometheus is found and apt-get is there (as
 * scripts/install-test-servers.sh does for the tests; its service is not started).
 */
export async function ensurePrometheus(say: (line: string) => void): Promise<string> {
  const found = findPrometheus();
  if (found) return found;
  if (!which("apt-get")) throw new Error(PROMETHEUS_HINT);
  const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
  say("prometheus: not installed; installing the Debian package (apt-get install prometheus)…");
  const run = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const [cmd, ...rest] = [...sudo, ...args];
      const child = spawn(cmd!, rest, {
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
      let err = "";
      child.stderr.on("data", (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
      child.on("error", reject);
      child.on("exit", (code) =>
        code === 0
          ? resolve()
          : reject(
              new Error(
                `${args.join(" ")} failed (exit ${code}): ${err.trim()}\n${PROMETHEUS_HINT}`,
              ),
            ),
      );
    });
  await run(["apt-get", "update", "-qq"]);
  await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]);
  const installed = findPrometheus();
  if (!installed) throw new Error(PROMETHEUS_HINT);
  return installed;
}

export async function startPrometheus(args: {
  dir: string;
  targets: string[];
  metricsPath: string;
  scrapeIntervalSeconds: number;
  pids: PidFile;
}): Promise<LocalPrometheus> {
  const binary = findPrometheus();
  if (!binary) throw new Error(PROMETHEUS_HINT);
  mkdirSync(args.dir, { recursive: true });
  const interval = `${args.scrapeIntervalSeconds}s`;
  const targetsFile = join(args.dir, "targets.json");
  const setTargets = (targets: string[]) => {
    // Prometheus never reads half a file.
    writeFileWhole(targetsFile, JSON.stringify([{ targets, labels: {} }]));
  };
  setTargets(args.targets);
  const config = {
    global: {
      scrape_interval: interval,
      evaluation_interval: interval,
      scrape_timeout: `${Math.max(100, args.scrapeIntervalSeconds * 900)}ms`,
    },
    scrape_configs: [
      {
        job_name: "slipway-rehearsal",
        metrics_path: args.metricsPath,
        // A file, so that targets can follow the slots (on a cluster: their Services' ClusterIPs).
        file_sd_configs: [{ files: [targetsFile], refresh_interval: "1s" }],
      },
    ],
  };
  const configFile = join(args.dir, "prometheus.yml");
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = startChild(
    "prometheus",
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(args.dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1d",
      "--log.level=warn",
    ],
    { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  );
  args.pids.add(child, binary);
  await waitUntil("prometheus", () => httpOk(`${url}/-/ready`), 30_000, child);
  return {
    url,
    child,
    setTargets,
    stop: async () => {
      await child.stop();
      args.pids.remove(child.pid);
    },
  };
}

/** One range query: every series' [unix seconds, value] pairs, keyed by the series' labels. */
export async function queryRange(
  url: string,
  query: string,
  start: number,
  end: number,
  stepSeconds: number,
): Promise<{ metric: Record<string, string>; values: [number, number][] }[]> {
  const body = new URLSearchParams({
    query,
    start: String(start / 1000),
    end: String(end / 1000),
    step: String(stepSeconds),
  });
  const res = await fetch(`${url}/api/v1/query_range`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: body.toString(),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await res.json()) as {
    status: string;
    error?: string;
    data?: { result: { metric: Record<string, string>; values: [number, string][] }[] };
  };
  if (json.status !== "success")
    throw new Error(`prometheus range query failed: ${json.error ?? res.status}: ${query}`);
  return (json.data?.result ?? []).map((s) => ({
    metric: s.metric,
    values: s.values.map(([t, v]) => [t, Number(v)] as [number, number]),
  }));
}
