import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import type { StageOutputs } from "../../../src/contract/outputs";
import type { StageState } from "../../../src/pipeline/machine";
import type { UpdatableStack, UpdateResult } from "../../../src/pipeline/stack";
import {
  readStageConfig,
  stackFilePath,
  writeStageState,
  YAML_WRITE,
} from "../../../src/pipeline/stackFile";
import type { Weights } from "../../../src/traffic/weights";
import { renderStage, ROOT } from "./harness";

/**
 * A scratch copy of the project with the local stage only, its canary steps replaced by `steps`
 * (`slipway:canary.steps` as written in a stack file) when given.
 */
export function localProject(steps?: unknown[]): { dir: string; logDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "slipway-local-"));
  for (const f of ["Pulumi.yaml", "Pulumi.local.yaml"]) copyFileSync(join(ROOT, f), join(dir, f));
  if (steps) {
    const file = stackFilePath(dir, "local");
    const doc = parseDocument(readFileSync(file, "utf8"));
    doc.setIn(["config", "slipway:canary", "steps"], doc.createNode(steps));
    writeFileSync(file, doc.toString(YAML_WRITE));
  }
  return { dir, logDir: join(dir, "releases") };
}

/**
 * A stage's stack without an engine: each update renders the program (with mocks) from the
 * project's stack file as it stands, and its outputs become the stack's. What a release reads
 * back as the weights in force is what the last update left.
 */
export class RenderedStack implements UpdatableStack {
  readonly updates: string[] = [];
  private deployed: StageOutputs | undefined;

  private constructor(
    readonly dir: string,
    readonly stage: string,
    /** Runs after an update landed, before the release hears of it. */
    private readonly onUpdate?: (message: string) => Promise<void> | void,
  ) {}

  /** A stack already deployed as the project's stack file declares it. */
  static async deployed(
    dir: string,
    stage: string,
    onUpdate?: (message: string) => Promise<void> | void,
  ): Promise<RenderedStack> {
    const stack = new RenderedStack(dir, stage, onUpdate);
    stack.deployed = await stack.render();
    return stack;
  }

  private async render(): Promise<StageOutputs> {
    return (await renderStage(readStageConfig(this.dir, this.stage))).outputs;
  }

  async outputs() {
    return this.deployed;
  }
  async testerHeader() {
    return undefined;
  }
  writeState(state: StageState): void {
    writeStageState(stackFilePath(this.dir, this.stage), state);
  }
  async up(message: string): Promise<UpdateResult> {
    this.deployed = await this.render();
    this.updates.push(message);
    await this.onUpdate?.(message);
    return { changes: { update: 1 }, durationMs: 0 };
  }

  /** The weights read-back of a route that always carries what the last update applied. */
  readonly readBack = {
    read: async (): Promise<Weights> => this.deployed!.weights,
  };
}
