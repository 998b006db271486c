import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as defaults from "../../src/defaults";

const text = readFileSync(join(__dirname, "..", "..", "src", "defaults.ts"), "utf8");

describe("the runtime defaults (src/defaults.ts)", () => {
  it("import nothing, so any layer may read them", () => {
    expect(text).not.toMatch(/^\s*import\b|\brequire\(/m);
  });

  it("are each documented where they are declared", () => {
    const exported = Object.keys(defaults);
    expect(exported.length).toBeGreaterThan(5);
    for (const name of exported) {
      const before = text.slice(0, text.indexOf(`export const ${name} =`)).trimEnd();
      expect(before.endsWith("*/"), `${name} has no comment saying what it is and why`).toBe(true);
    }
  });
});
