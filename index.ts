// This repository's own Pulumi program: one service's stage, as any service project declares it
// (what `slipway init` writes, with `slipway/program` for the import), plus the fault tests' hooks.
import { slipwayStage } from "./components/program";
import { programFailpoint, programFailpointLanded } from "./src/pipeline/failpoint";

// Fault injection for the fault tests (src/pipeline/failpoint.ts); inert unless SLIPWAY_FAILPOINT is set.
programFailpoint();
const outputs = slipwayStage();
// Fault injection: `landed:<update>` holds the program once the route is applied (inert otherwise).
programFailpointLanded(outputs.routing);

export = outputs;
