import { ExitCode } from "../../domain";

/**
 * SIGINT and SIGTERM abort the signal the pipeline watches: it stops at the next
 * safe point (an update in flight lands first), records `release.interrupted`,
 * releases the lease and exits 130. Without handlers Node would exit at once,
 * leaving the engine's lock and the lease behind. A third signal exits at once.
 */
export async function whileHandlingSignals<T>(
  command: string,
  run: (signal: AbortSignal) => Promise<T>,
  /** What the command finishes before it stops. */
  inFlight = "an update in flight lands first",
): Promise<T> {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals) => {
    count++;
    if (count >= 3) process.exit(ExitCode.interrupted);
    process.stderr.write(
      count === 1
        ? `slipway ${command}: ${name}: stopping at the next safe point (${inFlight})…\n`
        : `slipway ${command}: still stopping; a third signal exits at once and may leave the stage locked\n`,
    );
    controller.abort(name);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await run(controller.signal);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
