import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StageStack } from "../../src/pipeline/stack";
import { previewPlan, ROUTING_TYPES } from "../../src/releasePlan";
import { REPO, scratchProject, type ScratchProject } from "./support/project";

/**
 * `slipway plan` on the real engine (local stage, file backend, Kubernetes
 * provider in render mode): every transition previewed, nothing applied.
 */
const digest = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;
const HTTPROUTE = ROUTING_TYPES[0];

/** Every file under `dir` with its bytes, to show nothing was written. */
function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = readFileSync(p, "utf8");
    }
  };
  walk(dir);
  return out;
}

// Nine and seven engine previews; on a shared 2-core machine one preview can take a minute.
const PLAN_TIMEOUT = 1_500_000;

describe("slipway plan on the real engine", () => {
  let project: ScratchProject;
  const base = () => ({
    stage: "local",
    projectDir: project.dir,
    backendUrl: project.backendUrl,
    logDir: project.logDir,
    env: project.env,
  });

  beforeAll(() => {
    project = scratchProject("plan");
    process.env.PULUMI_CONFIG_PASSPHRASE = project.env.PULUMI_CONFIG_PASSPHRASE;
  });
  afterAll(() => project?.cleanup());

  it(
    "previews each transition: the deploy changes the candidate only, each setWeight {update: 1} on the route; nothing changes",
    async () => {
      project.editStack("local", (c) => {
        c["slipway:canary"] = {
          steps: [
            { setWeight: 10 },
            { pause: { duration: "30s" } },
            { setWeight: 50 },
            { analysis: { count: 3, interval: "10s" } },
          ],
          scaleDownDelaySeconds: 60,
          progressDeadlineSeconds: 600,
        };
      });
      const stack = await StageStack.open(base());
      await stack.up("bootstrap for the plan test");
      const stackFile = join(project.dir, "Pulumi.local.yaml");
      const fileBefore = readFileSync(stackFile, "utf8");
      const mtimeBefore = statSync(stackFile).mtimeMs;
      const stateBefore = (await stack.stack.exportStack()).deployment;
      const renderedBefore = filesOf(project.renderDir("local"));

      const report = await previewPlan({ ...base(), image: digest("2"), version: "1.1.0" });
      expect(report.error).toBeUndefined();
      expect(report.violations).toEqual([]);
      expect(report.exitCode).toBe(0);
      expect(
        report.transitions.map((t) => `${t.label} ${t.weights.blue}/${t.weights.green}`),
      ).toEqual([
        "deploy 100/0",
        "rollback after deploy 100/0",
        "step 1 setWeight 10 90/10",
        "rollback after step 1 setWeight 10 100/0",
        "step 3 setWeight 50 50/50",
        "rollback after step 3 setWeight 50 100/0",
        "promote 0/100",
        "rollback after promote 100/0",
        "scale down 0/100",
      ]);
      const byLabel = Object.fromEntries(report.transitions.map((t) => [t.label, t]));
      const deploy = byLabel["deploy"]!;
      expect(deploy.changes.length).toBeGreaterThan(0);
      expect(deploy.changes.every((c) => c.op === "update" && c.name.includes("green"))).toBe(true);
      const candidate = deploy.changes.find((c) => c.type === "kubernetes:apps/v1:Deployment")!;
      expect(candidate.paths.join(" ")).toMatch(/image/);
      for (const label of ["step 1 setWeight 10", "step 3 setWeight 50"]) {
        const t = byLabel[label]!;
        expect(t.summary).toEqual({ update: 1 });
        expect(t.changes[0]!.type).toBe(HTTPROUTE);
        expect(t.changes[0]!.paths.every((p) => /weight/.test(p))).toBe(true);
      }
      expect(byLabel["rollback after step 3 setWeight 50"]!.summary).toEqual({ update: 1 });
      expect(
        byLabel["scale down"]!.changes.map((c) => `${c.op} ${c.name} ${c.paths.join(",")}`),
      ).toEqual([expect.stringMatching(/^update checkout\S*-blue\S* spec\.replicas$/)]);
      expect(report.budget).toMatchObject({
        pauseSeconds: 30,
        analysisSeconds: 30,
        canarySeconds: 60,
        fitsDeadline: true,
      });

      // Nothing changed: the stack file, the state, the rendered manifests. The stack file was
      // not even written (the previews read a scratch copy), so no signal could leave it changed.
      expect(readFileSync(stackFile, "utf8")).toBe(fileBefore);
      expect(statSync(stackFile).mtimeMs).toBe(mtimeBefore);
      expect((await stack.stack.exportStack()).deployment.resources).toEqual(stateBefore.resources);
      expect(filesOf(project.renderDir("local"))).toEqual(renderedBefore);
    },
    PLAN_TIMEOUT,
  );

  it(
    "Ctrl-C during `slipway plan` leaves the stack file, the state and the lease as they were",
    async () => {
      // Opened first: opening a stack gives it its tester token (in the stack file) if it has none.
      const stack = await StageStack.open(base());
      const stackFile = join(project.dir, "Pulumi.local.yaml");
      const fileBefore = readFileSync(stackFile, "utf8");
      const mtimeBefore = statSync(stackFile).mtimeMs;
      const topBefore = readdirSync(project.dir).sort();
      const stateBefore = (await stack.stack.exportStack()).deployment.resources;
      const proc = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          join(REPO, "src", "cli", "main.ts"),
          "plan",
          "--stage",
          "local",
          "--image",
          digest("4"),
          "--version",
          "1.3.0",
          "--project-dir",
          project.dir,
          "--backend",
          project.backendUrl,
          "--log-dir",
          project.logDir,
        ],
        {
          cwd: project.dir,
          env: { ...process.env, ...project.env },
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        },
      );
      let out = "";
      proc.stdout!.on("data", (d) => (out += d));
      // SIGINT to its process group (as a terminal's Ctrl-C) once the first preview runs.
      let sent = false;
      const interrupted = new Promise<void>((resolve) => {
        proc.stderr!.on("data", (d) => {
          out += d;
          if (!sent && /^… /m.test(out) && proc.exitCode === null) {
            sent = true; // once: a third Ctrl-C exits at once, by design
            process.kill(-proc.pid!, "SIGINT");
            resolve();
          }
        });
      });
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      const timer = setTimeout(() => process.kill(-proc.pid!, "SIGKILL"), 600_000);
      await Promise.race([interrupted, exited]);
      await exited;
      clearTimeout(timer);
      expect(out, out).toMatch(/^… /m);
      expect(readFileSync(stackFile, "utf8")).toBe(fileBefore);
      expect(statSync(stackFile).mtimeMs).toBe(mtimeBefore);
      expect(readdirSync(project.dir).sort()).toEqual(topBefore);
      expect((await stack.stack.exportStack()).deployment.resources).toEqual(stateBefore);
      expect(existsSync(join(project.logDir, "local.lock")), out).toBe(false);
    },
    PLAN_TIMEOUT,
  );

  it(
    "refuses a program whose Deployment label depends on the weight, naming the invariant (exit 6)",
    async () => {
      renameSync(join(project.dir, "index.ts"), join(project.dir, "stage.ts"));
      copyFileSync(
        join(__dirname, "fixtures", "weight-label", "index.ts"),
        join(project.dir, "index.ts"),
      );
      project.editStack("local", (c) => {
        c["slipway:canary"] = { steps: [{ setWeight: 20 }], scaleDownDelaySeconds: 0 };
      });
      const report = await previewPlan({ ...base(), image: digest("3"), version: "1.2.0" });
      expect(report.error).toBeUndefined();
      expect(report.exitCode).toBe(6);
      const broken = report.violations.filter(
        (v) => v.invariant === "canary-step-changes-only-routing",
      );
      expect(new Set(broken.map((v) => v.transition))).toEqual(new Set(["step 1 setWeight 20"]));
      expect(broken.map((v) => v.detail).join("\n")).toMatch(
        /update kubernetes:apps\/v1:Deployment weight-labelled \(metadata\.labels\.slipway\.dev\/weight\)/,
      );
      expect(report.violations.some((v) => v.invariant === "rollback-changes-only-routing")).toBe(
        true,
      );
    },
    PLAN_TIMEOUT,
  );
});
