import { runSimulation } from "@cloud-copilot/iam-simulate";
import { beforeAll, describe, expect, it } from "vitest";
import { PIPELINE_AWS_ACTIONS } from "../../../src/aws";
import { UNSCOPABLE_ACTIONS, type PolicyDocument } from "../../../src/iam/policies";
import { renderStage, stageConfigOf, type Rendered } from "../support/harness";

const ACCOUNT = "123456789012";

async function decide(
  policy: PolicyDocument,
  action: string,
  resource: string,
  context: Record<string, string> = {},
): Promise<string> {
  const response = await runSimulation(
    {
      identityPolicies: [{ name: "under-test", policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action,
        principal: `arn:aws:iam::${ACCOUNT}:role/under-test`,
        resource: { accountId: ACCOUNT, resource },
        contextVariables: context,
      },
    } as any,
    {},
  );
  if (response.resultType === "error")
    throw new Error(`simulation of ${action} on ${resource}: ${JSON.stringify(response.errors)}`);
  return (response as any).overallResult;
}

const policyOf = (r: Rendered, name: string): PolicyDocument =>
  JSON.parse(r.byName(name).inputs.policy);

describe("least privilege on AWS (IAM simulation of the generated policies)", () => {
  let staging: Rendered;
  let ruleArn: string;
  let deployer: PolicyDocument;
  const otherRule = `arn:aws:elasticloadbalancing:eu-west-1:${ACCOUNT}:listener-rule/app/platform/0123456789abcdef/fedcba9876543210/ffffffffffffffff`;

  beforeAll(async () => {
    staging = await renderStage(stageConfigOf("staging"));
    ruleArn = staging.outputs.routing.id;
    deployer = policyOf(staging, "checkout-aws-deployer-policy");
  });

  it("the deployer may modify this stage's rules, and not another rule", async () => {
    expect(await decide(deployer, "elasticloadbalancing:ModifyRule", ruleArn)).toBe("Allowed");
    expect(
      await decide(
        deployer,
        "elasticloadbalancing:ModifyRule",
        staging.outputs.routing.headerRouteId!,
      ),
    ).toBe("Allowed");
    expect(await decide(deployer, "elasticloadbalancing:ModifyRule", otherRule)).toBe(
      "ImplicitlyDenied",
    );
    expect(await decide(deployer, "elasticloadbalancing:DeleteRule", ruleArn)).toBe(
      "ImplicitlyDenied",
    );
  });

  it("the deployer may update these services only", async () => {
    const blue = staging.byName("checkout-aws-blue-service");
    const own = `arn:aws:ecs:eu-west-1:${ACCOUNT}:service/platform/${blue.inputs.name}`;
    expect(await decide(deployer, "ecs:UpdateService", own)).toBe("Allowed");
    expect(
      await decide(
        deployer,
        "ecs:UpdateService",
        `arn:aws:ecs:eu-west-1:${ACCOUNT}:service/platform/payments-blue`,
      ),
    ).toBe("ImplicitlyDenied");
    expect(await decide(deployer, "ecs:DeleteService", own)).toBe("ImplicitlyDenied");
  });

  it("the deployer may pass only the stage's task roles, only to ECS, and may not create roles", async () => {
    const roles = staging.outputs.roles;
    const toEcs = { "iam:PassedToService": "ecs-tasks.amazonaws.com" };
    expect(await decide(deployer, "iam:PassRole", roles.services.blue, toEcs)).toBe("Allowed");
    expect(await decide(deployer, "iam:PassRole", roles.execution!, toEcs)).toBe("Allowed");
    expect(
      await decide(deployer, "iam:PassRole", roles.services.blue, {
        "iam:PassedToService": "lambda.amazonaws.com",
      }),
    ).toBe("ImplicitlyDenied");
    expect(
      await decide(deployer, "iam:PassRole", `arn:aws:iam::${ACCOUNT}:role/admin`, toEcs),
    ).toBe("ImplicitlyDenied");
    expect(await decide(deployer, "iam:CreateRole", `arn:aws:iam::${ACCOUNT}:role/new-role`)).toBe(
      "ImplicitlyDenied",
    );
    expect(await decide(deployer, "iam:PutRolePolicy", roles.deployer)).toBe("ImplicitlyDenied");
  });

  it("the deployer may read metrics", async () => {
    expect(await decide(deployer, "cloudwatch:GetMetricData", "*")).toBe("Allowed");
  });

  it("the pipeline's own AWS calls are allowed on what the outputs name, and nothing near them", async () => {
    const aws = staging.outputs.aws!;
    const alarmArn = (name: string) => `arn:aws:cloudwatch:eu-west-1:${ACCOUNT}:alarm:${name}`;
    // What an AWS release calls (src/aws): read the rule, read the metrics, read the alarms.
    expect(await decide(deployer, "elasticloadbalancing:DescribeRules", "*")).toBe("Allowed");
    expect(await decide(deployer, "cloudwatch:GetMetricData", "*")).toBe("Allowed");
    for (const slot of ["blue", "green"] as const) {
      expect(aws.alarms[slot]).toHaveLength(2);
      for (const name of aws.alarms[slot])
        expect(await decide(deployer, "cloudwatch:DescribeAlarms", alarmArn(name))).toBe("Allowed");
    }
    // What serves: the slots' ECS services (scoped), their task definitions and target health.
    for (const slot of ["blue", "green"] as const)
      expect(await decide(deployer, "ecs:DescribeServices", aws.ecs!.services[slot])).toBe(
        "Allowed",
      );
    expect(
      await decide(
        deployer,
        "ecs:DescribeServices",
        `arn:aws:ecs:eu-west-1:${ACCOUNT}:service/platform/payments-blue`,
      ),
    ).toBe("ImplicitlyDenied");
    expect(await decide(deployer, "ecs:DescribeTaskDefinition", "*")).toBe("Allowed");
    expect(await decide(deployer, "elasticloadbalancing:DescribeTargetHealth", "*")).toBe(
      "Allowed",
    );
    // DescribeAlarms is scoped: another service's alarms stay unreadable.
    expect(
      await decide(deployer, "cloudwatch:DescribeAlarms", alarmArn("payments-prod-5xx-ratio")),
    ).toBe("ImplicitlyDenied");
    // Reading is all: no silencing, editing or faking of alarms, metrics or routing.
    const own = alarmArn(aws.alarms.green[0]!);
    for (const [action, resource] of [
      ["cloudwatch:SetAlarmState", own],
      ["cloudwatch:PutMetricAlarm", own],
      ["cloudwatch:DeleteAlarms", own],
      ["cloudwatch:DisableAlarmActions", own],
      ["cloudwatch:PutMetricData", "*"],
      ["elasticloadbalancing:CreateRule", stageConfigOf("staging").aws!.listenerArn],
      ["elasticloadbalancing:DeleteRule", aws.listenerRuleArn],
      ["elasticloadbalancing:ModifyTargetGroup", aws.targetGroups.green.arn],
      ["elasticloadbalancing:RegisterTargets", aws.targetGroups.green.arn],
    ] as const)
      expect(await decide(deployer, action, resource), action).toBe("ImplicitlyDenied");
  });

  it("the deployer's CloudWatch and load balancer actions are exactly the pipeline's and pulumi up's", () => {
    const actions = new Set(deployer.Statement.flatMap((s) => s.Action));
    for (const action of PIPELINE_AWS_ACTIONS) expect(actions).toContain(action);
    const near = [...actions].filter((a) => /^(cloudwatch|elasticloadbalancing):/.test(a)).sort();
    expect(near).toEqual([
      "cloudwatch:DescribeAlarms",
      "cloudwatch:GetMetricData",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:ModifyRule",
    ]);
    // Only the two actions AWS cannot scope go to "*"; DescribeAlarms names alarm ARNs.
    const alarms = deployer.Statement.find((s) => s.Action.includes("cloudwatch:DescribeAlarms"))!;
    expect(alarms.Resource).not.toContain("*");
    expect(alarms.Resource).toHaveLength(4);
  });

  it("the task role allows exactly the declared actions on the declared resources", async () => {
    const task = policyOf(staging, "checkout-aws-identities-task-policy");
    const table = `arn:aws:dynamodb:eu-west-1:111111111111:table/prices-staging`;
    expect(await decide(task, "dynamodb:GetItem", table)).toBe("Allowed");
    expect(await decide(task, "dynamodb:Query", table)).toBe("Allowed");
    expect(await decide(task, "dynamodb:PutItem", table)).toBe("ImplicitlyDenied");
    expect(
      await decide(
        task,
        "dynamodb:GetItem",
        `arn:aws:dynamodb:eu-west-1:111111111111:table/prices-prod`,
      ),
    ).toBe("ImplicitlyDenied");
    const declared = task.Statement.flatMap((s) => s.Action).sort();
    expect(declared).toEqual(["dynamodb:GetItem", "dynamodb:Query"]);
  });

  it("the execution role pulls from one repository and writes one log group", async () => {
    const exec = policyOf(staging, "checkout-aws-identities-execution-policy");
    const repo = "arn:aws:ecr:eu-west-1:111111111111:repository/checkout";
    expect(await decide(exec, "ecr:BatchGetImage", repo)).toBe("Allowed");
    expect(
      await decide(
        exec,
        "ecr:BatchGetImage",
        "arn:aws:ecr:eu-west-1:111111111111:repository/other",
      ),
    ).toBe("ImplicitlyDenied");
    expect(await decide(exec, "ecr:PutImage", repo)).toBe("ImplicitlyDenied");
    const stream = `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/slipway/staging/checkout:log-stream:blue/checkout/abc`;
    expect(await decide(exec, "logs:PutLogEvents", stream)).toBe("Allowed");
    expect(
      await decide(
        exec,
        "logs:PutLogEvents",
        `arn:aws:logs:eu-west-1:${ACCOUNT}:log-group:/other:log-stream:x`,
      ),
    ).toBe("ImplicitlyDenied");
  });

  it("no statement anywhere has a wildcard action; '*' resources only for actions AWS cannot scope", () => {
    const policies = staging
      .ofType("aws:iam/rolePolicy:RolePolicy")
      .map((p) => JSON.parse(p.inputs.policy) as PolicyDocument);
    expect(policies.length).toBe(3);
    for (const policy of policies) {
      for (const statement of policy.Statement) {
        for (const action of statement.Action) expect(action).not.toMatch(/[*?]/);
        if (statement.Resource.includes("*")) {
          for (const action of statement.Action)
            expect(UNSCOPABLE_ACTIONS as readonly string[]).toContain(action);
        }
        expect(statement.Resource.length).toBeGreaterThan(0);
      }
    }
  });
});

describe("least privilege on Kubernetes", () => {
  it("every deployer Role rule names its objects; service accounts mount no token", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const role = local.ofType("kubernetes:rbac.authorization.k8s.io/v1:Role")[0]!;
    expect(role.inputs.rules.length).toBe(3);
    for (const rule of role.inputs.rules) {
      expect(rule.resourceNames.length).toBeGreaterThan(0);
      expect(rule.verbs).not.toContain("*");
      expect(rule.verbs).not.toContain("create");
      expect(rule.verbs).not.toContain("delete");
    }
    expect(role.inputs.rules[0]).toMatchObject({
      resources: ["httproutes"],
      resourceNames: ["checkout"],
    });
    expect(role.inputs.rules[1].resourceNames).toEqual(["checkout-blue", "checkout-green"]);
    for (const sa of local.ofType("kubernetes:core/v1:ServiceAccount"))
      expect(sa.inputs.automountServiceAccountToken).toBe(false);
    for (const d of local.ofType("kubernetes:apps/v1:Deployment")) {
      expect(d.inputs.spec.template.spec.automountServiceAccountToken).toBe(false);
    }
    const binding = local.ofType("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")[0]!;
    expect(binding.inputs.subjects).toEqual([
      { kind: "ServiceAccount", name: "slipway-deployer", namespace: "slipway-system" },
    ]);
  });

  it("ingress is denied by default and allowed from the gateway and monitoring namespaces to the service port", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const [allow, deny] = local.ofType("kubernetes:networking.k8s.io/v1:NetworkPolicy");
    expect(deny!.inputs.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
    const from = allow!.inputs.spec.ingress[0].from.map(
      (f: any) => f.namespaceSelector.matchLabels["kubernetes.io/metadata.name"],
    );
    expect(from).toEqual(["gateway-system", "monitoring"]);
    expect(allow!.inputs.spec.ingress[0].ports).toEqual([{ protocol: "TCP", port: 8080 }]);
  });
});
