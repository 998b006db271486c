import { CommandError, LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { toRenderMode } from "./support/project";

/**
 * The policy pack under the real engine, through the Automation API: the
 * local stage passes it, and each mandatory policy fails a preview with its
 * own message. The stage config already refuses most bad inputs, so the
 * stage program is only given what the config allows and a policy refuses
 * (an expired flag, a candidate larger than the stable slot); the other
 * violations come from a test-only program, test/engine/fixtures/policy-violations.
 *
 * The pack is passed as its executable (policy/analyzer): the offline
 * toolchain's Node.js language host has no RunPlugin, which the directory form
 * (`--policy-pack policy`) needs. SLIPWAY_POLICY_PACK overrides it, e.g. with
 * the directory under a stock Pulumi CLI.
 */

const ROOT = join(__dirname, "..", "..");
const PACK = process.env.SLIPWAY_POLICY_PACK ?? join(ROOT, "policy", "analyzer");
const scratch = mkdtempSync(join(tmpdir(), "slipway-policy-"));
const backend = join(scratch, "state");
mkdirSync(backend);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let projects = 0;
/** A fresh copy of a program (files and folders relative to `from`), sharing the repo's node_modules. */
function project(from: string, entries: string[]): string {
  const dir = join(scratch, `project-${++projects}`);
  for (const entry of entries) cpSync(join(from, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

async function stackIn(dir: string, stackName: string): Promise<Stack> {
  return LocalWorkspace.createOrSelectStack(
    { stackName, workDir: dir },
    {
      envVars: {
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE: "slipway-policy-test",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        // The programs are type-checked by `npm run typecheck`; here only the engine path matters.
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
      },
    },
  );
}

interface Outcome {
  ok: boolean;
  output: string;
  /** `[level] policy` pairs from the preview's policy report. */
  findings: string[];
}

async function previewWithPack(stack: Stack, policyPackConfigs?: string[]): Promise<Outcome> {
  let ok = true;
  let output: string;
  try {
    const result = await stack.preview({
      policyPacks: [PACK],
      color: "never",
      ...(policyPackConfigs ? { policyPackConfigs } : {}),
    });
    output = `${result.stdout}\n${result.stderr}`;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    ok = false;
    output = err.message;
  }
  const findings = [...output.matchAll(/\[(mandatory|advisory)\]\s+([a-z0-9-]+)/g)].map(
    (m) => `[${m[1]}] ${m[2]}`,
  );
  return { ok, output, findings: [...new Set(findings)].sort() };
}

// --- the stage program ------------------------------------------------------------

const STAGE_FILES = [
  "Pulumi.yaml",
  "Pulumi.local.yaml",
  "index.ts",
  "components",
  "src",
  "tsconfig.json",
  "package.json",
];

/** The local stage, its stack file changed by `change` (raw YAML values, keys with the namespace). */
async function localStage(change?: (config: Record<string, any>) => void): Promise<Stack> {
  const dir = project(ROOT, STAGE_FILES);
  const file = join(dir, "Pulumi.local.yaml");
  const doc = parse(readFileSync(file, "utf8")) as { config: Record<string, any> };
  // Render mode: a preview needs no cluster.
  toRenderMode("local")(doc.config);
  change?.(doc.config);
  writeFileSync(file, stringify(doc));
  return stackIn(dir, "local");
}

const isoDay = (daysFromNow: number) =>
  new Date(Date.now() + daysFromNow * 86_400_000).toISOString().slice(0, 10);

describe("the slipway policy pack on the local stage", () => {
  it("passes: the preview succeeds with the pack loaded and no violation", async () => {
    const outcome = await previewWithPack(await localStage());
    expect(outcome.output).toContain("slipway@v0.1.0");
    expect(outcome.findings).toEqual([]);
    expect(outcome.ok, outcome.output).toBe(true);
  });

  it("fails the preview on an expired flag, saying to remove it", async () => {
    const outcome = await previewWithPack(
      await localStage((c) => (c["slipway:flags"]["new-checkout-flow"].expires = "2020-01-01")),
    );
    expect(outcome.ok).toBe(false);
    expect(outcome.findings).toEqual(["[mandatory] feature-flags-owned-and-current"]);
    expect(outcome.output).toContain(
      'flag "new-checkout-flow" (owner team-payments) expired on 2020-01-01: remove it from slipway:flags and from the code that reads it',
    );
  });

  it("warns, without failing, about a flag that expires within 14 days", async () => {
    const expires = isoDay(7);
    const outcome = await previewWithPack(
      await localStage((c) => (c["slipway:flags"]["new-checkout-flow"].expires = expires)),
    );
    expect(outcome.ok, outcome.output).toBe(true);
    expect(outcome.findings).toEqual(["[advisory] feature-flags-expiring-soon"]);
    expect(outcome.output).toContain(
      `flag "new-checkout-flow" (owner team-payments) expires on ${expires}`,
    );
  });

  it("fails the preview when the candidate slot is larger than the stable one", async () => {
    const outcome = await previewWithPack(
      await localStage((c) => (c["slipway:slots"].green.replicas = 5)),
    );
    expect(outcome.ok).toBe(false);
    expect(outcome.findings).toEqual(["[mandatory] stable-slot-fully-scaled"]);
    expect(outcome.output).toContain(
      "stable slot blue (weight 100, the larger) runs 2 replica(s) while green (weight 0) runs 5",
    );
  });
});

// --- raw violations the config cannot express --------------------------------------

const FIXTURE = join(ROOT, "test", "engine", "fixtures", "policy-violations");

async function fixture(violation: string): Promise<Stack> {
  const dir = project(FIXTURE, ["Pulumi.yaml", "index.ts"]);
  const stack = await stackIn(dir, "fixture");
  await stack.setAllConfig({
    "policy-violations:case": { value: violation },
    "policy-violations:renderDir": { value: join(dir, "rendered") },
  });
  return stack;
}

describe("the slipway policy pack on raw resources", () => {
  it("passes the clean fixture (the control for the cases below)", async () => {
    const outcome = await previewWithPack(await fixture("clean"));
    expect(outcome.findings).toEqual([]);
    expect(outcome.ok, outcome.output).toBe(true);
  });

  it.each([
    [
      "image-tag",
      "images-pinned-by-digest",
      'container "checkout" image "registry.local/checkout:1.0.0" is not pinned by digest',
    ],
    [
      "slot-missing",
      "blue-green-slots-present",
      'service "checkout": expected exactly one blue and one green Deployment; found blue ×1',
    ],
    [
      "weights",
      "routing-weights-total-100",
      "weights total 90 (checkout-blue: 60, checkout-green: 30); allowed: weights totalling 100",
    ],
    [
      "iam-wildcard",
      "iam-no-wildcards",
      'statement "ReadPrices" allows wildcard action "dynamodb:*"',
    ],
    ["public-ingress", "no-public-ingress", "opens tcp port 22 to 0.0.0.0/0"],
    [
      "ecr-mutable",
      "ecr-immutable-tags",
      'ECR repository "checkout" has imageTagMutability "MUTABLE"',
    ],
  ])("%s fails the preview with %s", async (violation, policy, message) => {
    const outcome = await previewWithPack(await fixture(violation));
    expect(outcome.ok).toBe(false);
    expect(outcome.findings).toEqual([`[mandatory] ${policy}`]);
    expect(outcome.output).toContain(message);
  });

  it("takes the listener ports from the policy pack config", async () => {
    const config = join(scratch, "allow-ssh.json");
    writeFileSync(config, JSON.stringify({ "no-public-ingress": { allowedPorts: [22, 80, 443] } }));
    const outcome = await previewWithPack(await fixture("public-ingress"), [config]);
    expect(outcome.findings).toEqual([]);
    expect(outcome.ok, outcome.output).toBe(true);
  });
});
