import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parseStageOutputs, StageContractError } from "../../../src/contract/outputs";
import { readStage } from "../../../src/contract/readStage";
import { promiseOf, renderStage, stageConfigOf } from "../support/harness";

describe("outputs contract v1", () => {
  it("every stage's outputs satisfy the schema", async () => {
    for (const stage of ["local", "staging", "prod"]) {
      const r = await renderStage(stageConfigOf(stage));
      expect(parseStageOutputs(r.outputs as any).stage).toBe(stage);
    }
  });

  it("refuses another schema version with a message that says what to do", () => {
    expect(() => parseStageOutputs({ schemaVersion: 2 })).toThrow(StageContractError);
    expect(() => parseStageOutputs({ schemaVersion: 2 }, "stack acme/slipway/prod")).toThrow(
      /schemaVersion 2; this reader understands 1/,
    );
  });

  it("readStage gives typed values through a StackReference", async () => {
    const rendered = await renderStage(stageConfigOf("staging"));
    const published = { ...rendered.outputs, testerHeader: rendered.testerHeader };
    await pulumi.runtime.setMocks(
      {
        newResource(args) {
          if (args.type === "pulumi:pulumi:StackReference") {
            return {
              id: args.inputs.name,
              state: {
                name: args.inputs.name,
                outputs: published,
                secretOutputNames: ["testerHeader"],
              },
            };
          }
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => args.inputs,
      },
      "app-team",
      "dev",
      false,
    );
    const stage = readStage(new pulumi.StackReference("acme/slipway/staging"));
    expect(await promiseOf(stage.endpoint)).toBe("https://checkout.staging.example.com/");
    expect(await promiseOf(stage.weights)).toEqual({ blue: 100, green: 0 });
    const releases = await promiseOf(stage.releases);
    expect(releases.blue.image).toMatch(/@sha256:/);
    expect(await (stage.testerHeader as any).isSecret).toBe(true);
  });
});
