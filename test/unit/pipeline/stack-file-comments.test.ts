import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { writeStageState } from "../../../src/pipeline/stackFile";

const image = (c: string) => `registry.local/checkout@sha256:${c.repeat(64)}`;

describe("the pipeline's writes to a stack file", () => {
  it("keep every comment, those inside slipway:traffic and slipway:slots too", () => {
    const dir = mkdtempSync(join(tmpdir(), "slipway-comments-"));
    const file = join(dir, "Pulumi.local.yaml");
    writeFileSync(
      file,
      [
        "# owned by team payments",
        "config:",
        "  # sizes reviewed 2026-11",
        '  slipway:service: {name: "checkout"}',
        "  slipway:traffic:",
        "    # never above 50 by hand",
        "    canaryWeight: 0",
        '    stable: "blue"',
        "    headerRoute: {enabled: true} # testers only",
        "  slipway:slots:",
        "    blue:",
        "      # the known-good build",
        `      image: "${image("a")}"`,
        '      version: "1.0.0"',
        "    green:",
        `      image: "${image("a")}"`,
        '      version: "1.0.0"',
        "      replicas: 0 # idle",
        "",
      ].join("\n"),
    );
    writeStageState(file, {
      stable: "green",
      canaryWeight: 0,
      slots: {
        blue: { image: image("a"), version: "1.0.0", replicas: 0 },
        green: { image: image("b"), version: "2.0.0" },
      },
    });
    const text = readFileSync(file, "utf8");
    for (const comment of [
      "# owned by team payments",
      "# sizes reviewed 2026-11",
      "# never above 50 by hand",
      "# testers only",
      "# the known-good build",
    ])
      expect(text).toContain(comment);
    expect(parse(text).config).toEqual({
      "slipway:service": { name: "checkout" },
      "slipway:traffic": { canaryWeight: 0, stable: "green", headerRoute: { enabled: true } },
      "slipway:slots": {
        blue: { image: image("a"), version: "1.0.0", replicas: 0 },
        green: { image: image("b"), version: "2.0.0" },
      },
    });
  });
});
