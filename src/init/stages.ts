import { Document, isMap, isScalar, type Scalar } from "yaml";
import type { Runtime } from "../config/schema";
import { YAML_WRITE } from "../pipeline/stackFile";

/**
 * The three stack files `slipway init` writes: one template (`stackFileText`), and per stage
 * only what differs (`stageParams`): sizes, thresholds, names, where it runs. Every stage file
 * has the same keys by construction.
 */

export type Platform = "kubernetes" | "aws";
export const STAGES = ["local", "staging", "prod"] as const;
export type Stage = (typeof STAGES)[number];

export interface ServiceProject {
  service: string;
  runtime: Runtime;
  /** Where staging and prod run; the local stage always renders Kubernetes manifests. */
  platform: Platform;
}

/** A placeholder digest: valid for the schema, the image of no build. */
const PLACEHOLDER_DIGEST = `sha256:${"0".repeat(64)}`;
/** A placeholder AWS account: the ARNs parse, and name nothing that exists. */
const PLACEHOLDER_ACCOUNT = "000000000000";
const AWS_REGION = "eu-west-1";

/** The port and paths a Go or Rust HTTP service conventionally serves (as the checkout service). */
const SERVICE_PORT = 8080;

/** What differs between stages: everything else in a stack file comes from the template. */
interface StageParams {
  platform: Platform;
  size: { cpu: number; memoryMiB: number; replicas: number };
  registry: string;
  secretGenerator: "builtin" | "random";
  canary: Record<string, unknown>;
  kubernetes: Record<string, unknown>;
  aws: Record<string, unknown>;
  promotion: Record<string, unknown>;
}

/** The canary analysis on AWS: the ALB's latency has one value a minute (as the repo's stages). */
const AWS_ANALYSIS = {
  minSamples: 200,
  metrics: [
    { name: "errors", type: "ratio", direction: "increase", tolerance: 0.1, critical: true },
    { name: "latency", type: "samples", direction: "increase", tolerance: 0.1, minSamples: 5 },
  ],
};

function awsTarget(service: string, stage: Stage): Record<string, unknown> {
  const arn = (svc: string, rest: string) =>
    `arn:aws:${svc}:${AWS_REGION}:${PLACEHOLDER_ACCOUNT}:${rest}`;
  const lb = `app/platform-${stage}/0000000000000000`;
  return {
    region: AWS_REGION,
    vpcId: "vpc-00000000000000000",
    subnetIds: ["subnet-00000000000000000", "subnet-00000000000000001"],
    clusterArn: arn("ecs", `cluster/platform-${stage}`),
    listenerArn: arn("elasticloadbalancing", `listener/${lb}/0000000000000000`),
    loadBalancerArn: arn("elasticloadbalancing", `loadbalancer/${lb}`),
    loadBalancerSecurityGroupId: "sg-00000000000000000",
    ecrRepositoryArn: arn("ecr", `repository/${service}`),
    rulePriority: 100,
    hostHeaders: [`${service}.${stage}.example.com`],
    deployerPrincipalArn: `arn:aws:iam::${PLACEHOLDER_ACCOUNT}:role/ci-release-pipeline`,
  };
}

function clusterTarget(service: string, stage: Stage): Record<string, unknown> {
  return {
    namespace: `${service}-${stage}`,
    createNamespace: false,
    gateway: { name: "slipway-gateway", namespace: "gateway-system" },
    hostnames: [`${service}.${stage}.example.com`],
    prometheusUrl: "http://prometheus.monitoring.svc:9090",
  };
}

/** Per stage, only what differs. */
export function stageParams(project: ServiceProject, stage: Stage): StageParams {
  const { service, platform } = project;
  if (stage === "local")
    return {
      platform: "kubernetes",
      size: { cpu: 0.25, memoryMiB: 256, replicas: 1 },
      registry: "registry.local",
      // No provider plugin to download on a developer's machine: Slipway makes the tester secret.
      secretGenerator: "builtin",
      // Seconds, not minutes, and no analysis: render mode has no Prometheus to judge with.
      canary: {
        steps: [
          { setWeight: 10 },
          { pause: { duration: "10s" } },
          { setWeight: 50 },
          { pause: { duration: "10s" } },
        ],
        scaleDownDelaySeconds: 0,
        progressDeadlineSeconds: 300,
      },
      kubernetes: {
        namespace: `${service}-local`,
        renderYamlToDirectory: ".slipway/rendered/local",
      },
      aws: {},
      promotion: { soakSeconds: 0, requireApproval: false },
    };
  const prod = stage === "prod";
  return {
    platform,
    size:
      platform === "aws"
        ? { cpu: prod ? 1 : 0.5, memoryMiB: prod ? 2048 : 1024, replicas: prod ? 3 : 2 }
        : { cpu: prod ? 1 : 0.5, memoryMiB: prod ? 1024 : 512, replicas: prod ? 3 : 2 },
    registry:
      platform === "aws"
        ? `${PLACEHOLDER_ACCOUNT}.dkr.ecr.${AWS_REGION}.amazonaws.com`
        : "registry.example.com",
    secretGenerator: "random",
    canary: {
      preset: "Canary10Percent5Minutes",
      ...(platform === "aws" ? { analysis: AWS_ANALYSIS } : {}),
      scaleDownDelaySeconds: prod ? 900 : 600,
      progressDeadlineSeconds: prod ? 3600 : 1800,
    },
    kubernetes: platform === "kubernetes" ? clusterTarget(service, stage) : {},
    aws: platform === "aws" ? awsTarget(service, stage) : {},
    promotion: prod
      ? { from: "staging", soakSeconds: 3600, requireApproval: true }
      : { soakSeconds: 0, requireApproval: false },
  };
}

