import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { deployerPolicy, trustPolicy } from "../../src/iam/policies";

export interface AwsDeployerRoleArgs {
  serviceName: string;
  stage: string;
  principalArn: string;
  ruleArns: pulumi.Input<string>[];
  serviceArns: pulumi.Input<string>[];
  passRoleArns: pulumi.Input<string>[];
  alarmArns: pulumi.Input<string>[];
  appConfigArns: pulumi.Input<string[]>;
  tags: Record<string, string>;
}

/** The pipeline's role for this stage: it can move traffic and roll services, and nothing else. */
export class AwsDeployerRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  /** What the pipeline assumes for this stage. */
  readonly roleArn: pulumi.Output<string>;
  readonly roleName: pulumi.Output<string>;

  constructor(name: string, args: AwsDeployerRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:DeployerRole", name, {}, opts);
    this.role = new aws.iam.Role(
      `${name}-role`,
      {
        namePrefix: `${args.serviceName}-${args.stage}-deploy-`.slice(0, 38),
        assumeRolePolicy: JSON.stringify(trustPolicy(args.principalArn)),
        tags: args.tags,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${name}-policy`,
      {
        role: this.role.id,
        policy: pulumi
          .all([
            pulumi.all(args.ruleArns),
            pulumi.all(args.serviceArns),
            pulumi.all(args.passRoleArns),
            pulumi.all(args.alarmArns),
            pulumi.output(args.appConfigArns),
          ])
          .apply(([ruleArns, serviceArns, passRoleArns, alarmArns, appConfigArns]) =>
            JSON.stringify(
              deployerPolicy({ ruleArns, serviceArns, passRoleArns, alarmArns, appConfigArns }),
            ),
          ),
      },
      { parent: this },
    );
    this.roleArn = this.role.arn;
    this.roleName = this.role.name;
    this.registerOutputs({ roleArn: this.roleArn, roleName: this.roleName });
  }
}
