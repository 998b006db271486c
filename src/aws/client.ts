/**
 * How the pipeline's AWS clients are configured: the stage's region, the
 * credentials of the default SDK chain (environment, shared files, SSO, web
 * identity, container/instance roles), and an endpoint override from
 * AWS_ENDPOINT_URL (an emulator or a VPC endpoint), read from the given
 * environment so that a test or a caller can pass its own.
 */
/**
 * Every AWS API call the pipeline itself makes (the stack updates are the
 * engine's). The deployer role allows these (src/iam/policies.ts) and the IAM
 * simulation test proves it, on the resources the stack's outputs name:
 *   DescribeRules  — the weighted rule; supports no resource-level permission (Resource "*")
 *   GetMetricData  — classic metrics support no resource-level permission (Resource "*")
 *   DescribeAlarms — scoped to the stage's alarm ARNs (resource type `alarm`)
 *   DescribeServices — scoped to the stage's ECS service ARNs (what serves)
 *   DescribeTaskDefinition, DescribeTargetHealth — no resource-level permission (Resource "*")
 */
export const PIPELINE_AWS_ACTIONS = [
  "elasticloadbalancing:DescribeRules",
  "cloudwatch:GetMetricData",
  "cloudwatch:DescribeAlarms",
  "ecs:DescribeServices",
  "ecs:DescribeTaskDefinition",
  "elasticloadbalancing:DescribeTargetHealth",
] as const;

/** Also the SDK v3 clients' own config: `new CloudWatchClient(settings)`. */
export interface AwsClientSettings {
  region: string;
  /** Absent: the service's public endpoint for the region. */
  endpoint?: string;
  maxAttempts: number;
}

export function awsClientSettings(
  region: string,
  env: Record<string, string | undefined> = process.env,
): AwsClientSettings {
  const endpoint = env.AWS_ENDPOINT_URL?.trim();
  return { region, ...(endpoint ? { endpoint } : {}), maxAttempts: 3 };
}

/** Where a call went, for messages: the override, or the region's public endpoint. */
export function describeEndpoint(settings: AwsClientSettings, service: string): string {
  return settings.endpoint ?? `${service} in ${settings.region}`;
}

/** An AWS SDK failure as one line: who answered what, or why nobody answered. */
export function describeAwsError(err: unknown, where: string): string {
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: { code?: string };
  };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined)
    return `${where} answered HTTP ${status}: ${e.name ?? "error"}: ${e.message ?? ""}`.trim();
  const code = e.code ?? e.cause?.code ?? e.name ?? "error";
  return `${where} is unreachable or refused the call (${code}: ${e.message ?? String(err)})`;
}
