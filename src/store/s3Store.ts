import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { checkStageName, parseHolder } from "../pipeline/context";
import { PipelineBusyError, type LeaseHolder } from "../pipeline/errors";
import {
  chainRecord,
  verifyLogText,
  type LogProblem,
  type LogReading,
  type LogRecord,
  type NewLogRecord,
} from "../pipeline/log";
import { S3_CONNECT_TIMEOUT_MS, S3_MAX_ATTEMPTS, S3_REQUEST_TIMEOUT_MS } from "../defaults";
import { leaseTtlMs } from "./ttl";
import {
  LeaseLostError,
  LogPositionTakenError,
  StoreAccessError,
  StoreLeaseCorruptError,
  StoreLogBrokenError,
  StoreUnreachableError,
} from "./errors";
import {
  HeldLease,
  leaseContent,
  type Lease,
  type LeaseState,
  type NewHolder,
  type ReleaseStore,
  type StoreLog,
} from "./store";

/** Where an S3 store lives: parsed from its URL (url.ts). */
export interface S3Location {
  bucket: string;
  /** Without leading or trailing "/"; "" for the bucket's root. */
  prefix: string;
  /** http(s)://host:port of an S3-compatible server; undefined for AWS S3. */
  endpoint?: string;
  region?: string;
  forcePathStyle: boolean;
  /** An AWS shared-config profile to take credentials from. */
  profile?: string;
  /** The URL it was parsed from, credentials redacted: what messages name. */
  redactedUrl: string;
}

export interface S3StoreTuning {
  /**
   * The Pulumi project (the service) the stages belong to: one backend bucket holds the stacks of
   * many projects, so each project's leases and logs have their own folder,
   * `<prefix>/.slipway/<project>/<stage>/`. Without it, `<prefix>/.slipway/<stage>/`.
   */
  project?: string;
  /** Keys per ListObjectsV2 page (S3's maximum and default: 1000). */
  listPageSize?: number;
  maxAttempts?: number;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** What the lease object holds: the holder, and when it was given up. */
type LeaseObject = LeaseHolder & { releasedAt?: string };

const SEQ_DIGITS = 12;
const RECORD_KEY = /^(\d{12})\.json$/;

/**
 * The release store on S3-compatible object storage. Keys:
 * `<prefix>/.slipway/<project>/<stage>/lease.json` and
 * `<prefix>/.slipway/<project>/<stage>/log/<seq, 12 digits>.json`.
 * Every write is conditional: the lease is created with If-None-Match: * and changed only with
 * If-Match on the ETag its writer read; each log record is created once at its sequence number.
 */
export class S3Store implements ReleaseStore {
  private readonly client: S3Client;

