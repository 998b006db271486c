import type { StageOutputs } from "../contract/outputs";
import { parseImageRef } from "../governance/artifact";
import type { LogRecord } from "./log";

/**
 * What a promotion gate may believe about the source stage. The release log says
 * which release passed; the source stack's own outputs (written by the engine with
 * the update that applied them) must say the same: that release, its digest on the
 * stable slot, promoted, and when. A log alone, however well chained, proves
 * nothing (it is not signed), so it is never the only evidence. Pure.
 */
export interface PassedRelease {
  releaseId: string;
  artifact: NonNullable<LogRecord["artifact"]>;
  /** From the source stack, not the log: where the soak starts. */
  promotedAt: string;
}

export type Evidence = { ok: true; passed: PassedRelease } | { ok: false; reason: string };

export function passedReleaseOf(args: {
  from: string;
  to: string;
  records: LogRecord[];
  outputs: StageOutputs | undefined;
  /** Which artifact was asked for; default: the source's current stable release. */
  image?: string;
}): Evidence {
  const { from, to, records, outputs } = args;
  const no = (reason: string): Evidence => ({
    ok: false,
    reason: `${reason}; only an artifact whose release ended promoted in ${from}, and is still its stable release, may go to ${to}`,
  });
  if (!outputs) return no(`stage ${from} has never been deployed`);
  const rec = outputs.release;
  if (!rec) return no(`stage ${from}'s stack records no release`);
  if (rec.phase !== "completed" && rec.phase !== "promoted")
    return no(`stage ${from}'s last release ${rec.id} is ${rec.phase}, not promoted`);
  if (!rec.promotedAt || Number.isNaN(Date.parse(rec.promotedAt)))
    return no(`stage ${from}'s stack records no promotion time for release ${rec.id}`);
  const stable = outputs.releases[outputs.stableSlot];
  if (rec.candidateSlot !== outputs.stableSlot || stable.image !== rec.artifact.image)
    return no(
      `stage ${from}'s stable slot ${outputs.stableSlot} runs ${stable.image}, not release ${rec.id}'s ${rec.artifact.image}`,
    );
  if (args.image && args.image !== rec.artifact.image)
    return no(
      `${args.image} is not the stable release of ${from} (its stack says ${rec.artifact.image}, release ${rec.id})`,
    );

  const mine = records.filter((r) => r.releaseId === rec.id);
  const started = mine.find((r) => r.event === "release.started");
  if (!started?.artifact)
    return no(`the release log of ${from} has no start record for release ${rec.id}`);
  const digest = parseImageRef(rec.artifact.image, `stage ${from}'s stable image`).digest;
  if (started.artifact.image !== rec.artifact.image || started.artifact.digest !== digest)
    return no(
      `the release log of ${from} says release ${rec.id} was ${started.artifact.image} (${started.artifact.digest}); its stack says ${rec.artifact.image} (${digest})`,
    );
  const promoted = mine.find(
    (r) => r.event === "update.succeeded" && r.figures?.transition === "promote",
  );
  if (!promoted) return no(`the release log of ${from} has no promote update for ${rec.id}`);
  // The stack's promotedAt is set when the promote update is prepared; the log records it landing.
  if (Date.parse(promoted.at) < Date.parse(rec.promotedAt))
    return no(
      `the release log of ${from} says ${rec.id} was promoted at ${promoted.at}, before its stack's ${rec.promotedAt}`,
    );
  const ended = mine.find((r) => r.event === "release.completed");
  if (rec.phase === "completed" && !ended)
    return no(`the release log of ${from} does not record release ${rec.id} completing`);
  return {
    ok: true,
    passed: {
      releaseId: rec.id,
      artifact: { ...started.artifact },
      promotedAt: rec.promotedAt,
    },
  };
}
