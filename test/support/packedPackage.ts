import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";

const REPO = join(__dirname, "..", "..");

/** What `npm pack --json` says of the tarball. */
export interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

export interface InstalledPackage {
  packed: PackResult;
  /** `<root>/node_modules/<name>`. */
  dir: string;
  /** Each command of the package's `bin`, installed (executable, and linked on node_modules/.bin). */
  bin: Record<string, string>;
  /** How long `npm pack` took, its prepack build included. */
  packMs: number;
}

/**
 * This repository's package as a user gets it, without network: `npm pack` (its prepack build
 * into dist-pkg/), the tarball extracted into `<root>/node_modules/<name>`, what npm install
 * would add next to it (the dependencies and peers, each linked from this repository's
 * node_modules, and the commands on .bin), plus `extraDependencies` a project itself depends on
 * (ts-node, for the Node.js host). Throws naming the step that failed.
 */
export function installPackedPackage(
  root: string,
  env: NodeJS.ProcessEnv,
  options: { extraDependencies?: string[]; timeoutMs?: number } = {},
): InstalledPackage {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    name: string;
    bin: Record<string, string>;
    dependencies: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  const started = Date.now();
  const pack = spawnSync("npm", ["pack", "--json", "--pack-destination", root], {
    cwd: REPO,
    encoding: "utf8",
    env: { ...env, npm_config_loglevel: "error", npm_config_update_notifier: "false" },
    timeout: options.timeoutMs ?? 240_000,
  });
  const packMs = Date.now() - started;
  if (pack.status !== 0) throw new Error(`npm pack exited ${pack.status}:\n${pack.stderr}`);
  const [packed] = JSON.parse(pack.stdout) as [PackResult];
  const modules = join(root, "node_modules");
  const dir = join(modules, pkg.name);
  mkdirSync(dir, { recursive: true });
  const tar = spawnSync(
    "tar",
    ["-xzf", join(root, packed.filename), "-C", dir, "--strip-components=1"],
    { encoding: "utf8" },
  );
  if (tar.status !== 0) throw new Error(`tar exited ${tar.status}: ${tar.stderr}`);
  const deps = [
    ...Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }),
    ...(options.extraDependencies ?? []),
  ];
  for (const dep of deps) {
    mkdirSync(dirname(join(modules, dep)), { recursive: true });
    symlinkSync(join(REPO, "node_modules", dep), join(modules, dep), "dir");
  }
  mkdirSync(join(modules, ".bin"), { recursive: true });
  const bin: Record<string, string> = {};
  for (const [name, file] of Object.entries(pkg.bin)) {
    bin[name] = join(dir, file);
    chmodSync(bin[name], 0o755);
    symlinkSync(join("..", pkg.name, file), join(modules, ".bin", name));
  }
  return { packed, dir, bin, packMs };
}
