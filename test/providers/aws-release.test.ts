/**
 * `release()` on an AWS stage, with only the stack updates replaced: the AWS
 * provider cannot run here, so a recording stand-in applies each update the
 * way the program would (the stack file's weights onto the listener rule, with
 * ModifyRule against moto, and its slots onto the ECS services) and answers
 * with the outputs the program would export. Everything else is the real
 * pipeline against moto: the pre-update checks, the weights read back with
 * DescribeRules, what serves (DescribeServices, DescribeTaskDefinition,
 * DescribeTargetHealth), the CloudWatch analysis (GetMetricData) of both
 * target groups and the candidate's alarms (DescribeAlarms).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoadBalancerWeights } from "../../src/aws";
import type { StageConfig } from "../../src/config/schema";
import type { StageOutputs } from "../../src/contract/outputs";
import { ReleaseLog, type LogRecord } from "../../src/pipeline/log";
import type { StageState } from "../../src/pipeline/machine";
import { release, type ReleaseReport } from "../../src/pipeline/release";
import type { UpdatableStack, UpdateResult } from "../../src/pipeline/stack";
import {
  readStageConfig,
  stackFilePath,
  writeStageState,
  YAML_WRITE,
} from "../../src/pipeline/stackFile";
import { weightsFor, type Weights } from "../../src/traffic/weights";
import {
  createAwsWorld,
  motoEnvironment,
  publishTraffic,
  startMoto,
  type AwsWorld,
  type Moto,
  type SlotDeclared,
  type SlotTraffic,
} from "./support/awsWorld";
import { awsStageOutputs, ROOT } from "./support/stageOutputs";

const STAGE = "staging";
const CANDIDATE_IMAGE =
  "111111111111.dkr.ecr.eu-west-1.amazonaws.com/checkout@sha256:2222222222222222222222222222222222222222222222222222222222222222";
const healthy: SlotTraffic = { requestsPerMinute: 9000, errorRate: 0.01, latencyScale: 1 };

let moto: Moto;
const saved: Record<string, string | undefined> = {};
const dirs: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  for (const [k, v] of Object.entries(motoEnvironment(moto))) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await moto?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A project with the repository's Pulumi.yaml and staging stack file, changed only
 * where this machine differs from AWS: no signing key here (requireSignature off)
 * and moto has no percentiles (latency statistic Average).
 */
function project(steps?: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), "slipway-aws-release-"));
  dirs.push(dir);
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  const doc = parseDocument(readFileSync(join(ROOT, `Pulumi.${STAGE}.yaml`), "utf8"));
  doc.setIn(["config", "slipway:artifacts", "requireSignature"], false);
  doc.setIn(["config", "slipway:aws", "analysis"], doc.createNode({ latencyStatistic: "Average" }));
  if (steps) {
    doc.deleteIn(["config", "slipway:canary", "preset"]);
    doc.setIn(["config", "slipway:canary", "steps"], doc.createNode(steps));
  }
  writeFileSync(join(dir, `Pulumi.${STAGE}.yaml`), doc.toString(YAML_WRITE));
  return dir;
}

interface Update {
  message: string;
  weights: Weights;
}

/** Each slot's image and replicas as the stack file declares them. */
const declaredSlots = (config: StageConfig): Record<"blue" | "green", SlotDeclared> => ({
  blue: {
    image: config.slots.blue.image,
    replicas: config.slots.blue.replicas ?? config.service.replicas,
  },
  green: {
    image: config.slots.green.image,
    replicas: config.slots.green.replicas ?? config.service.replicas,
  },
});

/** The stand-in for the engine's stack updates, and only for them. */
class RecordingStack implements UpdatableStack {
  readonly stage = STAGE;
  readonly updates: Update[] = [];
  private deployed: StageOutputs | undefined;

