// This repository's own Pulumi program: one service's stage, as any service project declares it
// (what `slipway init` writes, with `slipway/program` for the import).
import { slipwayStage } from "./components/program";

export = slipwayStage();
