import { appendFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../../src/programBuild";
import { StageStack } from "../../src/pipeline/stack";
import { scratchProject, type ScratchProject } from "./support/project";

/**
 * The real engine running the program from its precompiled build (dist/, through the run-path
 * wrapper bin/program-run.js) next to the same program run from its TypeScript sources
 * through ts-node, as Pulumi runs a TypeScript project.
 */

interface Declared {
  urn: string;
  type: string;
  parent?: string;
  inputs?: Record<string, unknown>;
  sourcePosition?: string;
}

/** What the program declared, per resource: URN, type, parent, inputs, source position. */
async function declared(stack: StageStack): Promise<Declared[]> {
  const state = await stack.stack.exportStack();
  return (state.deployment.resources as any[])
    .map((r) => ({
      urn: r.urn,
      type: r.type,
      parent: r.parent,
      // Each stack encrypts its secrets itself; compare the shape, not the ciphertext.
      inputs: JSON.parse(
        JSON.stringify(r.inputs ?? {}).replace(/"ciphertext":"[^"]*"/g, '"ciphertext":"…"'),
      ),
      // The project's own files, wherever the scratch copy lives.
      sourcePosition: r.sourcePosition?.replace(
        /^project:\/\/\/(\.\.\/)*.*?node_modules\//,
        "node_modules/",
      ),
    }))
    .sort((a, b) => a.urn.localeCompare(b.urn));
}

function rendered(project: ScratchProject): Record<string, string> {
  const dir = project.renderDir("local");
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out[r] = readFileSync(join(dir, r), "utf8");
    }
  };
  walk("");
  return out;
}

describe("engine: the program's precompiled build", () => {
  let built: ScratchProject;
  let sources: ScratchProject;
  let builtStack: StageStack;
  let sourcesStack: StageStack;

  const open = async (project: ScratchProject) => {
    const stack = await StageStack.open({
      stage: "local",
      projectDir: project.dir,
      backendUrl: project.backendUrl,
      env: project.env,
    });
    // The same tester token in both, so that the two routes can be compared.
    await stack.stack.setConfig("slipway:testerToken", {
      value: "same-token-in-both",
      secret: true,
    });
    return stack;
  };

  beforeAll(async () => {
    built = scratchProject("build");
    sources = scratchProject("sources");
    // No build config: the host's default run path, ts-node over the sources.
    rmSync(join(sources.dir, "tsconfig.build.json"));
    rmSync(join(sources.dir, "dist"), { recursive: true, force: true });
    builtStack = await open(built);
    sourcesStack = await open(sources);
  });
  afterAll(() => {
    built?.cleanup();
    sources?.cleanup();
  });

  it("declares exactly what the sources declare: same URNs, parents, inputs and source positions, same manifests", async () => {
    const a = await builtStack.up("from the build");
    const b = await sourcesStack.up("from the sources");
    expect(a.changes).toEqual(b.changes);
    expect(a.changes.create).toBeGreaterThan(15);
    const fromBuild = await declared(builtStack);
    const fromSources = await declared(sourcesStack);
    expect(fromBuild).toEqual(fromSources);
    // Source positions still name the .ts files (the build's source maps), not dist/.
    const positions = fromBuild.map((r) => r.sourcePosition ?? "").join("\n");
    expect(positions).toContain("project:///components/kubernetes/stage.ts#");
    expect(positions).not.toContain("dist/");
    expect(rendered(built)).toEqual(rendered(sources));
  });

  it("a source edited after the build is refused before the program declares anything; rebuilt, the update changes nothing", async () => {
    const before = await declared(builtStack);
    const history = (await builtStack.stack.history()).length;
    appendFileSync(join(built.dir, "components", "stage.ts"), "\n// edited after the build\n");
    const failed = await builtStack.up("stale").then(
      () => undefined,
      (err: Error) => err,
    );
    expect(failed).toBeInstanceOf(Error);
    expect(String(failed!.message)).toContain(
      "is stale: components/stage.ts changed since the build",
    );
    expect(await declared(builtStack)).toEqual(before);
    // The failed update is on record; nothing in state changed.
    expect((await builtStack.stack.history()).length).toBe(history + 1);
    expect(ensureBuilt(built.dir).built).toBe(true);
    const again = await builtStack.up("rebuilt");
    expect(Object.keys(again.changes)).toEqual(["same"]);
  });
});
