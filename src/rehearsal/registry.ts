import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parseImageRef } from "../governance/artifact";

/**
 * A content-addressed registry on disk for the rehearsal's artifacts, laid out
 * like an OCI image: a blob (the service binary, by its sha256) and a manifest
 * that pins the blob's digest and the image's configuration (environment and
 * version label). The image reference is `registry.local/<service>@sha256:<manifest digest>`.
 *
 * Why a manifest and not the binary's own digest: the three releases of a
 * rehearsal (baseline, good, bad) run one binary, so they would share one
 * digest, and the pipeline rightly refuses to release the stable artifact
 * again. A real image differs per release because its configuration and
 * labels do; so do these. The bad release carries its fault in its image
 * configuration (`FAULT_ERROR_RATIO`, `FAULT_LATENCY_MS`), as a regression
 * ships inside an image.
 */

export interface ImageManifest {
  schemaVersion: 1;
  mediaType: "application/vnd.slipway.rehearsal.image.v1+json";
  /** The binary: the image's only layer. */
  binary: { name: string; runtime: "go" | "rust"; digest: string; size: number };
  /** Environment baked into the image; the Deployment's env is applied over it, as a container runtime does. */
  env: Record<string, string>;
  labels: Record<string, string>;
}

export interface Artifact {
  image: string;
  digest: string;
  version: string;
  revision: string;
  manifest: ImageManifest;
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** JSON with sorted keys: the same manifest always has the same bytes and digest. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export class LocalRegistry {
  constructor(
    readonly dir: string,
    readonly host = "registry.local",
  ) {}

  private blobPath(digest: string): string {
    return join(this.dir, "blobs", "sha256", digest.replace(/^sha256:/, ""));
  }

  private manifestPath(digest: string): string {
    return join(this.dir, "manifests", `${digest.replace(/^sha256:/, "")}.json`);
  }

  /** Copies a binary in (once per digest) and returns its digest (`sha256:…`). */
  pushBinary(path: string): { digest: string; size: number } {
    const bytes = readFileSync(path);
    const digest = `sha256:${sha256(bytes)}`;
    const dest = this.blobPath(digest);
    if (!existsSync(dest)) {
      mkdirSync(join(this.dir, "blobs", "sha256"), { recursive: true });
      const tmp = `${dest}.tmp.${process.pid}`;
      copyFileSync(path, tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, dest);
    }
    return { digest, size: bytes.length };
  }

  /** Writes a manifest for a binary already pushed; returns the image reference pinned by the manifest's digest. */
  pushImage(args: {
    service: string;
    runtime: "go" | "rust";
    binaryPath: string;
    version: string;
    revision: string;
    env?: Record<string, string>;
  }): Artifact {
    const blob = this.pushBinary(args.binaryPath);
    const manifest: ImageManifest = {
      schemaVersion: 1,
      mediaType: "application/vnd.slipway.rehearsal.image.v1+json",
      binary: {
        name: args.binaryPath.split("/").pop()!,
        runtime: args.runtime,
        digest: blob.digest,
        size: blob.size,
      },
      env: args.env ?? {},
      labels: {
        "org.opencontainers.image.version": args.version,
        "org.opencontainers.image.revision": args.revision,
      },
    };
    const text = canonicalJson(manifest);
    const digest = `sha256:${sha256(text)}`;
    mkdirSync(join(this.dir, "manifests"), { recursive: true });
    writeFileSync(this.manifestPath(digest), text);
    return {
      image: `${this.host}/${args.service}@${digest}`,
      digest,
      version: args.version,
      revision: args.revision,
      manifest,
    };
  }

  /** What a kubelet pulls: the manifest of an image reference and the path of its verified binary. */
  pull(image: string): { manifest: ImageManifest; binary: string } {
    const ref = parseImageRef(image, "image");
    const path = this.manifestPath(ref.digest);
    if (!existsSync(path))
      throw new Error(`${image}: not in the local registry ${this.dir} (manifest not found)`);
    const text = readFileSync(path, "utf8");
    if (`sha256:${sha256(text)}` !== ref.digest)
      throw new Error(`${image}: manifest digest mismatch in ${path}`);
    const manifest = JSON.parse(text) as ImageManifest;
    const binary = this.blobPath(manifest.binary.digest);
    if (
      !existsSync(binary) ||
      `sha256:${sha256(readFileSync(binary))}` !== manifest.binary.digest
    ) {
      throw new Error(`${image}: binary blob ${manifest.binary.digest} is missing or altered`);
    }
    return { manifest, binary };
  }
}