const STAGE_HEADER: Record<Stage, string> = {
  local:
    " The local stage: Kubernetes in render mode. Nothing is applied and no cluster or\n" +
    " credentials are needed: the manifests are written to .slipway/rendered/local, and a\n" +
    " release reads its weights back from the rendered HTTPRoute. To apply to a cluster,\n" +
    " replace renderYamlToDirectory with kubeconfig (and context).",
  staging:
    " The staging stage: the same program as every stage; only sizes, thresholds, names and\n" +
    " credentials differ. Replace the example names before its first `pulumi up`.",
  prod:
    " The prod stage: the same program as every stage; only sizes, thresholds, names and\n" +
    " credentials differ. Replace the example names before its first `pulumi up`.",
};

/** Why a key holds what it holds, where a reader would ask. */
const KEY_COMMENTS: Record<string, (p: StageParams) => string | undefined> = {
  "slipway:service": () =>
    " runtime picks the container profile (Go: GOMAXPROCS, GOMEMLIMIT; Rust: TOKIO_WORKER_THREADS).",
  "slipway:slots": () =>
    " Placeholders until the first release (written by `slipway release`): set them to your\n" +
    " first build, pinned by digest, before the first `pulumi up` on a real cluster or account.",
  "slipway:aws": (p) =>
    p.platform === "aws"
      ? " Bring your own network: every id and ARN below is a placeholder to replace."
      : " Not used: this stage runs on Kubernetes.",
  "slipway:kubernetes": (p) =>
    p.platform === "kubernetes"
      ? undefined
      : " Not used: this stage runs on AWS (ECS Fargate + ALB listener rule).",
  "slipway:artifacts": () =>
    " Unsigned images are accepted until you add a key: `slipway keygen --out keys`, then set\n" +
    " requireSignature: true and publicKey to the text of keys/slipway.pub (staging and prod).",
};

/** The stack file of `stage`: the one template, filled with the stage's parameters. */
export function stackFileText(project: ServiceProject, stage: Stage): string {
  const p = stageParams(project, stage);
  const config: Record<string, unknown> = {
    "slipway:platform": p.platform,
    "slipway:service": {
      name: project.service,
      runtime: project.runtime,
      port: SERVICE_PORT,
      healthPath: "/healthz",
      readyPath: "/readyz",
      metricsPath: "/metrics",
      ...p.size,
      env: { LOG_FORMAT: "json", ...(project.runtime === "rust" ? { RUST_LOG: "info" } : {}) },
    },
    "slipway:slots": {
      blue: { image: `${p.registry}/${project.service}@${PLACEHOLDER_DIGEST}`, version: "0.0.0" },
      green: {
        image: `${p.registry}/${project.service}@${PLACEHOLDER_DIGEST}`,
        version: "0.0.0",
        replicas: 0,
      },
    },
    "slipway:traffic": {
      stable: "blue",
      canaryWeight: 0,
      headerRoute: { enabled: true, secretGenerator: p.secretGenerator },
    },
    "slipway:canary": p.canary,
    "slipway:kubernetes": p.kubernetes,
    "slipway:aws": p.aws,
    "slipway:flags": {},
    "slipway:promotion": p.promotion,
    "slipway:artifacts": { requireSignature: false },
  };
  const doc = new Document({ config });
  doc.commentBefore = STAGE_HEADER[stage];
  const keys = doc.get("config", true);
  if (isMap(keys))
    for (const item of keys.items) {
      const text = isScalar(item.key) ? KEY_COMMENTS[String(item.key.value)]?.(p) : undefined;
      if (text) (item.key as Scalar).commentBefore = text;
    }
  // One line per value: a digest or an ARN folded over two lines is hard to read and to replace.
  return doc.toString({ ...YAML_WRITE, lineWidth: 0 });
}
