import { basename } from "node:path";
import { freePort, startChild, waitUntil, which, type Child } from "../../src/processes";

/**
 * The provider tier's servers (Prometheus, moto) are started with the same
 * process helpers the rehearsal uses; this file only adds the test's rules.
 */
export { freePort };

/** Resolves a command on PATH, or throws: a missing server fails the tier, it never skips it. */
export function requireCommand(name: string, hint: string): string {
  const full = which(name);
  if (full) return full;
  throw new Error(
    `${name} is not installed; run \`bash scripts/install-test-servers.sh\` (${hint})`,
  );
}

export type Started = Child;

/** Starts a server process with the test's environment, keeping its output for error messages. */
export function startProcess(command: string, args: string[]): Started {
  return startChild(basename(command), command, args, process.env as Record<string, string>);
}

/** Polls `probe` until it resolves true, or throws with the server's output after `timeoutMs`. */
export function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  started?: Started,
): Promise<void> {
  return waitUntil(what, probe, timeoutMs, started);
}
