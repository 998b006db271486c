/**
 * The runtime defaults of a release: the fixed numbers the pipeline, the analysis and the
 * webhook calls use that are not stack config (config defaults sit on their fields in
 * src/config/schema.ts, src/hooks/spec.ts and src/notify/spec.ts). One file, each value with
 * why it is what it is (as Argo Rollouts' utils/defaults), so a reader finds them together
 * and a change to one is a change to this file. Pure: imports nothing.
 */

/**
 * How often a pause during a canary on AWS looks at the candidate's CloudWatch alarms: at most
 * this far apart. The ALB publishes its metrics per minute and the alarms evaluate 60-second
 * periods, so an alarm cannot change state faster; looking more often reads the same state.
 */
export const ALARM_POLL_MS = 60_000;

/**
 * How long one request of the header-route smoke check may take. A health path answers in
 * milliseconds; a candidate that does not answer in 5 s counts as a failed request (code 0)
 * instead of holding the release for the OS's connect timeout.
 */
export const SMOKE_REQUEST_TIMEOUT_MS = 5_000;

/**
 * How many times an inconclusive analysis step (too few samples to judge) is run again before
 * the release pauses for a person. One more window usually brings enough traffic; more would
 * keep a candidate on a weight nobody judged for a long time.
 */
export const INCONCLUSIVE_RETRIES = 1;

/**
 * How many times the rollback update is tried before the release ends as failed. It is the
 * one update that must land (weight back to the stable slot); three covers a transient
 * engine or provider error without retrying a real refusal for long.
 */
export const ROLLBACK_ATTEMPTS = 3;

/**
 * A stage lease that names no holder this long after it was created is corrupt, not being
 * written: a lease is written in one call right after it is created, so a moment is enough.
 */
export const CORRUPT_LEASE_AFTER_MS = 5_000;

/**
 * How long an append to the release log waits for another writer's append lock before it
 * gives up and names the holder. An append takes milliseconds; 10 s only ends in a lock left
 * by a process that is gone or hung.
 */
export const APPEND_LOCK_WAIT_MS = 10_000;

/** How long an append waits between looks at a held append lock: short, as appends are. */
export const APPEND_LOCK_POLL_MS = 20;

/**
 * The wait before a webhook's (hook or notification) attempt n ≥ 2: this, doubling, at most
 * WEBHOOK_BACKOFF_MAX_MS. A receiver that is restarting is back within a second or two.
 */
export const WEBHOOK_BACKOFF_FIRST_MS = 250;
/** The longest wait between a webhook's attempts: ten retries (the most config allows) wait under 16 s in all. */
export const WEBHOOK_BACKOFF_MAX_MS = 2_000;

/** How much of a webhook's response body the release log keeps: enough for an error message. */
export const WEBHOOK_EXCERPT_BYTES = 300;

/**
 * A serving probe's request through the Gateway (src/pipeline/serving.ts) may take this long.
 * A health endpoint answers in milliseconds; 5 s leaves room for a machine under load.
 */
export const SERVING_PROBE_TIMEOUT_MS = 5_000;

/**
 * Attempts of one serving probe before it counts as not served. One lost request on a busy
 * machine must not roll back a good release; three in a row is a Gateway that does not serve.
 */
export const SERVING_PROBE_ATTEMPTS = 3;

/**
 * How long a stage lease lives past its last renewal (the release store, docs/release-store.md):
 * a runner that dies is taken over within a minute; SLIPWAY_LEASE_TTL_SECONDS overrides it.
 */
export const LEASE_TTL_MS = 60_000;

/**
 * The lease's heartbeat renews it every TTL × this: three renewals in a row may fail before it
 * expires, and a heartbeat that keeps failing gives up while one interval of the lease is left.
 */
export const HEARTBEAT_FRACTION = 1 / 4;

/** An S3 store that does not accept a connection within this is unreachable, not slow. */
export const S3_CONNECT_TIMEOUT_MS = 3_000;

/** An S3 request that has no answer within this is unreachable, not slow. */
export const S3_REQUEST_TIMEOUT_MS = 10_000;

/** The SDK's attempts per S3 request (1 retry with backoff) before the store counts as unreachable. */
export const S3_MAX_ATTEMPTS = 2;
