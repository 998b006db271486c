import { readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { StoreConfigError } from "./errors";
import { FileStore } from "./fileStore";
import { S3Store, type S3Location, type S3StoreTuning } from "./s3Store";
import type { ReleaseStore } from "./store";

/** Names the store explicitly; the `--store` flag takes precedence over it. */
export const STORE_ENV = "SLIPWAY_STORE";
/** The pipeline commands' flag that names the store (release, rollback, promote, plan, status). */
export const STORE_FLAG = "--store";

/** The query parameters Pulumi's s3:// backend takes that mean something here. */
const S3_PARAMS = ["region", "endpoint", "s3ForcePathStyle", "use_path_style", "profile", "awssdk"];
const ALLOWED_FORMS =
  "file:///absolute/dir, or s3://bucket[/prefix][?region=…&endpoint=http(s)://host:port&s3ForcePathStyle=true&profile=…]";
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION = /^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$/;
const SECRET_PARAM = /secret|password|passwd|token|key|credential|signature|session/i;

/** The URL with userinfo and secret-looking query values replaced by ***: safe to print. */
export function redactUrl(url: string): string {
  return url
    .replace(/(\/\/)[^/@?#]*@/, "$1***@")
    .replace(/([?&])([^=&#]*)=([^&#]*)/g, (all, sep: string, name: string) =>
      SECRET_PARAM.test(name) ? `${sep}${name}=***` : all,
    );
}

export type StoreLocation = { kind: "file"; dir: string } | ({ kind: "s3" } & S3Location);

/** Parses a store URL, or throws StoreConfigError naming it (redacted) and the forms allowed. */
export function parseStoreUrl(url: string, env: NodeJS.ProcessEnv = process.env): StoreLocation {
  const shown = redactUrl(url);
  const refuse = (why: string): never => {
    throw new StoreConfigError(`store URL ${shown}: ${why}; allowed: ${ALLOWED_FORMS}`);
  };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "file") {
    let dir: string;
    try {
      dir = fileURLToPath(url);
    } catch {
      return refuse("not a file URL with an absolute path (file:///dir)");
    }
    if (!isAbsolute(dir)) refuse("the directory must be absolute");
    return { kind: "file", dir };
  }
  if (scheme !== "s3")
    return refuse(
      scheme === undefined ? "no scheme" : `scheme ${scheme}:// is not a release store`,
    );
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refuse("not a URL");
  }
  if (parsed.username || parsed.password)
    refuse(
      "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead",
    );
  const bucket = parsed.hostname;
  if (bucket === "") refuse("no bucket (s3://<bucket>/…)");
  if (!BUCKET.test(bucket))
    refuse(
      `bucket ${JSON.stringify(bucket)} is not a bucket name (3 to 63 lowercase letters, digits, "." and "-")`,
    );
  if (parsed.port) refuse("a bucket has no port; put the server in endpoint=http://host:port");
  // From the text as written: the URL parser would already have resolved "a/../b" to "b".
  const rawPath = /^s3:\/\/[^/?#]*([^?#]*)/i.exec(url)?.[1] ?? "";
  const segments = decodeURIComponent(rawPath)
    .split("/")
    .filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === ".."))
    refuse('the prefix may not contain "." or ".." segments');
  const params = parsed.searchParams;
  for (const name of params.keys())
    if (!S3_PARAMS.includes(name))
      refuse(`unknown parameter ${name}; parameters: ${S3_PARAMS.join(", ")}`);
  const endpointText = params.get("endpoint") ?? undefined;
  let endpoint: string | undefined;
  if (endpointText !== undefined) {
    let e: URL | undefined;
    try {
      e = new URL(endpointText);
    } catch {
      e = undefined;
    }
    if (!e || (e.protocol !== "http:" && e.protocol !== "https:") || e.hostname === "")
      refuse(
        `endpoint ${JSON.stringify(redactUrl(endpointText))} has no http:// or https:// scheme; ` +
          "without one the AWS SDK speaks TLS to it, which a plain-HTTP server (MinIO, moto) answers with a TLS error. " +
          `Write endpoint=http://${endpointText.replace(/^[a-z0-9+.-]*:\/\//i, "")} for plain HTTP, or https://… for TLS`,
      );
    if (e!.username || e!.password)
      refuse("credentials do not belong in the endpoint; use the AWS environment variables");
    endpoint = e!.origin + (e!.pathname === "/" ? "" : e!.pathname);
  }
  const regionParam = params.get("region") ?? undefined;
  if (regionParam !== undefined && !REGION.test(regionParam))
    refuse(
      `region ${JSON.stringify(regionParam)} is not a region name (lowercase letters, digits and "-", e.g. us-east-1)`,
    );
  // S3-compatible servers accept any region for signing; AWS needs the bucket's own.
  const region =
    regionParam ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (endpoint !== undefined ? "us-east-1" : undefined);
  const pathStyleText = params.get("s3ForcePathStyle") ?? params.get("use_path_style") ?? "false";
  if (pathStyleText !== "true" && pathStyleText !== "false")
    refuse(`s3ForcePathStyle=${JSON.stringify(pathStyleText)}; allowed: true or false`);
  const profile = params.get("profile") ?? undefined;
  return {
    kind: "s3",
    bucket,
    prefix: segments.join("/"),
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    forcePathStyle: pathStyleText === "true",
    ...(profile ? { profile } : {}),
    redactedUrl: shown,
  };
}

export interface StoreChoice {
  /** The stack backend (PULUMI_BACKEND_URL, or the project's file backend). */
  backendUrl: string;
  projectDir: string;
  /** The log directory a file store uses when derived (today's: next to a file backend's state). */
  logDir?: string;
  env?: NodeJS.ProcessEnv;
  s3?: S3StoreTuning;
}

/** Backends every runner reaches: their stages need a store every runner reaches too. */
const SHARED_BACKEND = /^(s3|gs|azblob|https?):\/\//i;

/**
 * The release store: `url` (the `--store` flag) or SLIPWAY_STORE when given, else derived from
 * the backend: an s3:// backend puts the store in its bucket under `<prefix>/.slipway/`, a file
 * backend keeps today's files. A shared backend with a machine-local store is refused.
 */
export function storeFromUrl(url: string | undefined, choice: StoreChoice): ReleaseStore {
  const env = choice.env ?? process.env;
  const explicit = url ?? (env[STORE_ENV] || undefined);
  const backend = choice.backendUrl;
  const shared = SHARED_BACKEND.test(backend);
  if (explicit !== undefined) {
    // Names where the URL came from, so the refusal says which setting to change.
    const source = url !== undefined ? STORE_FLAG : STORE_ENV;
    let location: StoreLocation;
    try {
      location = parseStoreUrl(explicit, env);
    } catch (err) {
      if (!(err instanceof StoreConfigError)) throw err;
      throw new StoreConfigError(`${source}: ${err.message}`);
    }
    if (location.kind === "file" && shared)
      throw mismatch(backend, `${source} ${redactUrl(explicit)}`);
    return open(location, choice);
  }
  if (/^s3:\/\//i.test(backend)) {
    try {
      return open(parseStoreUrl(backend, env), choice);
    } catch (err) {
      if (!(err instanceof StoreConfigError)) throw err;
      throw new StoreConfigError(
        `${err.message}. The release store is derived from PULUMI_BACKEND_URL; set ${STORE_ENV}=s3://… (or pass ${STORE_FLAG}) to name it yourself`,
      );
    }
  }
  const dir =
    choice.logDir ??
    (/^file:\/\//i.test(backend)
      ? join(fileURLToPath(backend), ".slipway-releases")
      : join(choice.projectDir, ".slipway", "releases"));
  if (shared) throw mismatch(backend, `the files under ${dir}, the default`);
  return new FileStore(dir);
}

/**
 * The store a pipeline command uses, from its context: `flag` (`--store`), else SLIPWAY_STORE,
 * else derived from the context's backend; the default is the file store in the context's log
 * directory (today's lease files). Throws StoreConfigError (exit 6) before anything is touched.
 */
export function storeFor(
  ctx: { backendUrl: string; projectDir: string; logDir: string },
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ReleaseStore {
  return storeFromUrl(flag, {
    backendUrl: ctx.backendUrl,
    projectDir: ctx.projectDir,
    logDir: ctx.logDir,
    env,
  });
}

function open(location: StoreLocation, choice: StoreChoice): ReleaseStore {
  if (location.kind === "file") return new FileStore(location.dir);
  const { kind: _kind, ...s3 } = location;
  const project = choice.s3?.project ?? projectNameOf(choice.projectDir);
  return new S3Store(s3, { ...choice.s3, ...(project ? { project } : {}) });
}

/**
 * The Pulumi project's name (Pulumi.yaml `name`), which an S3 store's keys carry: services whose
 * stacks share one backend bucket, with stages of the same names, keep their leases and logs
 * apart. Undefined without a readable Pulumi.yaml.
 */
function projectNameOf(projectDir: string): string | undefined {
  try {
    const name = (parseYaml(readFileSync(join(projectDir, "Pulumi.yaml"), "utf8")) as any)?.name;
    return typeof name === "string" && /^[A-Za-z0-9_.-]+$/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

function mismatch(backend: string, store: string): StoreConfigError {
  return new StoreConfigError(
    `backend ${redactUrl(backend)} is shared by every runner, but the release store (${store}) is on this machine only: ` +
      "two runners could drive one stage at once, and the release log would leave with the runner. Nothing was changed. " +
      `Set ${STORE_ENV}=s3://<bucket>/<prefix>?region=<region> (or pass ${STORE_FLAG} with that URL; add endpoint=http(s)://host:port&s3ForcePathStyle=true for MinIO and other S3-compatible servers) ` +
      "to a bucket every runner reaches; docs/release-store.md has the URL forms.",
  );
}
