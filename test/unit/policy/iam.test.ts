import { describe, expect, it } from "vitest";
import {
  deployerPolicy,
  executionPolicy,
  taskPolicy,
  UNSCOPABLE_ACTIONS,
} from "../../../src/iam/policies";
import { iamViolations, isUnscopedResource, TYPES } from "../../../src/policy/rules";
import { resource } from "./support";

const doc = (...Statement: object[]) => JSON.stringify({ Version: "2012-10-17", Statement });
const rolePolicy = (policy: unknown) => resource(TYPES.rolePolicy, { role: "r", policy });
const messages = (policy: unknown) => iamViolations(rolePolicy(policy)).map((v) => v.message);

describe("iam-no-wildcards", () => {
  it("passes the documents Slipway generates", () => {
    const arn = "arn:aws:iam::111111111111:role/x";
    for (const document of [
      executionPolicy({
        repositoryArn: "arn:aws:ecr:eu-west-1:111111111111:repository/checkout",
        logGroupArn: "arn:aws:logs:eu-west-1:111111111111:log-group:/slipway/x",
      }),
      taskPolicy([
        {
          actions: ["dynamodb:GetItem"],
          resources: ["arn:aws:dynamodb:eu-west-1:111111111111:table/prices"],
        },
      ])!,
      deployerPolicy({
        ruleArns: [arn],
        serviceArns: [arn],
        passRoleArns: [arn],
        alarmArns: [arn],
        appConfigArns: [arn],
      }),
    ]) {
      expect(iamViolations(rolePolicy(JSON.stringify(document)))).toEqual([]);
      // The engine may also hand the document over as an object.
      expect(iamViolations(rolePolicy(document))).toEqual([]);
    }
  });

  it.each([["*"], ["s3:*"], ["s3:Get*"], ["ec2:Describe?nstances"]])(
    "fails the wildcard action %s",
    (action) => {
      const [message] = messages(
        doc({ Sid: "Broad", Effect: "Allow", Action: [action], Resource: ["arn:aws:s3:::bucket"] }),
      );
      expect(message).toContain('statement "Broad" allows wildcard action');
      expect(message).toContain(JSON.stringify(action));
      expect(message).toContain("allowed: exact actions");
    },
  );

  it("fails a single-string Action with a wildcard and a NotAction allow", () => {
    expect(
      messages(doc({ Effect: "Allow", Action: "iam:*", Resource: "arn:aws:iam::1:role/x" }))[0],
    ).toContain('"iam:*"');
    expect(messages(doc({ Effect: "Allow", NotAction: ["iam:*"], Resource: "*" }))[0]).toContain(
      "NotAction",
    );
  });

  it('allows Resource "*" only for the actions AWS cannot scope', () => {
    expect(
      messages(doc({ Effect: "Allow", Action: [...UNSCOPABLE_ACTIONS], Resource: "*" })),
    ).toEqual([]);
    const [message] = messages(
      doc({
        Sid: "Mixed",
        Effect: "Allow",
        Action: ["ecr:GetAuthorizationToken", "dynamodb:GetItem"],
        Resource: ["*"],
      }),
    );
    expect(message).toContain('grants Resource "*" to dynamodb:GetItem');
    expect(message).not.toContain("to ecr:GetAuthorizationToken,");
    expect(message).toContain("ecr:GetAuthorizationToken"); // listed among what may use "*"
  });

  it("treats an ARN that names every resource of a kind as a wildcard, but not a scoped pattern", () => {
    expect(isUnscopedResource("arn:aws:s3:::*")).toBe(true);
    expect(isUnscopedResource("arn:aws:*:eu-west-1:1:thing")).toBe(true);
    expect(isUnscopedResource("arn:aws:logs:eu-west-1:1:log-group:/slipway/x:log-stream:*")).toBe(
      false,
    );
    expect(
      messages(doc({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::*" })),
    ).toHaveLength(1);
    expect(
      messages(
        doc({ Effect: "Allow", Action: "s3:GetObject", NotResource: "arn:aws:s3:::secret/*" }),
      )[0],
    ).toContain("NotResource");
  });

  it("lets Deny statements be broad", () => {
    expect(messages(doc({ Effect: "Deny", Action: "*", Resource: "*" }))).toEqual([]);
  });

  it("checks managed policies and a role's inline policies, and reports a document that is not JSON", () => {
    const bad = doc({ Effect: "Allow", Action: "*", Resource: "*" });
    // One finding: the wildcard action (the "*" resource adds nothing to report once the action is).
    expect(iamViolations(resource(TYPES.policy, { policy: bad }))).toHaveLength(1);
    const role = resource(TYPES.role, {
      assumeRolePolicy: "{}",
      inlinePolicies: [
        {
          name: "ok",
          policy: doc({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k" }),
        },
        { name: "admin", policy: bad },
      ],
    });
    const found = iamViolations(role).map((v) => v.message);
    expect(found).toEqual([
      expect.stringMatching(/^inline policy "admin" statement #0 allows wildcard action "\*"/),
    ]);
    expect(messages("{not json")[0]).toContain("is not valid JSON");
    expect(iamViolations(resource(TYPES.role, { assumeRolePolicy: "{}" }))).toEqual([]);
    expect(iamViolations(resource("aws:s3/bucket:Bucket", { policy: bad }))).toEqual([]);
  });
});
