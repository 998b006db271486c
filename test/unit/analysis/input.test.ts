import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  analysisInputJsonSchema,
  InputError,
  parseAnalysisInput,
} from "../../../src/analysis/input";
import { analysisSpecSchema, parseAnalysisSpec } from "../../../src/analysis/spec";

const root = join(__dirname, "../../..");
const fixture = (name: string) => readFileSync(join(root, "test/fixtures/analysis", name), "utf8");
const schemaPath = join(root, "schemas/analysis-input.schema.json");

function problems(text: string): string[] {
  try {
    parseAnalysisInput(text);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).problems;
  }
  throw new Error("expected an InputError");
}

describe("analysis input file", () => {
  it("accepts the documented example and fills defaults", () => {
    const input = parseAnalysisInput(fixture("example.json"));
    expect(input.minSamples).toBe(200);
    expect(input.alpha).toBe(0.05);
    expect(input.metrics[0]).toMatchObject({
      name: "errors",
      type: "ratio",
      critical: false,
      threshold: { max: 0.05 },
    });
    expect(input.metrics[1]).toMatchObject({
      name: "latency_ms",
      type: "samples",
      critical: true,
      tolerance: 0.1,
    });
  });

  it("names the field when bad > total", () => {
    expect(problems(fixture("bad-count.json"))).toEqual([
      "metrics[0].canary.bad: 600 is greater than total 500",
    ]);
  });

  it("names the field of a negative count", () => {
    expect(problems(fixture("negative-count.json"))).toEqual([
      "metrics[0].baseline.bad: -3 is negative; counts are whole numbers >= 0",
    ]);
  });

  it("names an unknown metric type", () => {
    expect(problems(fixture("unknown-type.json"))).toEqual([
      'metrics[1].type: "histogram" is not a metric type; expected "ratio" or "samples"',
    ]);
  });

  it("reports text that is not JSON", () => {
    const [line] = problems(fixture("not-json.json"));
    expect(line).toMatch(/^not valid JSON: /);
  });

  it("reports several problems at once, each with its path", () => {
    const lines = problems(
      JSON.stringify({
        minSamples: 0,
        colour: "blue",
        metrics: [
          { name: "a", type: "ratio", canary: { bad: 1.5, total: 10 } },
          { name: "a", type: "samples", canary: [1, "x"], direction: "sideways" },
        ],
      }),
    );
    expect(lines).toEqual(
      expect.arrayContaining([
        "minSamples: 0 is too small; must be >= 1",
        expect.stringMatching(/^\(root\): Unrecognized key: "colour"/),
        "metrics[0].canary.bad: 1.5 is not a whole number; counts are whole numbers >= 0",
        'metrics[1].canary[1]: "x" is not a finite number',
        expect.stringMatching(/^metrics\[1\]\.direction: /),
      ]),
    );
  });

  it("rejects duplicate metric names and threshold min above max", () => {
    const lines = problems(
      JSON.stringify({
        metrics: [
          {
            name: "a",
            type: "ratio",
            canary: { bad: 1, total: 10 },
            threshold: { min: 0.5, max: 0.1 },
          },
          { name: "a", type: "ratio", canary: { bad: 1, total: 10 }, threshold: {} },
        ],
      }),
    );
    expect(lines).toEqual(
      expect.arrayContaining([
        "metrics[0].threshold.min: 0.5 is greater than max 0.1",
        "metrics[1].threshold: needs at least one of max or min",
      ]),
    );
  });
});

describe("JSON Schema", () => {
  it("schemas/analysis-input.schema.json is generated from the zod schema (UPDATE_SCHEMAS=1 rewrites it)", () => {
    const generated = analysisInputJsonSchema();
    if (process.env.UPDATE_SCHEMAS === "1")
      writeFileSync(schemaPath, `${JSON.stringify(generated, null, 2)}\n`);
    expect(JSON.parse(readFileSync(schemaPath, "utf8"))).toEqual(generated);
  });

  it("describes the documented fields", () => {
    const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
    expect(schema.required).toEqual(["metrics"]);
    const variants = schema.properties.metrics.items.oneOf;
    expect(
      variants.map((v: { properties: { type: { const: string } } }) => v.properties.type.const),
    ).toEqual(["ratio", "samples"]);
    expect(variants[0].properties.canary.properties.bad).toMatchObject({
      type: "integer",
      minimum: 0,
    });
  });
});

describe("analysis spec (slipway:canary.analysis)", () => {
  it("has sensible defaults", () => {
    const spec = analysisSpecSchema.parse({});
    expect(spec).toMatchObject({
      interval: 60,
      count: 5,
      failureLimit: 0,
      inconclusiveLimit: 0,
      consecutiveErrorLimit: 4,
      alpha: 0.01,
      window: "cumulative",
    });
    expect(spec.metrics.map((m) => m.name)).toEqual(["errors", "latency"]);
  });

  it("parses durations and names bad keys", () => {
    expect(parseAnalysisSpec({ interval: "1m30s" }).interval).toBe(90);
    expect(parseAnalysisSpec({ interval: 15 }).interval).toBe(15);
    expect(() => parseAnalysisSpec({ interval: "soon", count: 0 })).toThrow(
      /slipway:canary\.analysis\.interval: "soon" is not a duration[\s\S]*slipway:canary\.analysis\.count: 0 is too small; must be >= 1/,
    );
  });
});
