import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkStageName, leaseHolderAlive, readHolder, StageLease } from "../pipeline/context";
import type { LeaseHolder } from "../pipeline/errors";
import {
  LogBrokenError,
  ReleaseLog,
  type LogProblem,
  type LogRecord,
  type NewLogRecord,
} from "../pipeline/log";
import { leaseTtlMs } from "./ttl";
import { LeaseLostError } from "./errors";
import {
  HeldLease,
  type Lease,
  type LeaseState,
  type NewHolder,
  type ReleaseStore,
  type StoreLog,
} from "./store";

/**
 * Today's files behind the store interface: `<dir>/<stage>.lock` (StageLease) and
 * `<dir>/<stage>.jsonl` (ReleaseLog). Machine-local, unless `dir` is on a shared file system.
 */
export class FileStore implements ReleaseStore {
  constructor(readonly dir: string) {}

  describe(): string {
    return pathToFileURL(this.dir).href;
  }

  async acquireLease(
    stage: string,
    holder: NewHolder,
    options: { ttlMs?: number } = {},
  ): Promise<Lease> {
    checkStageName(stage);
    const ttlMs = options.ttlMs ?? leaseTtlMs();
    const lease = StageLease.acquire(this.dir, stage, holder.what, {
      runnerId: holder.runnerId,
      ...(holder.ciJobUrl ? { ciJobUrl: holder.ciJobUrl } : {}),
      ttlMs,
    });
    return new FileLease(stage, lease, ttlMs);
  }

  async readLease(stage: string): Promise<LeaseState | undefined> {
    checkStageName(stage);
    const where = this.leasePath(stage);
    if (!existsSync(where)) return undefined;
    return { holder: readHolder(where), live: leaseHolderAlive(this.dir, stage), where };
  }

  log(stage: string): FileLog {
    checkStageName(stage);
    return new FileLog(ReleaseLog.forStage(this.dir, stage));
  }

  close(): void {
    // Nothing held open: every lease and log operation opens and closes its file.
  }

  private leasePath(stage: string): string {
    return join(this.dir, `${stage}.lock`);
  }
}

class FileLease extends HeldLease {
  constructor(
    stage: string,
    private readonly lease: StageLease,
    ttlMs: number,
  ) {
    super(stage, lease.path, lease.holder, ttlMs);
  }

  protected async renewOnce(): Promise<LeaseHolder> {
    const renewed = this.lease.renew(this.ttlMs);
    if (renewed) return renewed;
    throw new LeaseLostError(this.stage, this.where, this.generation, readHolder(this.where));
  }

  protected async releaseOnce(): Promise<void> {
    this.lease.release();
  }
}

class FileLog implements StoreLog {
  private readonly guards: (() => void | Promise<void>)[] = [];

  constructor(private readonly log: ReleaseLog) {}

  get stage(): string {
    return this.log.stage;
  }
  get where(): string {
    return this.log.path;
  }

  async read() {
    return this.log.verify();
  }

  async append(record: NewLogRecord): Promise<LogRecord> {
    for (const check of this.guards) await check();
    return this.log.append(record);
  }

  onAppend(listener: (record: LogRecord) => void): void {
    this.log.onAppend(listener);
  }

  beforeAppend(check: () => void | Promise<void>): void {
    this.guards.push(check);
  }

  broken(problems: LogProblem[]): LogBrokenError {
    return new LogBrokenError(this.log.path, this.stage, problems);
  }

  /** The records' lines exactly as written, oldest first (what a migration copies). */
  async lines(): Promise<{ lines: string[]; tornTail?: string }> {
    const reading = this.log.assertVerified();
    if (reading.records.length === 0) return { lines: [] };
    const text = readFileSync(this.log.path, "utf8");
    return {
      lines: text.split("\n").slice(0, reading.records.length),
      ...(reading.tornTail ? { tornTail: reading.tornTail.text } : {}),
    };
  }
}
