import type { Permission } from "../config/schema";

/**
 * The IAM documents of a stage, as pure functions of the ARNs they name, so that
 * tests can simulate them and a policy can check them. No statement has a
 * wildcard action; the few `*` resources are for the actions AWS cannot scope,
 * listed in UNSCOPABLE_ACTIONS.
 */

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/**
 * Actions that support no resource-level permission, so `Resource: "*"` is the
 * narrowest AWS allows (Service Authorization Reference: no resource types for
 * elasticloadbalancing Describe*; cloudwatch:GetMetricData names only OTLP
 * datasets, not classic metrics). cloudwatch:DescribeAlarms is not here: it is
 * scoped to the stage's alarm ARNs.
 */
export const UNSCOPABLE_ACTIONS = [
  "ecr:GetAuthorizationToken",
  "ecs:RegisterTaskDefinition",
  "ecs:DescribeTaskDefinition",
  "elasticloadbalancing:DescribeRules",
  "elasticloadbalancing:DescribeListeners",
  "elasticloadbalancing:DescribeTargetGroups",
  "elasticloadbalancing:DescribeTargetHealth",
  "cloudwatch:GetMetricData",
] as const;

const doc = (...statements: PolicyStatement[]): PolicyDocument => ({
  Version: "2012-10-17",
  Statement: statements,
});

export interface TrustPolicy {
  Version: "2012-10-17";
  Statement: {
    Effect: "Allow";
    Principal: { Service: string } | { AWS: string };
    Action: "sts:AssumeRole";
  }[];
}

/** Who may assume a role: an AWS service (`ecs-tasks.amazonaws.com`) or one principal ARN. */
export function trustPolicy(principal: string): TrustPolicy {
  const who = principal.endsWith(".amazonaws.com") ? { Service: principal } : { AWS: principal };
  return {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: who, Action: "sts:AssumeRole" }],
  };
}

/** Task execution role: pull from one repository, write to one log group. */
export function executionPolicy(args: {
  repositoryArn: string;
  logGroupArn: string;
}): PolicyDocument {
  return doc(
    { Sid: "EcrToken", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
    {
      Sid: "PullFromRepository",
      Effect: "Allow",
      Action: [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ],
      Resource: [args.repositoryArn],
    },
    {
      Sid: "WriteLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: [`${args.logGroupArn}:log-stream:*`],
    },
  );
}

/** Task role: exactly the permissions the service declares, nothing more. */
export function taskPolicy(permissions: Permission[]): PolicyDocument | undefined {
  if (permissions.length === 0) return undefined;
  return doc(
    ...permissions.map((p, i) => ({
      Sid: p.sid ?? `Declared${i}`,
      Effect: "Allow" as const,
      Action: [...p.actions],
      Resource: [...p.resources],
    })),
  );
}

export interface DeployerScope {
  ruleArns: string[];
  serviceArns: string[];
  passRoleArns: string[];
  alarmArns: string[];
  appConfigArns: string[];
}

/** The pipeline's role: move this stage's rules, update these services, pass these roles, read metrics. */
export function deployerPolicy(scope: DeployerScope): PolicyDocument {
  return doc(
    {
      Sid: "ModifyThisStagesRules",
      Effect: "Allow",
      Action: ["elasticloadbalancing:ModifyRule"],
      Resource: scope.ruleArns,
    },
    {
      Sid: "UpdateTheseServices",
      Effect: "Allow",
      Action: ["ecs:UpdateService", "ecs:DescribeServices"],
      Resource: scope.serviceArns,
    },
    {
      Sid: "PassOnlyTheseRoles",
      Effect: "Allow",
      Action: ["iam:PassRole"],
      Resource: scope.passRoleArns,
      Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
    },
    {
      Sid: "ReadAlarms",
      Effect: "Allow",
      Action: ["cloudwatch:DescribeAlarms"],
      Resource: scope.alarmArns,
    },
    {
      Sid: "DeployFlags",
      Effect: "Allow",
      Action: [
        "appconfig:StartDeployment",
        "appconfig:CreateHostedConfigurationVersion",
        "appconfig:GetDeployment",
      ],
      Resource: scope.appConfigArns,
    },
    {
      Sid: "ReadWithoutResourceScope",
      Effect: "Allow",
      Action: UNSCOPABLE_ACTIONS.filter((a) => a !== "ecr:GetAuthorizationToken"),
      Resource: ["*"],
    },
  );
}
