import * as pulumi from "@pulumi/pulumi";
// A real app team imports this from the slipway package: `import { readStage } from "slipway/contract"`.
import { readStage } from "../../src/contract/readStage";

const config = new pulumi.Config("app-team");
const stage = readStage(new pulumi.StackReference(config.require("stageStack")));

// Typed all the way: stage.weights is Output<{blue: number; green: number}>, not Output<any>.
export const endpoint = stage.endpoint;
export const stableSlot = stage.stableSlot;
export const stableVersion = pulumi
  .all([stage.stableSlot, stage.releases])
  .apply(([slot, releases]) => releases[slot].version);
export const candidateShare = pulumi
  .all([stage.stableSlot, stage.weights])
  .apply(([slot, weights]) => 100 - weights[slot]);
export const schemaVersion = stage.outputs.apply((o) => o.schemaVersion);
// Secret in, secret out: the tester header never shows in plain text.
export const testerHeaderName = stage.testerHeader.apply((h) => h.name);
