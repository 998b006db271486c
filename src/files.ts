import { renameSync, writeFileSync } from "node:fs";

/**
 * Writes `file` whole or not at all: the text goes to a file beside it (named for this process,
 * so two writers never share one), which is then renamed over it. A reader that polls for the
 * file, or reads it while it is rewritten, never sees it empty or half written.
 */
export function writeFileWhole(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
