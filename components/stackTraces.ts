/**
 * Runs `declare` with V8's stack-trace capture off (`Error.stackTraceLimit = 0`), for a
 * component declaring its children. The SDK's `debuggablePromise` captures and formats
 * `new Error().stack` (through source maps) for every promise an output creates, about four
 * per output property, and shows it only in a PULUMI_DEBUG_PROMISE_LEAKS report: a third to
 * half of the program's CPU with many services, and most of its garbage.
 *
 * Kept: the source position Pulumi records for each resource (Resource.callsites raises the
 * limit itself while it reads the caller). Lost, for what is created inside `declare`: the
 * stacks of a PULUMI_DEBUG_PROMISE_LEAKS report (with that variable set, capture stays on)
 * and the frames of an Error thrown synchronously (its message is unchanged).
 */
export function withoutStackTraces<T>(declare: () => T): T {
  if (process.env.PULUMI_DEBUG_PROMISE_LEAKS) return declare();
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return declare();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
