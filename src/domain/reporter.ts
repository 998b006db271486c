import type { PipelineOutcome } from "./outcomes";

/** What a pipeline command tells as it goes: the CLI prints it, the rehearsal and tests collect it. */
export type PipelineEvent =
  | { type: "info"; message: string }
  | {
      type: "update";
      message: string;
      phase: "started" | "succeeded" | "failed";
      changes?: Record<string, number>;
      durationMs?: number;
    }
  | { type: "weights"; blue: number; green: number; verified: boolean }
  | { type: "wait"; label: string; seconds: number }
  | { type: "analysis"; index: number; verdict: string; reasons: string[] }
  | {
      type: "outcome";
      outcome: Exclude<PipelineOutcome, "error">;
      releaseId?: string;
      reason?: string;
    };

export type Reporter = (event: PipelineEvent) => void;
