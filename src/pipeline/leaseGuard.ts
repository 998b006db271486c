import { LeaseLostError } from "../store/errors";
import type { Lease, StoreLog } from "../store/store";
import { InterruptedError } from "./machine";

/**
 * A stage's lease while a command holds it: the heartbeat that keeps it, the fencing check
 * before each update, and what ended it when it was lost. Once lost, `signal` is aborted (the
 * release stops at its next safe point), `fence()` refuses, and the guarded log appends nothing.
 */
export interface LeaseGuard {
  readonly lease: Lease;
  /** Aborted (reason "lease lost") when the heartbeat or a fencing check finds the lease lost. */
  readonly signal: AbortSignal;
  /** Renews the lease (proof it is still this runner's), or throws what says it is not. */
  fence(): Promise<void>;
  /** Why the lease was lost, once it was. */
  lost(): Error | undefined;
  /** Stops the heartbeat and gives the lease up if it is still this runner's. */
  end(): Promise<void>;
}

export const LEASE_LOST = "lease lost";

/**
 * Guards `lease` for a command's duration: starts its heartbeat, and fences `logs` so that no
 * record is appended after the lease is known lost. `note` hears the loss and a failed release.
 */
export function guardLease(
  lease: Lease,
  options: { logs?: StoreLog[]; note?: (message: string) => void } = {},
): LeaseGuard {
  const controller = new AbortController();
  let lost: Error | undefined;
  const lose = (err: Error) => {
    if (lost) return;
    lost = err;
    options.note?.(
      `${LEASE_LOST} on stage ${lease.stage} (${err.message.split("\n")[0]}): stopping at the next safe point`,
    );
    controller.abort(LEASE_LOST);
  };
  const heartbeat = lease.startHeartbeat({ onLost: lose });
  for (const log of options.logs ?? [])
    log.beforeAppend(async () => {
      // A lease past its expiry may already be another runner's (a takeover needs nothing
      // more): a runner that was stopped or cut off proves it still holds the lease (a
      // conditional renewal) before it records anything, without waiting for its heartbeat.
      if (!lost && Date.now() >= lease.expiresAt.getTime())
        try {
          await lease.renew();
        } catch (err) {
          lose(
            err instanceof LeaseLostError
              ? err
              : new Error(
                  `this runner's lease expired at ${lease.expiresAt.toISOString()} and could not be renewed (${(err as Error).message})`,
                ),
          );
        }
      if (lost)
        throw new InterruptedError(
          `${LEASE_LOST}; nothing more is recorded by this runner: ${lost.message}`,
        );
    });
  return {
    lease,
    signal: controller.signal,
    async fence() {
      if (lost) throw lost;
      try {
        await lease.renew();
      } catch (err) {
        lose(err as Error);
        throw err;
      }
    },
    lost: () => lost,
    async end() {
      await heartbeat.stop();
      try {
        await lease.release();
      } catch (err) {
        // The lease expires on its own after its TTL; the command's outcome stands.
        options.note?.(
          `could not give up the lease of stage ${lease.stage} (${(err as Error).message}); it expires at ${lease.expiresAt.toISOString()}`,
        );
      }
    },
  };
}

/** What a command reports when it stopped because its lease was lost. */
export function lostLeaseReason(stage: string, err: Error): string {
  const why =
    err instanceof LeaseLostError
      ? err.message
      : `this runner could not prove it still holds the lease of stage ${stage} (${err.message}), so it stopped.`;
  return (
    `${why} The release stays in progress: the runner that holds the lease now continues it; ` +
    `once no runner holds it, continue with: slipway release --stage ${stage} --resume, or go back with: slipway rollback --stage ${stage}`
  );
}
