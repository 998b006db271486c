import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { PLATFORMS, RUNTIMES, serviceSchema, type Runtime } from "../config/schema";
import { STAGES, stackFileText, type Platform, type ServiceProject } from "./stages";

/**
 * `slipway init`: a new service project that uses the Slipway package. Its program is
 * `slipwayStage()` from `slipway/program`; its config declarations come from Slipway's own
 * Pulumi.yaml and its stack files from one template (stages.ts). Engine-free: files only.
 */

/** A flag or directory `slipway init` refuses; nothing was written. */
export class InitError extends Error {
  override name = "InitError";
}

/** What the project is generated from: Slipway's own package.json and Pulumi.yaml. */
export interface SlipwayPackage {
  version: string;
  /** Every version range the package declares (dependencies, peers, dev dependencies). */
  versions: Record<string, string>;
  /** Slipway's Pulumi.yaml `config:` declarations. */
  config: Record<string, unknown>;
}

/**
 * The directory of the Slipway package this code belongs to: a checkout (src/init/) or an
 * installed package (dist-pkg/src/init/). Found upward, since the two sit at other depths.
 */
export function slipwayRoot(from: string = __dirname): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    const manifest = join(dir, "package.json");
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "slipway"
    )
      return dir;
    dir = dirname(dir);
  }
  throw new Error(`no package.json of the slipway package above ${from}`);
}

