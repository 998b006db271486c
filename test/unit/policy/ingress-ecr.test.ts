import { describe, expect, it } from "vitest";
import { ecrTagViolations, publicIngressViolations, TYPES } from "../../../src/policy/rules";
import { resource } from "./support";

const sg = (...ingress: object[]) =>
  resource(TYPES.securityGroup, {
    ingress,
    egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }],
  });

describe("no-public-ingress", () => {
  it("allows the listener ports from anywhere, anything from a security group or a private range", () => {
    expect(
      publicIngressViolations(
        sg(
          {
            protocol: "tcp",
            fromPort: 443,
            toPort: 443,
            cidrBlocks: ["0.0.0.0/0"],
            ipv6CidrBlocks: ["::/0"],
          },
          { protocol: "tcp", fromPort: 80, toPort: 80, cidrBlocks: ["0.0.0.0/0"] },
          { protocol: "tcp", fromPort: 8080, toPort: 8080, securityGroups: ["sg-123"] },
          { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["10.0.0.0/8"] },
        ),
      ),
    ).toEqual([]);
  });

  it.each([
    [
      { protocol: "tcp", fromPort: 22, toPort: 22, cidrBlocks: ["0.0.0.0/0"] },
      "opens tcp port 22 to 0.0.0.0/0",
    ],
    [
      { protocol: "tcp", fromPort: 0, toPort: 65535, ipv6CidrBlocks: ["::/0"] },
      "opens tcp ports 0-65535 to ::/0",
    ],
    [
      { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] },
      "opens all protocols and ports to 0.0.0.0/0",
    ],
    [
      { protocol: "udp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] },
      'opens protocol "udp" to 0.0.0.0/0',
    ],
  ])("fails %j", (rule, expected) => {
    const [v] = publicIngressViolations(sg(rule));
    expect(v!.message).toContain(expected);
    expect(v!.message).toContain("allowed from the internet: tcp 80, 443");
  });

  it("checks SecurityGroupRule and vpc SecurityGroupIngressRule, and takes the allowed ports from config", () => {
    const rule = resource(TYPES.securityGroupRule, {
      type: "ingress",
      protocol: "tcp",
      fromPort: 8443,
      toPort: 8443,
      cidrBlocks: ["0.0.0.0/0"],
      securityGroupId: "sg-1",
    });
    expect(publicIngressViolations(rule)).toHaveLength(1);
    expect(publicIngressViolations(rule, [443, 8443])).toEqual([]);
    expect(
      publicIngressViolations(resource(TYPES.securityGroupRule, { ...rule.props, type: "egress" })),
    ).toEqual([]);
    const vpc = resource(TYPES.vpcIngressRule, {
      ipProtocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      cidrIpv6: "::/0",
      securityGroupId: "sg-1",
    });
    expect(publicIngressViolations(vpc)[0]!.message).toBe(
      "ingress rule opens tcp port 5432 to ::/0; allowed from the internet: tcp 80, 443 (the load balancer's listener ports); anything else from a security group or a private range",
    );
    expect(
      publicIngressViolations(
        resource(TYPES.vpcIngressRule, {
          ...vpc.props,
          cidrIpv6: undefined,
          cidrIpv4: "10.1.0.0/16",
        }),
      ),
    ).toEqual([]);
  });
});

describe("ecr-immutable-tags", () => {
  it("passes IMMUTABLE and fails MUTABLE, the default and IMMUTABLE_WITH_EXCLUSION", () => {
    expect(
      ecrTagViolations(
        resource(TYPES.ecrRepository, { name: "checkout", imageTagMutability: "IMMUTABLE" }),
      ),
    ).toEqual([]);
    expect(
      ecrTagViolations(
        resource(TYPES.ecrRepository, { name: "checkout", imageTagMutability: "MUTABLE" }),
      )[0]!.message,
    ).toBe(
      'ECR repository "checkout" has imageTagMutability "MUTABLE", so a tag can be moved to other bytes; allowed: "IMMUTABLE"',
    );
    expect(
      ecrTagViolations(resource(TYPES.ecrRepository, { name: "checkout" }))[0]!.message,
    ).toContain('"MUTABLE" (the default)');
    expect(
      ecrTagViolations(
        resource(TYPES.ecrRepository, { imageTagMutability: "IMMUTABLE_WITH_EXCLUSION" }, "repo"),
      )[0]!.message,
    ).toContain('"repo"');
  });
});