  constructor(
    private readonly dir: string,
    private readonly world: AwsWorld,
    options: { deployed: boolean; onUpdate?: (u: Update) => Promise<void> },
  ) {
    this.onUpdate = options.onUpdate;
    if (options.deployed) this.deployed = this.programOutputs();
  }

  private readonly onUpdate?: (u: Update) => Promise<void>;

  /** What the program exports for the stack file as it stands. */
  private programOutputs(): StageOutputs {
    return awsStageOutputs(readStageConfig(this.dir, STAGE), this.world.outputs);
  }

  async outputs() {
    return this.deployed;
  }
  async testerHeader() {
    return undefined;
  }
  writeState(state: StageState): void {
    writeStageState(stackFilePath(this.dir, STAGE), state);
  }
  async up(message: string): Promise<UpdateResult> {
    // The program's weighted rule: the stack file's stable slot and canary weight; its slots.
    const config = readStageConfig(this.dir, STAGE);
    const weights = weightsFor(config.traffic.stable, config.traffic.canaryWeight);
    await this.world.modifyWeights(weights);
    await this.world.applySlots(declaredSlots(config));
    this.deployed = this.programOutputs();
    const update = { message, weights };
    this.updates.push(update);
    await this.onUpdate?.(update);
    return { changes: { update: 1 }, durationMs: 0 };
  }
}

interface Run {
  report: ReleaseReport;
  stack: RecordingStack;
  log: LogRecord[];
  world: AwsWorld;
  /** The listener rule's weights after the release, read from moto. */
  weightsAfter: Weights;
}

async function runRelease(
  name: string,
  options: {
    candidate?: SlotTraffic;
    deployed?: boolean;
    /** `slipway:canary.steps` instead of the stage's preset. */
    steps?: unknown[];
    onUpdate?: (u: Update, world: AwsWorld) => Promise<void>;
    /** Called with the fake clock's minutes since the start, after each sleep. */
    onClock?: (minutes: number, world: AwsWorld) => Promise<void>;
  } = {},
): Promise<Run> {
  const dir = project(options.steps);
  const world = await createAwsWorld(moto, name);
  // A past hour of metrics for both target groups; the fake clock walks through it.
  const start = Math.floor(Date.now() / 60_000) * 60_000 - 3 * 3600_000;
  await publishTraffic(moto, world, new Date(start), 12, {
    blue: healthy,
    green: options.candidate ?? { ...healthy, requestsPerMinute: 1000 },
  });
  const deployed = options.deployed ?? true;
  // A deployed stage runs what its stack file declares.
  if (deployed) await world.applySlots(declaredSlots(readStageConfig(dir, STAGE)));
  const stack = new RecordingStack(dir, world, {
    deployed,
    onUpdate: options.onUpdate && ((u) => options.onUpdate!(u, world)),
  });
  let clock = start;
  const logDir = join(dir, "log");
  const report = await release({
    stage: STAGE,
    projectDir: dir,
    backendUrl: `file://${join(dir, "state")}`,
    logDir,
    image: CANDIDATE_IMAGE,
    version: "1.1.0",
    openStack: async () => stack,
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
      await options.onClock?.((clock - start) / 60_000, world);
    },
  });
  const readBack = LoadBalancerWeights.forRegion("eu-west-1");
  const weightsAfter = await readBack.read(
    awsStageOutputs(readStageConfig(dir, STAGE), world.outputs),
  );
  readBack.destroy();
  return {
    report,
    stack,
    log: report.releaseId ? ReleaseLog.forStage(logDir, STAGE).forRelease(report.releaseId) : [],
    world,
    weightsAfter,
  };
}

const events = (run: Run, event: string) => run.log.filter((r) => r.event === event);
const updateWeights = (run: Run) => run.stack.updates.map((u) => u.weights);

