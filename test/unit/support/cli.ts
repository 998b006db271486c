import { vi } from "vitest";
import { main } from "../../../src/cli/main";

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * `slipway <args>` through the CLI's `main()` in this process, its output captured, with `env`
 * set for the call and put back after: for the many cases where starting Node would only add time.
 */
export async function slipway(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
    return true;
  };
  const out = vi
    .spyOn(process.stdout, "write")
    .mockImplementation(capture(stdout) as typeof process.stdout.write);
  const err = vi
    .spyOn(process.stderr, "write")
    .mockImplementation(capture(stderr) as typeof process.stderr.write);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const status = await main(args);
    return { status, stdout: stdout.join(""), stderr: stderr.join("") };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
