import type { Command } from "commander";
import { resolve } from "node:path";
import { clusterDown, clusterStatus, clusterUp } from "../../cluster";

/** `slipway cluster up | down | status`: the local Kubernetes cluster (README, "Local cluster"). */
export function register(program: Command): void {
  const cluster = program
    .command("cluster")
    .description(
      "the local Kubernetes cluster on 127.0.0.1: kine, kube-apiserver, controller-manager, scheduler, kwok (one fake node), Traefik (Gateway API)",
    );
  const common = (c: Command) =>
    c
      .option(
        "--project <dir>",
        "the Slipway project (its Pulumi.local.yaml names the Gateway)",
        ".",
      )
      .option(
        "--state-dir <dir>",
        "where the cluster keeps its state (default <project>/.slipway/cluster)",
      );
  const progress = (line: string) => process.stderr.write(`${line}\n`);

  common(cluster.command("up"))
    .description("start whatever part is not running and wait until all are ready (idempotent)")
    .option("--json", "print the cluster's addresses as JSON")
    .action(async (o: { project: string; stateDir?: string; json?: boolean }) => {
      const info = await clusterUp({
        projectDir: resolve(o.project),
        ...(o.stateDir ? { stateDir: resolve(o.stateDir) } : {}),
        onProgress: progress,
      });
      if (o.json) process.stdout.write(JSON.stringify(info, null, 2) + "\n");
      else
        process.stdout.write(
          `kubeconfig: ${info.kubeconfig}\nAPI server: ${info.apiServerUrl}\ngateway:    ${info.gatewayUrl}\n`,
        );
    });

  common(cluster.command("down"))
    .description("stop exactly the processes `cluster up` started (state and certificates stay)")
    .action(async (o: { project: string; stateDir?: string }) => {
      await clusterDown({
        projectDir: resolve(o.project),
        ...(o.stateDir ? { stateDir: resolve(o.stateDir) } : {}),
        onProgress: progress,
      });
    });

  common(cluster.command("status"))
    .description("each part: running and ready; exit code 1 when a part is not")
    .option("--json", "JSON instead of a table")
    .action(async (o: { project: string; stateDir?: string; json?: boolean }) => {
      const s = await clusterStatus({
        projectDir: resolve(o.project),
        ...(o.stateDir ? { stateDir: resolve(o.stateDir) } : {}),
      });
      if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + "\n");
      else {
        for (const p of s.parts)
          process.stdout.write(
            `${p.name.padEnd(24)} ${(p.pid ? `pid ${p.pid}` : "").padEnd(10)} ${p.ready ? "ready" : p.running ? "NOT READY" : "NOT RUNNING"}${p.detail ? `  (${p.detail})` : ""}\n`,
          );
        if (s.info)
          process.stdout.write(
            `kubeconfig: ${s.info.kubeconfig}\ngateway:    ${s.info.gatewayUrl}\n`,
          );
      }
      if (!s.parts.every((p) => p.ready)) process.exitCode = 1;
    });
}
