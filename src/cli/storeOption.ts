/**
 * `--store <url>`, on the commands that read or write the stage's lease or release log (release,
 * promote, rollback, plan, status, approve, history): src/store/url.ts resolves it, docs/release-store.md describes it.
 */
export const STORE_OPTION_HELP =
  "release store holding the stage's lease and release log: file:///dir or s3://bucket/prefix?region=… (default: $SLIPWAY_STORE, else derived from an s3:// backend, else the log directory)";
