import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withoutStackTraces } from "../../../components/stackTraces";

const ROOT = join(__dirname, "..", "..", "..");

describe("what declaring a stage costs", () => {
  it("no stack traces are captured while a component declares its children; the limit comes back, also after a throw", () => {
    const limit = Error.stackTraceLimit;
    expect(withoutStackTraces(() => new Error("x").stack)).toBe("Error: x");
    expect(Error.stackTraceLimit).toBe(limit);
    expect(() =>
      withoutStackTraces(() => {
        throw new Error("declared badly");
      }),
    ).toThrow("declared badly");
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error("y").stack).toContain("loading.test.ts");
  });

  it("a Kubernetes stage's modules do not load @pulumi/aws", () => {
    // A fresh Node, as the language host runs the program: what ServiceStage and the Kubernetes
    // back end load, and (for contrast) what the AWS back end loads.
    const loads = (modules: string[]) =>
      execFileSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "-e",
          `${modules.map((m) => `require(${JSON.stringify(join(ROOT, m))});`).join("")}` +
            `console.log(Object.keys(require.cache).some((k) => k.includes("@pulumi/aws/")))`,
        ],
        { cwd: ROOT, encoding: "utf8" },
      ).trim();
    expect(loads(["components/stage.ts", "components/kubernetes/stage.ts"])).toBe("false");
    expect(loads(["components/stage.ts", "components/aws/stage.ts"])).toBe("true");
  }, 120_000); // two Node start-ups with the SDK's modules, on a shared machine
});
