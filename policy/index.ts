import {
  PolicyPack,
  type Policy,
  type PolicyResource as EnginePolicyResource,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from "@pulumi/policy";
import { POLICIES, type PolicySpec } from "../src/policy/catalog";
import type { PolicyResource } from "../src/policy/rules";

/**
 * Slipway's policy pack: a thin adapter from the pure rules in
 * src/policy/rules.ts (listed, with their levels, in src/policy/catalog.ts) to
 * the engine. Policies select resources by type token rather than with
 * validateResourceOfType(SomeClass, …): the routing rule on Kubernetes is a
 * CustomResource (no class to name), and importing the AWS and Kubernetes SDK
 * classes would add seconds of type checking to every preview.
 */

const toResource = (r: {
  type: string;
  name: string;
  urn: string;
  props: Record<string, any>;
}): PolicyResource => ({
  type: r.type,
  name: r.name,
  urn: r.urn,
  props: r.props,
});

function toPolicy(spec: PolicySpec): ResourceValidationPolicy | StackValidationPolicy {
  const common: Policy = {
    name: spec.name,
    description: spec.description,
    enforcementLevel: spec.enforcementLevel,
    ...(spec.configSchema ? { configSchema: spec.configSchema } : {}),
  };
  if (spec.kind === "stack") {
    return {
      ...common,
      validateStack: (args, reportViolation) => {
        const resources = args.resources.map((r: EnginePolicyResource) => toResource(r));
        for (const v of spec.check(resources, { config: args.getConfig(), now: new Date() }))
          reportViolation(v.message, v.urn);
      },
    };
  }
  return {
    ...common,
    validateResource: (args, reportViolation) => {
      if (!spec.appliesTo(args.type))
        args.notApplicable(`${spec.name} does not apply to ${args.type}`);
      for (const v of spec.check(toResource(args), { config: args.getConfig(), now: new Date() }))
        reportViolation(v.message);
    },
  };
}

new PolicyPack("slipway", { policies: POLICIES.map(toPolicy) });
