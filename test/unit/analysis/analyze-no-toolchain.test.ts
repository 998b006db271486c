import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";

/**
 * `npm run slipway -- analyze` on a machine whose toolchain is not built: it answers from the
 * file, and nothing starts to build (the toolchain takes most of an hour on a fresh machine).
 */
describe("commands that need no engine never wait for the toolchain", () => {
  it("analyze answers with an empty toolchain and cache directory, and builds nothing", () => {
    const empty = mkdtempSync(join(tmpdir(), "slipway-no-toolchain-"));
    const run = spawnSync(
      "bash",
      [
        "scripts/with-env.sh",
        "--cli",
        "node",
        "--import",
        "tsx",
        "src/cli/main.ts",
        "analyze",
        "--input",
        "test/fixtures/analysis/pass.json",
        "--json",
      ],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: {
          ...process.env,
          SLIPWAY_TOOLCHAIN_HOME: join(empty, "toolchain"),
          XDG_CACHE_HOME: join(empty, "cache"),
        },
        timeout: 60_000,
      },
    );
    expect(run.stderr).not.toMatch(/toolchain|building/i);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).verdict).toBe("pass");
    // Nothing was made in the empty directories: no toolchain build, no program build.
    expect(readdirSync(empty)).toEqual([]);
  });
});
