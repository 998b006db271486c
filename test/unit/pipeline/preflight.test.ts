import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { release } from "../../../src/pipeline/release";
import { YAML_WRITE } from "../../../src/pipeline/stackFile";
import { ROOT } from "../support/harness";

/**
 * Issue 12, observations 5 and 6: every check that can refuse a release runs
 * before the lease and any stack update (the bootstrap of a never-deployed
 * stage included). The backend here is a directory no engine has touched and the
 * stack is never opened: a check that ran after opening it would not refuse.
 */
function project(edit?: (config: Record<string, any>) => void, stage = "local") {
  const dir = mkdtempSync(join(tmpdir(), "slipway-preflight-"));
  for (const f of ["Pulumi.yaml", `Pulumi.${stage}.yaml`])
    copyFileSync(join(ROOT, f), join(dir, f));
  if (edit) {
    const file = join(dir, `Pulumi.${stage}.yaml`);
    const doc = parseDocument(readFileSync(file, "utf8"));
    const json = doc.toJSON() as { config: Record<string, any> };
    edit(json.config);
    writeFileSync(file, parseDocument(JSON.stringify(json)).toString(YAML_WRITE));
  }
  return {
    stage,
    projectDir: dir,
    backendUrl: `file://${join(dir, "no-engine-here")}`,
    logDir: join(dir, "releases"),
    // Any engine call fails at once: there is no pulumi on this PATH.
    env: { PATH: "/nonexistent" },
  };
}
const image = `registry.local/checkout@sha256:${"c".repeat(64)}`;

describe("release runs the policy pack's rules before any update", () => {
  it("refuses an expired flag with the rule's message", async () => {
    const args = project((c) => (c["slipway:flags"]["new-checkout-flow"].expires = "2020-01-01"));
    const result = await release({ ...args, image, version: "2.0.0" });
    expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(result.reason).toMatch(
      /policy refused, nothing deployed: feature-flags-owned-and-current: flag "new-checkout-flow" \(owner team-payments\) expired on 2020-01-01/,
    );
  });

  it("reports a flag expiring soon as advisory and does not refuse for it", async () => {
    const soon = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    // Staging requires a signature: refused right after, so the test never reaches a stack.
    const args = project((c) => {
      for (const flag of Object.values(c["slipway:flags"]) as any[]) flag.expires = soon;
    }, "staging");
    const infos: string[] = [];
    const result = await release({
      ...args,
      image,
      version: "2.0.0",
      report: (e) => e.type === "info" && infos.push(e.message),
    });
    expect(infos.join("\n")).toMatch(/feature-flags-expiring-soon \(advisory\)/);
    expect(result.reason).toMatch(/^artifact refused/);
  });

  it("refuses an impossible date as config, naming the key", async () => {
    const args = project((c) => (c["slipway:flags"]["new-checkout-flow"].expires = "2026-13-45"));
    const result = await release({ ...args, image, version: "2.0.0" });
    expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(result.reason).toMatch(
      /slipway:flags\.new-checkout-flow\.expires: got "2026-13-45"; is not a real date/,
    );
  });
});

describe("the artifact check runs before the stack is opened or bootstrapped", () => {
  it("refuses an unsigned artifact on a stage that requires signatures, never deployed", async () => {
    const args = project(undefined, "staging");
    const result = await release({ ...args, image, version: "2.0.0" });
    expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(result.reason).toMatch(/artifact refused, nothing deployed/);
  });
});

describe("every input is checked before the first update", () => {
  it.each([
    ["1.4.0+build.7", "a '+' is not allowed in a label"],
    ["1".repeat(70), "longer than 63 characters"],
    ["-1.4.0", "starts with '-'"],
  ])("refuses --version %j (%s), naming the flag and what is allowed", async (version) => {
    const args = project();
    const result = await release({ ...args, image, version });
    expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(result.reason).toMatch(
      /^--version ".*": not a version label; allowed: a version label such as 1\.4\.2: 1 to 63 letters/,
    );
  });

  it("refuses a hook header value with a line break in the stack file, naming the key", async () => {
    const args = project((c) => {
      c["slipway:canary"].hooks = [
        {
          name: "acceptance",
          at: "afterDeploy",
          url: "http://127.0.0.1:1/",
          headers: { "X-Team": "payments\r\nX-Injected: 1" },
        },
      ];
    });
    const result = await release({ ...args, image, version: "2.0.0" });
    expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
    expect(result.reason).toMatch(/slipway:canary\.hooks\[0\]\.headers\.X-Team: got .*no CR, LF/);
  });

  it("refuses a hook header from the environment holding a line break, never showing its value", async () => {
    const args = project((c) => {
      c["slipway:canary"].hooks = [
        {
          name: "acceptance",
          at: "afterDeploy",
          url: "http://127.0.0.1:1/",
          headers: { Authorization: { fromEnv: "HOOK_TOKEN_CRLF" } },
        },
      ];
    });
    process.env.HOOK_TOKEN_CRLF = "Bearer abc\r\nX-Injected: 1";
    try {
      const result = await release({ ...args, image, version: "2.0.0" });
      expect(result).toMatchObject({ outcome: "refused", exitCode: 6 });
      expect(result.reason).toMatch(
        /headers\.Authorization: environment variable HOOK_TOKEN_CRLF holds a line break/,
      );
      expect(result.reason).not.toContain("Bearer abc");
    } finally {
      delete process.env.HOOK_TOKEN_CRLF;
    }
  });
});