export function readSlipwayPackage(root: string = slipwayRoot()): SlipwayPackage {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    version: string;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const project = parse(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as {
    config?: Record<string, unknown>;
  };
  return {
    version: manifest.version,
    versions: {
      ...manifest.devDependencies,
      ...manifest.peerDependencies,
      ...manifest.dependencies,
    },
    config: project.config ?? {},
  };
}

export interface InitOptions {
  service: string;
  runtime: string;
  platform?: string;
}

/** The options checked as the config schema checks them; an InitError names the flag. */
export function checkInitOptions(options: InitOptions): ServiceProject {
  const name = serviceSchema.shape.name.safeParse(options.service);
  if (!name.success)
    throw new InitError(
      `--service ${JSON.stringify(options.service)} (slipway:service.name): ${name.error.issues.map((i) => i.message).join("; ")}`,
    );
  if (!(RUNTIMES as readonly string[]).includes(options.runtime))
    throw new InitError(
      `--runtime ${JSON.stringify(options.runtime)}: allowed: ${RUNTIMES.join(", ")}`,
    );
  const platform = options.platform ?? "kubernetes";
  if (!(PLATFORMS as readonly string[]).includes(platform))
    throw new InitError(`--platform ${JSON.stringify(platform)}: allowed: ${PLATFORMS.join(", ")}`);
  return {
    service: options.service,
    runtime: options.runtime as Runtime,
    platform: platform as Platform,
  };
}

const PROGRAM = `import { slipwayStage } from "slipway/program";\n\nexport = slipwayStage();\n`;

/**
 * The project's `config:` from Slipway's declarations. Pulumi types and defaults only the keys
 * of a project's own namespace, and this project is named after the service: each `slipway:`
 * key keeps its description and its default becomes its `value` (a stack file's value wins, as
 * a default's would). A key with no default cannot be declared there (Pulumi requires a value):
 * those are required in every stack file, and named in the comment above.
 */
export function projectConfig(declared: Record<string, unknown>): {
  config: Record<string, { description?: string; value: unknown }>;
  required: string[];
} {
  const config: Record<string, { description?: string; value: unknown }> = {};
  const required: string[] = [];
  for (const [key, decl] of Object.entries(declared)) {
    if (!key.startsWith("slipway:") || typeof decl !== "object" || decl === null) continue;
    const { description, default: value } = decl as { description?: string; default?: unknown };
    if (value === undefined) required.push(key);
    else config[key] = { ...(description ? { description } : {}), value };
  }
  return { config, required };
}

function pulumiYaml(project: ServiceProject, pkg: SlipwayPackage): string {
  const { config, required } = projectConfig(pkg.config);
  const head = {
    name: project.service,
    description: `${project.service}: a ${project.runtime === "go" ? "Go" : "Rust"} service released by Slipway (blue-green slots, weighted routing, canary steps). One program, one stack per stage.`,
    runtime: { name: "nodejs", options: { typescript: true } },
    main: "index.ts",
  };
  return (
    stringify(head, { lineWidth: 100 }) +
    `# The slipway:* keys, generated from Slipway ${pkg.version}'s Pulumi.yaml: each with its\n` +
    "# description and its default as `value` (Pulumi types only a project's own namespace; a\n" +
    "# stack file's value replaces it). Required in every stack file, with no default here:\n" +
    `# ${required.join(", ")}.\n` +
    stringify({ config }, { lineWidth: 100 })
  );
}

function versionOf(pkg: SlipwayPackage, name: string): string {
  const range = pkg.versions[name];
  if (range === undefined) throw new Error(`the slipway package declares no version of ${name}`);
  return range;
}

function packageJson(project: ServiceProject, pkg: SlipwayPackage): string {
  const sdk = project.platform === "aws" ? "@pulumi/aws" : "@pulumi/kubernetes";
  const manifest = {
    name: project.service,
    private: true,
    description: `The Slipway stages of ${project.service}`,
    scripts: { typecheck: "tsc --noEmit" },
    dependencies: {
      slipway: `^${pkg.version}`,
      "@pulumi/pulumi": versionOf(pkg, "@pulumi/pulumi"),
      [sdk]: versionOf(pkg, sdk),
      // The Pulumi Node.js host runs index.ts through the project's own ts-node and typescript.
      "ts-node": versionOf(pkg, "ts-node"),
      typescript: versionOf(pkg, "typescript"),
    },
    devDependencies: { "@types/node": versionOf(pkg, "@types/node") },
    engines: { node: ">=22" },
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "commonjs",
    // Pulumi's TypeScript template resolution: the package's entry points resolve through its typesVersions.
    moduleResolution: "node",
    lib: ["ES2023"],
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    forceConsistentCasingInFileNames: true,
    types: ["node"],
    outDir: "bin",
  },
  files: ["index.ts"],
  // `pulumi up` runs without type-checking (seconds faster); `npm run typecheck` checks.
  "ts-node": { transpileOnly: true },
};

const GITIGNORE = ["node_modules/", "bin/", ".slipway/", "*.tgz", ""].join("\n");

function readme(project: ServiceProject): string {
  const { service } = project;
  return `# ${service}

The stages of ${service} (${project.runtime === "go" ? "Go" : "Rust"}), released by Slipway:
blue and green slots, a weighted route between them, canary steps as stack updates. \`index.ts\` is the whole program; each stage is a stack
file: \`Pulumi.local.yaml\`, \`Pulumi.staging.yaml\`, \`Pulumi.prod.yaml\` (${project.platform}).

The local stage renders Kubernetes manifests into \`.slipway/rendered/local\` instead of applying
them: it needs no cluster and no credentials, so it works on any machine. Point it at a cluster
by replacing \`renderYamlToDirectory\` with \`kubeconfig\` (and \`context\`).

\`\`\`bash
npm install /path/to/slipway-<version>.tgz   # the Slipway package (\`npm pack\` in its checkout), and the rest
export PULUMI_BACKEND_URL="file://$PWD/.slipway/state" PULUMI_CONFIG_PASSPHRASE=slipway-local
pulumi stack select --create local
# The tester header's value, a secret kept in the stack file (Slipway's commands add it when it
# is missing); without it every \`pulumi up\` makes it with a dynamic provider, about 1.5 s more.
pulumi config set --secret --stack local slipway:testerToken "$(node -p 'crypto.randomBytes(24).toString("base64url")')"
pulumi up --stack local          # writes the manifests to .slipway/rendered/local
npx slipway release --stage local --image registry.local/${service}@sha256:<64 hex> --version 1.0.0
\`\`\`

Before staging and prod: replace the example names and ids in their stack files, set the
slots' images to your first build (pinned by digest), and add a signing key
(\`npx slipway keygen\`, then \`slipway:artifacts\`).
`;
}

/** Every file of the new project, by name. Pure. */
export function serviceProjectFiles(
  project: ServiceProject,
  pkg: SlipwayPackage,
): Record<string, string> {
  const files: Record<string, string> = {
    "Pulumi.yaml": pulumiYaml(project, pkg),
    "index.ts": PROGRAM,
    "package.json": packageJson(project, pkg),
    "tsconfig.json": `${JSON.stringify(TSCONFIG, null, 2)}\n`,
    ".gitignore": GITIGNORE,
    "README.md": readme(project),
  };
  for (const stage of STAGES) files[`Pulumi.${stage}.yaml`] = stackFileText(project, stage);
  return files;
}

/** Refuses a directory that exists and is not empty (or is not a directory). */
function checkTarget(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory())
    throw new InitError(`${dir} exists and is not a directory; allowed: a new or empty directory`);
  const entries = readdirSync(dir);
  if (entries.length > 0)
    throw new InitError(
      `${dir} is not empty (${entries.slice(0, 3).join(", ")}${entries.length > 3 ? ", …" : ""}); allowed: a new or empty directory`,
    );
}

/** Checks everything first, then writes the project into `dir`; returns the files written. */
export function initServiceProject(
  dir: string,
  options: InitOptions,
  pkg: SlipwayPackage = readSlipwayPackage(),
): string[] {
  const project = checkInitOptions(options);
  checkTarget(dir);
  const files = serviceProjectFiles(project, pkg);
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return Object.keys(files);
}