describe("release on an AWS stage (engine stand-in for the updates; moto ELBv2, ECS and CloudWatch)", () => {
  it("a good release is analysed on CloudWatch, verified on the load balancer, and promoted", async () => {
    const run = await runRelease("good");
    expect(run.report.outcome, run.report.reason).toBe("promoted");
    expect(run.report.exitCode).toBe(0);
    // deploy at 0, the preset's 10% step, promote (flip), scale down the old slot.
    expect(updateWeights(run)).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 0, green: 100 },
      { blue: 0, green: 100 },
    ]);
    expect(run.weightsAfter).toEqual({ blue: 0, green: 100 });
    // Every weight change (and every look before a step and after the analysis) was read back
    // from the rule with DescribeRules, and matched what the stack holds.
    const verified = events(run, "weights.verified");
    for (const r of verified) expect(r.weights).toEqual((r.figures as any).expected);
    expect(
      verified
        .map((r) => r.weights)
        .filter((w, i, all) => i === 0 || w!.green !== all[i - 1]!.green),
    ).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 0, green: 100 },
    ]);
    expect(events(run, "weights.drifted")).toEqual([]);
    const passed = events(run, "analysis.passed");
    expect(passed).toHaveLength(1);
    expect(events(run, "analysis.measured")).toHaveLength(5);
    expect(events(run, "alarm.fired")).toEqual([]);
    // Each slot that served was read from ECS and its target group, and served.
    expect(events(run, "serving.failed")).toEqual([]);
  });

  it("a candidate whose ECS service is scaled down by hand mid-analysis is rolled back, never promoted", async () => {
    let scaled = false;
    const run = await runRelease("scaled", {
      onClock: async (minutes, world) => {
        if (!scaled && minutes >= 2) {
          scaled = true;
          await world.scaleService("green", 1);
        }
      },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    expect(run.report.exitCode).toBe(3);
    expect(run.report.reason).toBe(
      "not serving after the analysis of step 2: " +
        "green: ECS service checkout-green is scaled to 1, the stack declares 2; " +
        "green: ECS service checkout-green has 1/2 running tasks",
    );
    const failed = events(run, "serving.failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.figures).toMatchObject({ when: "after the analysis of step 2" });
    expect(run.stack.updates.map((u) => u.message).filter((m) => /promote/.test(m))).toEqual([]);
    expect(updateWeights(run)).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 100, green: 0 },
    ]);
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
  });

  it("a candidate with three times the 5xx rolls back in one update", async () => {
    const run = await runRelease("bad", {
      candidate: { ...healthy, requestsPerMinute: 1000, errorRate: 0.03 },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    expect(run.report.exitCode).toBe(3);
    expect(run.report.reason).toMatch(/^analysis failed at step 2: .*errors/);
    expect(updateWeights(run)).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 100, green: 0 },
    ]);
    expect(run.stack.updates[2]!.message).toMatch(/roll back, green to weight 0/);
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
    expect(events(run, "analysis.failed")).toHaveLength(1);
  });

  it("a candidate alarm going to ALARM mid-analysis fails the step and rolls back, with its name and reason", async () => {
    let set = false;
    const run = await runRelease("alarm", {
      onClock: async (minutes, world) => {
        if (!set && minutes >= 2) {
          set = true;
          await world.setAlarm("green", "ALARM", "Threshold Crossed: 3 datapoints were > 0.02");
        }
      },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    expect(run.report.exitCode).toBe(3);
    expect(run.report.reason).toMatch(
      /^analysis failed at step 2: alarm alarm-green-5xx-ratio is in ALARM.*: Threshold Crossed: 3 datapoints were > 0\.02$/,
    );
    // The analysis stopped at the look that saw the alarm: not all five were taken.
    expect(events(run, "analysis.measured").length).toBeLessThan(5);
    const fired = events(run, "alarm.fired");
    expect(fired.length).toBeGreaterThanOrEqual(1);
    expect(fired[0]!.reason).toContain("alarm-green-5xx-ratio");
    expect(fired[0]!.figures).toMatchObject({ slot: "green" });
    expect(updateWeights(run)).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 100, green: 0 },
    ]);
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
  });

  it("an alarm going to ALARM during a pause ends the pause and rolls back before traffic moves on", async () => {
    let set = false;
    let lastMinute = 0;
    const run = await runRelease("alarm-pause", {
      steps: [{ setWeight: 10 }, { pause: { duration: "10m" } }, { setWeight: 50 }],
      onClock: async (minutes, world) => {
        lastMinute = minutes;
        if (!set && minutes >= 2) {
          set = true;
          await world.setAlarm("green", "ALARM", "Threshold Crossed: p99 above 0.3");
        }
      },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    expect(run.report.reason).toMatch(
      /^alarm alarm-pause-green-5xx-ratio is in ALARM.*: Threshold Crossed: p99 above 0\.3$/,
    );
    // The 10-minute pause ended at the first look after the alarm (looks at most a minute apart).
    expect(lastMinute).toBeLessThanOrEqual(4);
    // Never at 50%: deploy, 10%, rollback.
    expect(updateWeights(run)).toEqual([
      { blue: 100, green: 0 },
      { blue: 90, green: 10 },
      { blue: 100, green: 0 },
    ]);
    expect(events(run, "alarm.fired")[0]!.reason).toContain("alarm-pause-green-5xx-ratio");
  });

  it("a ModifyRule made outside the pipeline is read back as drift and rolled back", async () => {
    const run = await runRelease("drift", {
      onUpdate: async (update, world) => {
        // Someone else's tool edits the rule as the 10% step lands.
        if (update.weights.green === 10) await world.modifyWeights({ blue: 50, green: 50 });
      },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    const drifted = events(run, "weights.drifted");
    expect(drifted).toHaveLength(1);
    expect(drifted[0]!.weights).toEqual({ blue: 50, green: 50 });
    expect(drifted[0]!.figures).toMatchObject({ expected: { blue: 90, green: 10 } });
    expect(run.report.reason).toMatch(
      /^weights drifted after the update: expected blue 90 \/ green 10, found blue 50 \/ green 50/,
    );
    expect(updateWeights(run).at(-1)).toEqual({ blue: 100, green: 0 });
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
  });

  it("a ModifyRule during the analysis is drift, read back after it: the release rolls back instead of promoting", async () => {
    let edited = false;
    const run = await runRelease("drift-later", {
      onClock: async (minutes, world) => {
        if (!edited && minutes >= 2) {
          edited = true;
          await world.modifyWeights({ blue: 0, green: 100 });
        }
      },
    });
    expect(run.report.outcome, run.report.reason).toBe("rolledBack");
    const drifted = events(run, "weights.drifted");
    expect(drifted.length).toBeGreaterThanOrEqual(1);
    expect(drifted[0]!.weights).toEqual({ blue: 0, green: 100 });
    expect(drifted[0]!.figures).toMatchObject({
      expected: { blue: 90, green: 10 },
      when: "after the analysis of step 2",
    });
    expect(run.report.reason).toMatch(/^weights drifted after the analysis of step 2/);
    // No promotion: the rollback is the last update, one update after the drift was seen.
    expect(run.stack.updates.map((u) => u.message).filter((m) => /promote/.test(m))).toEqual([]);
    expect(updateWeights(run).at(-1)).toEqual({ blue: 100, green: 0 });
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
  });

  it("a stage without outputs is refused before any update, naming what is missing", async () => {
    const run = await runRelease("missing", { deployed: false });
    expect(run.report.outcome).toBe("refused");
    expect(run.report.exitCode).toBe(6);
    expect(run.report.reason).toMatch(
      /^stage staging: the release cannot be watched on AWS, nothing was changed: no stack outputs: stage staging has never been deployed/,
    );
    expect(run.stack.updates).toEqual([]);
    expect(run.weightsAfter).toEqual({ blue: 100, green: 0 });
  });
});
