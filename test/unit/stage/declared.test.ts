import { describe, expect, it } from "vitest";
import { ROOT, renderStage, stageConfigOf, variant, type Rendered } from "../support/harness";

/**
 * Every resource each stage file declares (URN, type, parent, inputs, what it depends on),
 * against the record taken from the code before a refactoring. A difference here is a
 * difference a stack created by that code would see in its next `pulumi up`: a changed URN or
 * type is a replacement, changed inputs an update. Components may change what they expose
 * (properties, registered outputs, errors) without changing this.
 *
 * After a change that means to alter what is declared, rewrite the records with
 * `npx vitest run --project unit test/unit/stage/declared.test.ts -u` and review their diff.
 */
function declared(r: Rendered): string {
  const records = r.resources.map((x) => ({
    urn: x.urn,
    type: x.type,
    custom: x.custom,
    parent: x.parent ?? null,
    dependsOn: x.dependsOn,
    inputs: x.inputs,
  }));
  // The provider resolves a relative kubeconfig against the project, wherever it is checked out.
  return `${JSON.stringify(records, null, 2).replaceAll(ROOT, "<project>")}\n`;
}

const toKubernetes = (raw: any) => {
  raw.platform = "kubernetes";
};

describe("what the stages declare", () => {
  for (const stage of ["local", "staging", "prod"]) {
    it(`Pulumi.${stage}.yaml declares the recorded resources with the recorded inputs`, async () => {
      const rendered = await renderStage(stageConfigOf(stage));
      expect(rendered.resources.every((x) => x.urn?.startsWith("urn:pulumi:"))).toBe(true);
      await expect(declared(rendered)).toMatchFileSnapshot(
        `../../fixtures/resources/${stage}.json`,
      );
    });
  }

  // staging and prod also carry a kubernetes block: a platform switch must not change either.
  for (const stage of ["staging", "prod"]) {
    it(`Pulumi.${stage}.yaml on kubernetes declares the recorded resources`, async () => {
      const rendered = await renderStage(variant(stage, toKubernetes));
      await expect(declared(rendered)).toMatchFileSnapshot(
        `../../fixtures/resources/${stage}-kubernetes.json`,
      );
    });
  }
});
