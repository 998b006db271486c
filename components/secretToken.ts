import * as pulumi from "@pulumi/pulumi";

/**
 * A random secret kept in state, from a dynamic provider that runs inside the
 * program: the same job as random.RandomPassword, for stages where the random
 * provider plugin cannot be installed (the offline local stage; see README).
 */
const provider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { bytes: number }) {
    // Required here, not at module scope: the engine serializes this function into its own process.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an import would not be serialized
    const { randomBytes } = require("node:crypto") as typeof import("node:crypto");
    const value = randomBytes(inputs.bytes).toString("base64url");
    return { id: `token-${randomBytes(6).toString("hex")}`, outs: { bytes: inputs.bytes, value } };
  },
  async diff(_id: string, olds: { bytes: number }, news: { bytes: number }) {
    return {
      changes: olds.bytes !== news.bytes,
      replaces: olds.bytes !== news.bytes ? ["bytes"] : [],
    };
  },
};

export class SecretToken extends pulumi.dynamic.Resource {
  declare readonly value: pulumi.Output<string>;

  constructor(name: string, args: { bytes: number }, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { bytes: args.bytes, value: undefined },
      { ...opts, additionalSecretOutputs: ["value"] },
      "slipway",
      "SecretToken",
    );
  }
}
