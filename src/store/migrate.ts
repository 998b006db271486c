import { existsSync } from "node:fs";
import { join } from "node:path";
import { MigrationRefusedError } from "./errors";
import { FileStore } from "./fileStore";
import { S3Store } from "./s3Store";
import { runnerHolder, type ReleaseStore } from "./store";

export interface Migration {
  stage: string;
  copied: number;
  from: string;
  to: string;
  /** An unterminated last line of the file log (a crash mid-write): not a record, not copied. */
  tornTail?: string;
}

/**
 * Moves a stage's file log into an S3 store once: the file log must verify and the S3 log must be
 * empty; each record's exact line goes to its seq's object (created only if absent), and the copy
 * is read back and verified against the file's last line before this returns.
 */
export async function migrateFileLog(
  from: FileStore,
  to: S3Store,
  stage: string,
): Promise<Migration> {
  const source = from.log(stage);
  const target = to.log(stage);
  const reading = await source.read();
  if (reading.problems.length > 0)
    throw new MigrationRefusedError(
      `migrate ${source.where} to ${target.where}: the file log does not verify (${reading.problems
        .slice(0, 3)
        .map((p) => `line ${p.line}: ${p.problem}`)
        .join("; ")}); nothing was copied. A log that does not verify is not moved as evidence.`,
    );
  const existing = await target.read();
  if (existing.records.length > 0 || existing.problems.length > 0)
    throw new MigrationRefusedError(
      `migrate ${source.where} to ${target.where}: the S3 log already holds ${existing.records.length} record(s); nothing was copied. ` +
        "A log is moved once, into an empty store.",
    );
  const { lines, tornTail } = await source.lines();
  for (const [i, line] of lines.entries()) await target.putLine(i + 1, line);
  const { reading: copy, lines: copied } = await target.readLines();
  if (
    copy.problems.length > 0 ||
    copied.length !== lines.length ||
    copied.some((line, i) => line !== lines[i])
  )
    throw new MigrationRefusedError(
      `migrate ${source.where} to ${target.where}: the copy does not verify (${copy.records.length} of ${lines.length} records` +
        `${copy.problems.length > 0 ? `; ${copy.problems[0]!.where}: ${copy.problems[0]!.problem}` : ""}). Another runner may have written there.`,
    );
  return {
    stage,
    copied: lines.length,
    from: source.where,
    to: target.where,
    ...(tornTail !== undefined ? { tornTail } : {}),
  };
}

/**
 * `slipway migrate-log`: moves the stage's file log in `fromDir` into `to`, under the stage's
 * lease (no release may append meanwhile). Refused (MigrationRefusedError) unless `to` is an S3
 * store and the file log exists.
 */
export async function migrateStageLog(args: {
  stage: string;
  fromDir: string;
  to: ReleaseStore;
}): Promise<Migration> {
  if (!(args.to instanceof S3Store))
    throw new MigrationRefusedError(
      `migrate-log: the release store is ${args.to.describe()}, not an S3 store; name one with --store s3://… (or SLIPWAY_STORE, or an s3:// backend)`,
    );
  const from = new FileStore(args.fromDir);
  if (!existsSync(join(args.fromDir, `${args.stage}.jsonl`)))
    throw new MigrationRefusedError(
      `migrate-log: --from ${args.fromDir} holds no release log of stage ${args.stage} (${args.stage}.jsonl)`,
    );
  const lease = await args.to.acquireLease(args.stage, runnerHolder("migrate-log"));
  try {
    return await migrateFileLog(from, args.to, args.stage);
  } finally {
    await lease.release();
  }
}
