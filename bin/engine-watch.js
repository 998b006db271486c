// @ts-check
"use strict";
/**
 * Ends the program, and the language host that runs it, once the Pulumi engine that started
 * them is gone. The engine (`pulumi up`) starts `pulumi-language-nodejs` in a process group of
 * its own, and the host starts this program; a SIGKILL of the release's process group (or of
 * the engine alone) reaches neither. The host asks the engine whether it lives only every five
 * minutes, and even then waits for the program's Run call to finish, so a program blocked on a
 * resource monitor nobody answers kept both running for as long as it blocked (an hour, seen).
 *
 * The chain is engine → host → program. Once a second a worker thread reads it from the
 * program's end: its parent (`process.ppid`) must still be the host it started under, and on
 * Linux the host's parent (/proc/<host>/stat) must still be the engine. When either link is
 * broken, the host gets SIGTERM (it is our parent and runs `pulumi-language-nodejs`; nothing
 * else is signalled), a line on stderr says why, and the program is killed (SIGKILL): nothing is
 * left to receive what it declares. A worker, so that a program whose main thread spins or blocks
 * is ended too; unref'd, so that it never keeps a finished program alive.
 */
const fs = require("node:fs");
const path = require("node:path");
const { isMainThread, Worker, workerData } = require("node:worker_threads");

const HOST_BINARY = "pulumi-language-nodejs";

/**
 * The parent pid of `pid` and its command line, from /proc; undefined where there is no /proc
 * or no such process.
 * @param {number} pid
 * @returns {{ ppid: number, argv: string[] } | undefined}
 */
function procInfo(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name in parentheses: state (field 3), ppid (field 4).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined;
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return { ppid: Number(fields[1]), argv };
  } catch {
    return undefined;
  }
}

/**
 * @typedef {{ slipwayEngineWatch: true, intervalMs: number, hostPid: number, enginePid?: number, isHost: boolean }} Watch
 */

/**
 * Starts the watch (in a worker thread of this process).
 * @param {{ intervalMs?: number }} [options]
 * @returns {() => Promise<number>} stops watching
 */
function watchEngine(options = {}) {
  const hostPid = process.ppid;
  const host = procInfo(hostPid);
  /** @type {Watch} */
  const watch = {
    slipwayEngineWatch: true,
    intervalMs: options.intervalMs ?? 1000,
    hostPid,
    isHost: !!host && host.argv.slice(0, 2).some((a) => path.basename(a) === HOST_BINARY),
  };
  if (host) watch.enginePid = host.ppid;
  const worker = new Worker(__filename, { workerData: watch });
  worker.unref();
  return () => worker.terminate();
}

/** @param {Watch} w */
function runWatch(w) {
  /** @returns {string | undefined} why the engine counts as gone */
  const broken = () => {
    if (process.ppid !== w.hostPid) return `its parent (pid ${w.hostPid}) is gone`;
    if (w.enginePid === undefined) return undefined;
    const now = procInfo(w.hostPid);
    if (now && now.ppid !== w.enginePid)
      return `the Pulumi engine (pid ${w.enginePid}) that started its language host is gone`;
    return undefined;
  };
  const timer = setInterval(() => {
    const why = broken();
    if (why === undefined) return;
    clearInterval(timer);
    if (w.isHost && process.ppid === w.hostPid) {
      try {
        process.kill(w.hostPid, "SIGTERM");
      } catch {
        // gone meanwhile
      }
    }
    // Written here, not through the main thread, which may never run again.
    fs.writeSync(
      2,
      `slipway: the program stops: ${why}; nothing is left to receive what it declares.\n`,
    );
    process.kill(process.pid, "SIGKILL");
  }, w.intervalMs);
}

if (!isMainThread && workerData?.slipwayEngineWatch) runWatch(/** @type {Watch} */ (workerData));

module.exports = { watchEngine };
