import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { scratchDir, sweepScratchDirs } from "../../../src/files";
import { clearDeadEngineLocks } from "../../../src/pipeline/engineLock";

/** What a killed release leaves on disk: `slipway-up-*` scratch folders and engine lock files. */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A pid that ran and has exited (reaped), so that nothing runs under it for now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(r.stdout.toString());
}

const HOUR = 60 * 60 * 1000;

/** Sets the modification time of `path` (and its entries) `ageMs` into the past. */
function age(path: string, ageMs: number): void {
  const t = new Date(Date.now() - ageMs);
  if (statSync(path).isDirectory())
    for (const e of readdirSync(path)) utimesSync(join(path, e), t, t);
  utimesSync(path, t, t);
}

describe("scratch folders: removed by a later sweep once their owner is gone", () => {
  it("names the folder with its owner's pid", () => {
    const d = scratchDir("slipway-scratch-test-");
    dirs.push(d);
    expect(d).toMatch(new RegExp(`slipway-scratch-test-${process.pid}-[^/]+$`));
    expect(existsSync(d)).toBe(true);
  });

  it("removes a dead owner's folder untouched for an hour; keeps a live owner's, a recent one and others' names", () => {
    const root = tempDir("slipway-sweep-root-");
    const make = (name: string, ageMs: number) => {
      const p = join(root, name);
      mkdirSync(p);
      writeFileSync(join(p, "events.jsonl"), "{}\n");
      age(p, ageMs);
      return p;
    };
    const dead = deadPid();
    const stale = make(`slipway-up-${dead}-aaaaaa`, 2 * HOUR);
    const legacy = make("slipway-up-bbbbbb", 2 * HOUR);
    const recent = make(`slipway-up-${dead}-cccccc`, 60_000);
    const live = make(`slipway-up-${process.pid}-dddddd`, 2 * HOUR);
    const other = make("someone-else-eeeeee", 2 * HOUR);
    // A file written a minute ago in an old folder: still in use.
    const busy = make(`slipway-up-${dead}-ffffff`, 2 * HOUR);
    writeFileSync(join(busy, "events.jsonl"), "{}\n{}\n");

    const removed = sweepScratchDirs("slipway-up-", HOUR, root);

    expect(removed.sort()).toEqual([legacy, stale].sort());
    for (const p of [stale, legacy]) expect(existsSync(p)).toBe(false);
    for (const p of [recent, live, other, busy]) expect(existsSync(p)).toBe(true);
  });
});

describe("engine locks: a dead lock goes with its .attrs file", () => {
  it("clears a dead lock and its attrs, and attrs whose lock is gone; leaves live locks, fresh attrs and other stages", () => {
    const backend = tempDir("slipway-locks-");
    const dir = join(backend, ".pulumi", "locks", "organization", "proj", "dev");
    const other = join(backend, ".pulumi", "locks", "organization", "proj", "prod");
    mkdirSync(dir, { recursive: true });
    mkdirSync(other, { recursive: true });
    const lock = (d: string, name: string, pid: number) => {
      const file = join(d, `${name}.json`);
      writeFileSync(file, JSON.stringify({ pid, hostname: hostname(), timestamp: "t" }));
      writeFileSync(`${file}.attrs`, "{}");
      return file;
    };
    const dead = lock(dir, "dead", deadPid());
    const live = lock(dir, "live", process.pid);
    const otherDead = lock(other, "dead", deadPid());
    const orphanOld = join(dir, "gone.json.attrs");
    writeFileSync(orphanOld, "{}");
    age(orphanOld, 5 * 60_000);
    const orphanFresh = join(dir, "being-taken.json.attrs");
    writeFileSync(orphanFresh, "{}");

    const cleared = clearDeadEngineLocks(pathToFileURL(backend).href, "dev");

    expect(cleared.map((l) => l.file)).toEqual([dead]);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(`${dead}.attrs`)).toBe(false);
    expect(existsSync(orphanOld)).toBe(false);
    for (const f of [live, `${live}.attrs`, orphanFresh, otherDead, `${otherDead}.attrs`])
      expect([f, existsSync(f)]).toEqual([f, true]);
  });
});
