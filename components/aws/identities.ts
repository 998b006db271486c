import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Permission } from "../../src/config/schema";
import { executionPolicy, taskPolicy, trustPolicy } from "../../src/iam/policies";

export interface AwsServiceIdentitiesArgs {
  serviceName: string;
  repositoryArn: string;
  logGroupArn: pulumi.Input<string>;
  permissions: Permission[];
  tags: Record<string, string>;
}

/**
 * The service's identities on ECS: a task execution role (pull from one
 * repository, write one log group) and a task role holding only the declared
 * permissions. The deployer role lives in AwsDeployerRole, once the resources
 * it may touch exist.
 */
export class AwsServiceIdentities extends pulumi.ComponentResource {
  readonly executionRole: aws.iam.Role;
  readonly taskRole: aws.iam.Role;
  readonly executionRoleArn: pulumi.Output<string>;
  readonly executionRoleName: pulumi.Output<string>;
  readonly taskRoleArn: pulumi.Output<string>;
  readonly taskRoleName: pulumi.Output<string>;

  constructor(
    name: string,
    args: AwsServiceIdentitiesArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("slipway:aws:ServiceIdentities", name, {}, opts);
    const trust = JSON.stringify(trustPolicy("ecs-tasks.amazonaws.com"));

    this.executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        namePrefix: `${args.serviceName}-exec-`.slice(0, 38),
        assumeRolePolicy: trust,
        tags: args.tags,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${name}-execution-policy`,
      {
        role: this.executionRole.id,
        policy: pulumi
          .output(args.logGroupArn)
          .apply((logGroupArn) =>
            JSON.stringify(executionPolicy({ repositoryArn: args.repositoryArn, logGroupArn })),
          ),
      },
      { parent: this },
    );

    this.taskRole = new aws.iam.Role(
      `${name}-task`,
      {
        namePrefix: `${args.serviceName}-task-`.slice(0, 38),
        assumeRolePolicy: trust,
        tags: args.tags,
      },
      { parent: this },
    );
    const declared = taskPolicy(args.permissions);
    if (declared) {
      new aws.iam.RolePolicy(
        `${name}-task-policy`,
        { role: this.taskRole.id, policy: JSON.stringify(declared) },
        { parent: this },
      );
    }
    this.executionRoleArn = this.executionRole.arn;
    this.executionRoleName = this.executionRole.name;
    this.taskRoleArn = this.taskRole.arn;
    this.taskRoleName = this.taskRole.name;
    this.registerOutputs({
      executionRoleArn: this.executionRoleArn,
      executionRoleName: this.executionRoleName,
      taskRoleArn: this.taskRoleArn,
      taskRoleName: this.taskRoleName,
    });
  }
}
