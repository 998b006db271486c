import type { PipelineEvent, Reporter } from "../domain";

/**
 * Human output with live progress on a terminal, or JSON Lines for machines
 * (`--json`): one object per event, the last one `{"type":"outcome",…}`.
 */
export function makeReporter(json: boolean, out: NodeJS.WriteStream = process.stdout): Reporter {
  if (json)
    return (event) => out.write(JSON.stringify({ at: new Date().toISOString(), ...event }) + "\n");
  const tty = out.isTTY === true;
  let countdown: NodeJS.Timeout | undefined;
  const stopCountdown = () => {
    if (countdown) clearInterval(countdown);
    countdown = undefined;
    if (tty) out.write("\r\x1b[K");
  };
  return (event: PipelineEvent) => {
    stopCountdown();
    out.write(describe(event) + "\n");
    if (event.type === "wait" && tty && event.seconds > 1) {
      // A live countdown on a terminal; plain logs get the one line above.
      const end = Date.now() + event.seconds * 1000;
      countdown = setInterval(() => {
        const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
        out.write(`\r\x1b[K  … ${event.label}: ${left}s left`);
        if (left === 0) stopCountdown();
      }, 1000);
      countdown.unref();
    }
  };
}

export function describe(event: PipelineEvent): string {
  switch (event.type) {
    case "info":
      return `• ${event.message}`;
    case "update":
      if (event.phase === "started") return `→ update: ${event.message}`;
      if (event.phase === "failed") return `✗ update failed: ${event.message}`;
      return `✓ update done in ${((event.durationMs ?? 0) / 1000).toFixed(1)}s (${Object.entries(
        event.changes ?? {},
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")})`;
    case "weights":
      return `${event.verified ? "✓" : "✗"} weights in force: blue ${event.blue}% / green ${event.green}%${event.verified ? "" : " (DRIFT)"}`;
    case "wait":
      return `… ${event.label} ${event.seconds}s`;
    case "analysis":
      return `${event.verdict === "pass" ? "✓" : event.verdict === "fail" ? "✗" : "?"} analysis at step ${event.index + 1}: ${event.verdict}${event.reasons.length ? ` (${event.reasons.join("; ")})` : ""}`;
    case "outcome":
      return `== ${event.outcome.toUpperCase()}${event.releaseId ? ` ${event.releaseId}` : ""}${event.reason ? `: ${event.reason}` : ""}`;
  }
}
