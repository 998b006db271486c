import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Where the local cluster's binaries are: the cache of
 * scripts/cluster-toolchain.sh (which links a user's own binaries into its
 * bin/ when they are on PATH). `npm run toolchain` builds it.
 */

export const PART_BINARIES = [
  "kine",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
  "traefik",
] as const;
export type PartBinary = (typeof PART_BINARIES)[number];

export interface ClusterToolchain {
  dir: string;
  bin: Record<PartBinary, string>;
  kwokStages: string;
  /** The Gateway API standard CRD files. */
  gatewayApiCrds: string[];
}

const REPO = join(__dirname, "..", "..");

/** The cache directory of the current version key (SLIPWAY_CLUSTER_TOOLCHAIN_DIR overrides). */
export function clusterToolchainDir(): string {
  const fromEnv = process.env.SLIPWAY_CLUSTER_TOOLCHAIN_DIR;
  if (fromEnv) return fromEnv;
  return execFileSync("bash", [join(REPO, "scripts", "cluster-toolchain.sh"), "--dir"], {
    encoding: "utf8",
  }).trim();
}

/** The binaries and files; throws naming what is missing and how to build it. */
export function findClusterToolchain(dir = clusterToolchainDir()): ClusterToolchain {
  const bin = Object.fromEntries(PART_BINARIES.map((b) => [b, join(dir, "bin", b)])) as Record<
    PartBinary,
    string
  >;
  const missing: string[] = PART_BINARIES.filter((b) => !existsSync(bin[b])).map(String);
  const kwokStages = join(dir, "kwok", "stages.yaml");
  if (!existsSync(kwokStages)) missing.push("kwok stage configs");
  const crdDir = join(dir, "gateway-api");
  const gatewayApiCrds = existsSync(crdDir)
    ? readdirSync(crdDir)
        .filter((f) => f.endsWith(".yaml"))
        .sort()
        .map((f) => join(crdDir, f))
    : [];
  if (gatewayApiCrds.length === 0) missing.push("Gateway API CRDs");
  if (missing.length > 0)
    throw new Error(
      `local cluster: not built yet in ${dir} (missing: ${missing.join(", ")}); run: npm run toolchain`,
    );
  return { dir, bin, kwokStages, gatewayApiCrds };
}