  constructor(
    readonly location: S3Location,
    private readonly tuning: S3StoreTuning = {},
  ) {
    const config: S3ClientConfig = {
      ...(location.region ? { region: location.region } : {}),
      ...(location.endpoint ? { endpoint: location.endpoint } : {}),
      ...(location.profile ? { profile: location.profile } : {}),
      forcePathStyle: location.forcePathStyle,
      maxAttempts: tuning.maxAttempts ?? S3_MAX_ATTEMPTS,
      requestHandler: {
        connectionTimeout: tuning.connectTimeoutMs ?? S3_CONNECT_TIMEOUT_MS,
        requestTimeout: tuning.requestTimeoutMs ?? S3_REQUEST_TIMEOUT_MS,
      },
      // Checksums only where S3 requires them: older S3-compatible servers reject the new defaults.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    };
    this.client = new S3Client(config);
  }

  describe(): string {
    return this.location.redactedUrl;
  }

  /** Closes the client's connections (a store lives as long as its command). */
  close(): void {
    this.client.destroy();
  }

  /** `s3://bucket/<prefix>/.slipway/<stage>/<rest>`: how messages name an object. */
  objectUrl(key: string): string {
    return `s3://${this.location.bucket}/${key}`;
  }

  stageKey(stage: string, rest: string): string {
    checkStageName(stage);
    const base = this.location.prefix ? `${this.location.prefix}/` : "";
    const project = this.tuning.project ? `${this.tuning.project}/` : "";
    return `${base}.slipway/${project}${stage}/${rest}`;
  }

  async acquireLease(
    stage: string,
    holder: NewHolder,
    options: { ttlMs?: number } = {},
  ): Promise<Lease> {
    const ttlMs = options.ttlMs ?? leaseTtlMs();
    const key = this.stageKey(stage, "lease.json");
    const where = this.objectUrl(key);
    let found: { etag: string; lease: LeaseObject } | undefined;
    // Each pass either wins a conditional write or learns that someone else changed the lease;
    // a few passes cover racers that take over and give up in between.
    for (let attempt = 0; attempt < 5; attempt++) {
      const mine = leaseContent(holder, (found?.lease.generation ?? 0) + 1, ttlMs);
      const etag = await this.put(key, JSON.stringify(mine), found ? { ifMatch: found.etag } : {});
      if (etag !== undefined) {
        const lease = new S3Lease(this, stage, key, where, mine, etag, ttlMs);
        if (found && found.lease.releasedAt === undefined) lease.takenOverFrom = found.lease;
        return lease;
      }
      const current = await this.readLeaseObject(stage, key);
      if (current === undefined) {
        found = undefined; // deleted by hand in between: create it afresh
        continue;
      }
      if (
        current.lease.releasedAt === undefined &&
        Date.parse(current.lease.expiresAt!) > Date.now()
      )
        throw new PipelineBusyError(stage, where, current.lease);
      found = current;
    }
    throw new PipelineBusyError(stage, where, found?.lease);
  }

  async readLease(stage: string): Promise<LeaseState | undefined> {
    const key = this.stageKey(stage, "lease.json");
    const current = await this.readLeaseObject(stage, key);
    if (current === undefined || current.lease.releasedAt !== undefined) return undefined;
    return {
      holder: current.lease,
      live: Date.parse(current.lease.expiresAt!) > Date.now(),
      where: this.objectUrl(key),
    };
  }

  /** The lease object and its ETag, or undefined when there is none. */
  async readLeaseObject(
    stage: string,
    key: string,
  ): Promise<{ etag: string; lease: LeaseObject } | undefined> {
    const got = await this.get(key);
    if (got === undefined) return undefined;
    const lease = parseHolder(got.body) as LeaseObject | undefined;
    if (!lease || lease.generation === undefined || lease.expiresAt === undefined)
      throw new StoreLeaseCorruptError(stage, this.objectUrl(key), got.body);
    return { etag: got.etag, lease };
  }

  log(stage: string): S3Log {
    return new S3Log(this, stage, this.stageKey(stage, "log/"), this.tuning.listPageSize ?? 1000);
  }

  /**
   * A conditional PutObject: the new ETag, or undefined when the condition failed (412, or 409
   * for a concurrent conditional write to the same key). Other failures throw typed errors.
   */
  async put(
    key: string,
    body: string,
    condition: { ifMatch?: string },
  ): Promise<string | undefined> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: key,
          Body: body,
          ContentType: "application/json",
          ...(condition.ifMatch !== undefined
            ? { IfMatch: condition.ifMatch }
            : { IfNoneMatch: "*" }),
        }),
      );
      return out.ETag ?? "";
    } catch (err) {
      const status = statusOf(err);
      if (status === 412 || status === 409) return undefined;
      // If-Match on a key that is gone: the lease was deleted by hand, the condition failed all the same.
      if (condition.ifMatch !== undefined && status === 404 && codeOf(err) === "NoSuchKey")
        return undefined;
      throw this.failure(err, "PutObject", key);
    }
  }

  /** The object's text and ETag, or undefined when there is no such key. */
  async get(key: string): Promise<{ body: string; etag: string } | undefined> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.location.bucket, Key: key }),
      );
      return { body: (await out.Body?.transformToString("utf8")) ?? "", etag: out.ETag ?? "" };
    } catch (err) {
      if (codeOf(err) === "NoSuchKey") return undefined;
      throw this.failure(err, "GetObject", key);
    }
  }

  /** Deletes one object (no condition: what it removes was judged dead by its caller). */
  async remove(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: key }));
    } catch (err) {
      if (codeOf(err) === "NoSuchKey") return;
      throw this.failure(err, "DeleteObject", key);
    }
  }

  /** Every key under `prefix` with its ETag, in key order, across pages. */
  async list(prefix: string, pageSize: number): Promise<{ key: string; etag: string }[]> {
    const found: { key: string; etag: string }[] = [];
    let token: string | undefined;
    do {
      try {
        const page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.location.bucket,
            Prefix: prefix,
            MaxKeys: pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        for (const o of page.Contents ?? []) found.push({ key: o.Key!, etag: o.ETag ?? "" });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } catch (err) {
        throw this.failure(err, "ListObjectsV2", prefix);
      }
    } while (token);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private failure(err: unknown, operation: string, key: string): Error {
    const status = statusOf(err);
    const code = codeOf(err);
    const url = this.describe();
    if (code === "CredentialsProviderError")
      return new StoreAccessError(url, operation, key, code, undefined, CREDENTIALS_HINT);
    if (/region is missing/i.test(messageOf(err)))
      return new StoreAccessError(url, operation, key, "RegionMissing", undefined, REGION_HINT);
    if (status === undefined || status >= 500)
      return new StoreUnreachableError(url, operation, `${code}: ${messageOf(err)}`.slice(0, 300));
    const hint =
      code === "NoSuchBucket"
        ? `Bucket ${this.location.bucket} does not exist: create it (aws s3 mb s3://${this.location.bucket}) or fix the store URL.`
        : status === 403 || status === 401
          ? `The credentials were refused or lack permission (s3:GetObject, s3:PutObject, s3:ListBucket on the bucket). ${CREDENTIALS_HINT}`
          : "See docs/release-store.md for what the store needs from an S3-compatible server.";
    return new StoreAccessError(url, operation, key, code, status, hint);
  }
}

