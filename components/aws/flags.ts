import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { FlagConfig } from "../../src/config/schema";
import { appConfigDocument } from "../../src/config/flags";

export interface AwsFlagsArgs {
  serviceName: string;
  stage: string;
  flags: Record<string, FlagConfig>;
  tags: Record<string, string>;
}

/**
 * The stage's feature flags as an AppConfig feature-flag profile, deployed at
 * once to the stage's environment. Services poll AppConfig, so a flag change is
 * a new configuration version, not a redeploy.
 */
export class AwsFlags extends pulumi.ComponentResource {
  readonly application: aws.appconfig.Application;
  readonly environment: aws.appconfig.Environment;
  readonly profile: aws.appconfig.ConfigurationProfile;
  readonly arns: pulumi.Output<string[]>;
  /** What a service's AppConfig agent is configured with to fetch the flags. */
  readonly applicationId: pulumi.Output<string>;
  readonly environmentId: pulumi.Output<string>;
  readonly profileId: pulumi.Output<string>;

  constructor(name: string, args: AwsFlagsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("slipway:aws:Flags", name, {}, opts);
    this.application = new aws.appconfig.Application(
      `${name}-app`,
      { name: `${args.serviceName}-${args.stage}`, tags: args.tags },
      { parent: this },
    );
    this.environment = new aws.appconfig.Environment(
      `${name}-env`,
      { applicationId: this.application.id, name: args.stage, tags: args.tags },
      { parent: this },
    );
    this.profile = new aws.appconfig.ConfigurationProfile(
      `${name}-profile`,
      {
        applicationId: this.application.id,
        name: "feature-flags",
        locationUri: "hosted",
        type: "AWS.AppConfig.FeatureFlags",
        tags: args.tags,
      },
      { parent: this },
    );
    const version = new aws.appconfig.HostedConfigurationVersion(
      `${name}-version`,
      {
        applicationId: this.application.id,
        configurationProfileId: this.profile.configurationProfileId,
        contentType: "application/json",
        content: appConfigDocument(args.flags),
      },
      { parent: this },
    );
    new aws.appconfig.Deployment(
      `${name}-deployment`,
      {
        applicationId: this.application.id,
        environmentId: this.environment.environmentId,
        configurationProfileId: this.profile.configurationProfileId,
        configurationVersion: version.versionNumber.apply(String),
        deploymentStrategyId: "AppConfig.AllAtOnce",
        tags: args.tags,
      },
      { parent: this },
    );
    this.arns = pulumi
      .all([this.application.arn, this.environment.arn, this.profile.arn])
      .apply((a) => [...a]);
    this.applicationId = this.application.id;
    this.environmentId = this.environment.environmentId;
    this.profileId = this.profile.configurationProfileId;
    this.registerOutputs({
      arns: this.arns,
      applicationId: this.applicationId,
      environmentId: this.environmentId,
      profileId: this.profileId,
    });
  }
}
