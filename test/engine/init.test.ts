import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installPackedPackage } from "../support/packedPackage";

/**
 * A project `slipway init` wrote, outside this repository, with the packed package installed
 * (installPackedPackage, as test/unit/package.test.ts installs it: the tarball extracted,
 * dependencies linked from this repository's node_modules), previewed by the real engine on its local stage (render
 * mode: no cluster). Run by the Pulumi CLI on PATH (scripts/with-env.sh --engine), through the
 * Node.js host's ts-node: the project has no precompiled build.
 */
const scratch = mkdtempSync(join(tmpdir(), "slipway-init-engine-"));
const project = join(scratch, "services", "payments");

/** This run's environment, without the repository's precompiled run path or loader flags. */
function childEnv(): NodeJS.ProcessEnv {
  const {
    NODE_PATH: _path,
    NODE_OPTIONS: _options,
    PULUMI_LANGUAGE_NODEJS_RUN_PATH: _run,
    ...env
  } = process.env;
  return {
    ...env,
    PATH: `${dirname(process.execPath)}:${env.PATH ?? ""}`,
    PULUMI_BACKEND_URL: `file://${join(scratch, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "slipway-local",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

beforeAll(() => {
  // The package, and what the project adds for the Node.js host: ts-node (typescript is a dependency).
  const bin = installPackedPackage(scratch, childEnv(), { extraDependencies: ["ts-node"] }).bin
    .slipway!;
  const init = spawnSync(bin, ["init", project, "--service", "payments", "--runtime", "go"], {
    cwd: scratch,
    encoding: "utf8",
    env: childEnv(),
    timeout: 30_000,
  });
  expect(init.stderr).toBe("");
  expect(init.status).toBe(0);
  mkdirSync(join(scratch, "state"));
}, 300_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("a project slipway init wrote", () => {
  it("previews its local stage on the real engine, with no cluster", () => {
    const pulumi = (args: string[]) =>
      spawnSync("pulumi", [...args, "--non-interactive"], {
        cwd: project,
        encoding: "utf8",
        env: childEnv(),
        timeout: 300_000,
      });
    const select = pulumi(["stack", "select", "--create", "local"]);
    expect(select.status, select.stderr).toBe(0);
    const preview = pulumi(["preview", "--stack", "local", "--json"]);
    expect(preview.status, preview.stderr + preview.stdout.slice(-2000)).toBe(0);
    const steps = (JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[] }).steps;
    // The type is the last of the URN's parent-qualified type chain.
    const types = steps.map((s) => s.urn.split("::")[2]!.split("$").pop());
    expect(types).toContain("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute");
    expect(types.filter((t) => t === "kubernetes:apps/v1:Deployment")).toHaveLength(2);
    expect(steps.every((s) => s.op === "create")).toBe(true);
    // A preview renders nothing: the manifests come with `pulumi up`.
    expect(existsSync(join(project, ".slipway", "rendered", "local"))).toBe(false);
  });
});