const CREDENTIALS_HINT =
  "Credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE or the URL's profile=, web identity, or the instance's role.";
const REGION_HINT =
  "No region: add region=<region> to the store URL, or set AWS_REGION (S3-compatible servers usually take us-east-1).";

const statusOf = (err: unknown): number | undefined =>
  (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
const codeOf = (err: unknown): string =>
  (err as { Code?: string })?.Code ?? (err as Error)?.name ?? "Error";
const messageOf = (err: unknown): string => (err as Error)?.message ?? String(err);

class S3Lease extends HeldLease {
  constructor(
    private readonly store: S3Store,
    stage: string,
    private readonly key: string,
    where: string,
    held: LeaseHolder,
    private etag: string,
    ttlMs: number,
  ) {
    super(stage, where, held, ttlMs);
  }

  protected async renewOnce(): Promise<LeaseHolder> {
    const renewed = { ...this.current, expiresAt: new Date(Date.now() + this.ttlMs).toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      const etag = await this.store.put(this.key, JSON.stringify(renewed), { ifMatch: this.etag });
      if (etag !== undefined) {
        this.etag = etag;
        return renewed;
      }
      // A renewal whose answer was lost on the way back changed the ETag all the same:
      // the lease is still ours when it names this runner and generation.
      const now = await this.store.readLeaseObject(this.stage, this.key);
      if (!now || !this.isOurs(now.lease))
        throw new LeaseLostError(this.stage, this.where, this.generation, now?.lease);
      this.etag = now.etag;
    }
    throw new LeaseLostError(this.stage, this.where, this.generation, this.current);
  }

  protected async releaseOnce(): Promise<void> {
    // Overwritten as released rather than deleted: the generation keeps counting up across
    // holders, and the write stays conditional on servers without conditional deletes.
    const released: LeaseObject = {
      ...this.current,
      expiresAt: new Date().toISOString(),
      releasedAt: new Date().toISOString(),
    };
    await this.store.put(this.key, JSON.stringify(released), { ifMatch: this.etag });
  }

  private isOurs(lease: LeaseObject): boolean {
    return (
      lease.releasedAt === undefined &&
      lease.runnerId === this.current.runnerId &&
      lease.generation === this.current.generation &&
      lease.pid === this.current.pid &&
      lease.host === this.current.host
    );
  }
}

/** One object per record, keyed by its sequence number; read in key order and verified as one log. */
export class S3Log implements StoreLog {
  /** Bodies already read, by key and ETag: an unchanged object is not fetched again. */
  private readonly cache = new Map<string, { etag: string; body: string }>();
  private readonly listeners: ((record: LogRecord) => void)[] = [];
  private readonly guards: (() => void | Promise<void>)[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: S3Store,
    readonly stage: string,
    private readonly prefix: string,
    private readonly pageSize: number,
  ) {}

  get where(): string {
    return this.store.objectUrl(this.prefix);
  }

  keyOf(seq: number): string {
    return `${this.prefix}${String(seq).padStart(SEQ_DIGITS, "0")}.json`;
  }

  async read(): Promise<LogReading> {
    return (await this.readLines()).reading;
  }

  /**
   * Lists and fetches every record object, then verifies their lines joined as one log text with
   * verifyLogText, so the chain and its problems are those of a file log; problems name objects.
   */
  async readLines(): Promise<{ reading: LogReading; lines: string[] }> {
    const listed = await this.store.list(this.prefix, this.pageSize);
    const problems: LogProblem[] = [];
    const records: { key: string; etag: string }[] = [];
    listed.forEach((o, i) => {
      const name = o.key.slice(this.prefix.length);
      if (RECORD_KEY.test(name)) records.push(o);
      else
        problems.push({
          line: i + 1,
          where: this.store.objectUrl(o.key),
          problem: `not a record object (names are <${SEQ_DIGITS}-digit seq>.json)`,
        });
    });
    const bodies = await this.bodies(records);
    const lines = bodies.map((body, i) => {
      if (!body.includes("\n")) return body;
      problems.push({
        line: i + 1,
        where: this.store.objectUrl(records[i]!.key),
        problem: "holds a line break; a record is one line",
      });
      return body.replace(/\n/g, "⏎");
    });
    const text = lines.length > 0 ? `${lines.join("\n")}\n` : "";
    const verified = verifyLogText(text, this.stage);
    for (const p of verified.problems)
      problems.push({ ...p, where: this.store.objectUrl(records[p.line - 1]!.key) });
    // The chain orders records; the keys must agree, or the next append would go to the wrong place.
    lines.forEach((line, i) => {
      const keySeq = Number(RECORD_KEY.exec(records[i]!.key.slice(this.prefix.length))![1]);
      const seq = seqOf(line);
      if (seq !== undefined && seq !== keySeq)
        problems.push({
          line: i + 1,
          where: this.store.objectUrl(records[i]!.key),
          problem: `holds seq ${seq}; its key says ${keySeq}`,
        });
    });
    problems.sort((a, b) => a.line - b.line);
    return { reading: { records: verified.records, problems }, lines };
  }

  private async bodies(objects: { key: string; etag: string }[]): Promise<string[]> {
    const out: string[] = new Array(objects.length);
    const CONCURRENCY = 8;
    for (let start = 0; start < objects.length; start += CONCURRENCY) {
      await Promise.all(
        objects.slice(start, start + CONCURRENCY).map(async (o, j) => {
          const cached = this.cache.get(o.key);
          if (cached && cached.etag === o.etag && o.etag !== "") {
            out[start + j] = cached.body;
            return;
          }
          const got = await this.store.get(o.key);
          // Deleted between the listing and the read: an empty line, reported as a problem.
          const body = got?.body ?? "";
          if (got) this.cache.set(o.key, { etag: got.etag, body });
          out[start + j] = body;
        }),
      );
    }
    return out;
  }

  append(record: NewLogRecord): Promise<LogRecord> {
    const run = this.queue.then(async () => {
      for (const check of this.guards) await check();
      return this.appendOnce(record);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendOnce(record: NewLogRecord): Promise<LogRecord> {
    const { reading, lines } = await this.readLines();
    if (reading.problems.length > 0)
      throw new StoreLogBrokenError(this.where, this.stage, reading.problems);
    const tail = reading.records.at(-1);
    const { record: full, line } = chainRecord(
      this.stage,
      record,
      tail ? { seq: tail.seq, line: lines.at(-1)! } : undefined,
    );
    await this.putLine(full.seq, line);
    for (const listener of this.listeners) {
      try {
        listener(full);
      } catch {
        // A listener's problem is not the log's.
      }
    }
    return full;
  }

  /**
   * Writes one record's line at its position, only if that position is free; otherwise reads
   * back what the other runner wrote there and throws LogPositionTakenError.
   */
  async putLine(seq: number, line: string): Promise<void> {
    const key = this.keyOf(seq);
    const etag = await this.store.put(key, line, {});
    if (etag === undefined) {
      const winner = await this.store.get(key).catch(() => undefined);
      throw new LogPositionTakenError(
        this.stage,
        seq,
        this.store.objectUrl(key),
        winner ? parseRecord(winner.body) : undefined,
      );
    }
    this.cache.set(key, { etag, body: line });
  }

  onAppend(listener: (record: LogRecord) => void): void {
    this.listeners.push(listener);
  }

  beforeAppend(check: () => void | Promise<void>): void {
    this.guards.push(check);
  }

  broken(problems: LogProblem[]): StoreLogBrokenError {
    return new StoreLogBrokenError(this.where, this.stage, problems);
  }
}

function seqOf(line: string): number | undefined {
  try {
    const seq = (JSON.parse(line) as { seq?: unknown })?.seq;
    return typeof seq === "number" ? seq : undefined;
  } catch {
    return undefined;
  }
}

function parseRecord(text: string): LogRecord | undefined {
  try {
    const value = JSON.parse(text) as LogRecord;
    return typeof value?.event === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
