import { beforeAll, describe, expect, it, vi } from "vitest";
import { POLICIES } from "../../../src/policy/catalog";

// The adapter in policy/index.ts, without the engine: capture what it hands PolicyPack.
const captured: { name?: string; args?: any } = {};
vi.mock("@pulumi/policy", () => ({
  PolicyPack: class {
    constructor(name: string, args: unknown) {
      captured.name = name;
      captured.args = args;
    }
  },
}));

class NotApplicable extends Error {}
const resourceArgs = (
  type: string,
  props: Record<string, any>,
  config: Record<string, unknown> = {},
) => ({
  type,
  props,
  urn: `urn:pulumi:local::slipway::${type}::r`,
  name: "r",
  getConfig: () => config,
  notApplicable: (reason?: string) => {
    throw new NotApplicable(reason);
  },
});

describe("the policy pack adapter", () => {
  beforeAll(async () => {
    await import("../../../policy/index");
  });

  it("declares the pack 'slipway' with every policy of the catalog at its level", () => {
    expect(captured.name).toBe("slipway");
    const declared = captured.args.policies.map((p: any) => [
      p.name,
      p.enforcementLevel,
      "validateStack" in p ? "stack" : "resource",
    ]);
    expect(declared).toEqual(POLICIES.map((p) => [p.name, p.enforcementLevel, p.kind]));
    expect(declared.filter((d: any) => d[1] === "advisory").map((d: any) => d[0])).toEqual([
      "feature-flags-expiring-soon",
    ]);
    const ingress = captured.args.policies.find((p: any) => p.name === "no-public-ingress");
    expect(ingress.configSchema.properties.allowedPorts.default).toEqual([80, 443]);
  });

  it("reports a resource rule's violations, honours policy config and is not applicable to other types", () => {
    const ingress = captured.args.policies.find((p: any) => p.name === "no-public-ingress");
    const rule = {
      type: "ingress",
      protocol: "tcp",
      fromPort: 8443,
      toPort: 8443,
      cidrBlocks: ["0.0.0.0/0"],
    };
    const reported: string[] = [];
    ingress.validateResource(
      resourceArgs("aws:ec2/securityGroupRule:SecurityGroupRule", rule),
      (m: string) => reported.push(m),
    );
    expect(reported).toEqual([expect.stringContaining("opens tcp port 8443 to 0.0.0.0/0")]);
    reported.length = 0;
    ingress.validateResource(
      resourceArgs("aws:ec2/securityGroupRule:SecurityGroupRule", rule, { allowedPorts: [8443] }),
      (m: string) => reported.push(m),
    );
    expect(reported).toEqual([]);
    expect(() =>
      ingress.validateResource(resourceArgs("aws:s3/bucket:Bucket", {}), () => {}),
    ).toThrow(NotApplicable);
  });

  it("checks flags against the current date", () => {
    const flags = captured.args.policies.find(
      (p: any) => p.name === "feature-flags-owned-and-current",
    );
    const doc = (expires: string) =>
      JSON.stringify({ flags: { f: { metadata: { owner: "o", expires } } } });
    const reported: string[] = [];
    flags.validateResource(
      resourceArgs("kubernetes:core/v1:ConfigMap", {
        data: { "flags.flagd.json": doc("2000-01-01") },
      }),
      (m: string) => reported.push(m),
    );
    flags.validateResource(
      resourceArgs("kubernetes:core/v1:ConfigMap", {
        data: { "flags.flagd.json": doc("2999-01-01") },
      }),
      (m: string) => reported.push(m),
    );
    expect(reported).toEqual([
      'flag "f" (owner o) expired on 2000-01-01: remove it from slipway:flags and from the code that reads it',
    ]);
  });

  it("reports a stack rule's violations against the resource they belong to", () => {
    const slots = captured.args.policies.find((p: any) => p.name === "blue-green-slots-present");
    const reported: [string, string | undefined][] = [];
    const deployment = {
      type: "kubernetes:apps/v1:Deployment",
      name: "d",
      urn: "urn:d",
      props: { metadata: { labels: { "slipway.dev/slot": "blue" } } },
    };
    slots.validateStack(
      { resources: [deployment], getConfig: () => ({}) },
      (m: string, urn?: string) => reported.push([m, urn]),
    );
    expect(reported).toEqual([
      ["the stack: expected exactly one blue and one green Deployment; found blue ×1", "urn:d"],
    ]);
  });
});
