import type { ReleaseReport } from "../pipeline/release";
import type { AcceptanceCheck } from "./hookSink";
import type { LoadTally } from "./load";
import type { ReleaseFacts } from "./report";
import type { ObservedStep } from "./split";
import type { Runtime } from "../config/schema";

/** What a rehearsal produced: what `rehearse` returns and what its summary reads. */

export type RehearsalMode = "cluster" | "render";

export interface RehearsedRelease {
  runtime: Runtime;
  version: string;
  expected: "promoted" | "rolledBack";
  result: ReleaseReport;
  facts?: ReleaseFacts;
  reportFile?: string;
  chartFile?: string;
  /** What the load generator sent and got back during the release. */
  load?: LoadTally;
  /** Per stretch of constant weights: the weights held and the split the services served. */
  steps?: ObservedStep[];
  /** The afterDeploy acceptance hook's checks of the candidate (through the tester header). */
  acceptance?: AcceptanceCheck[];
  /** The release events the notification sink received, in order. */
  notifications?: string[];
}

export interface RehearsalResult {
  ok: boolean;
  releases: RehearsedRelease[];
  /** Set when the rehearsal itself failed (build, Prometheus, an exception), not a release. */
  error?: string;
  durationMs: number;
  mode: RehearsalMode;
  /** The Gateway the traffic went through (cluster mode). */
  gatewayUrl?: string;
  /** Where summary.json was written. */
  summaryFile?: string;
}
