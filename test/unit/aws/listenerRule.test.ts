import { describe, expect, it } from "vitest";
import {
  LoadBalancerReadBackError,
  LoadBalancerWeights,
  listenerRuleDifferences,
} from "../../../src/aws";
import type { AwsStageOutputs, StageOutputs } from "../../../src/contract/outputs";
import { RouteDriftedError } from "../../../src/pipeline/errors";

const tg = (name: string) =>
  `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${name}/0123456789abcdef`;
const RULE_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/x/1/2/3";
const LISTENER_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2";
const stage: AwsStageOutputs = {
  loadBalancerDimension: "app/platform/0123456789abcdef",
  listenerRuleArn: RULE_ARN,
  targetGroups: {
    blue: { arn: tg("aaa"), dimension: "targetgroup/aaa/0123456789abcdef" },
    green: { arn: tg("bbb"), dimension: "targetgroup/bbb/0123456789abcdef" },
  },
  alarms: { blue: [], green: [] },
};

/** The weighted rule as the provider keeps it in the checkpoint (components/aws/route.ts). */
function declaredRule(weights = { blue: 90, green: 10 }): Record<string, any> {
  return {
    arn: RULE_ARN,
    listenerArn: LISTENER_ARN,
    priority: 100,
    conditions: [
      {
        hostHeader: { values: ["checkout.example.com"], regexValues: [] },
        httpHeader: null,
        httpRequestMethod: null,
        pathPattern: null,
        queryStrings: [],
        sourceIp: null,
      },
      { pathPattern: { values: ["/*"] }, hostHeader: null, queryStrings: [] },
    ],
    actions: [
      {
        type: "forward",
        order: 1,
        targetGroupArn: "",
        fixedResponse: null,
        redirect: null,
        forward: {
          targetGroups: [
            { arn: tg("aaa"), weight: weights.blue },
            { arn: tg("bbb"), weight: weights.green },
          ],
          stickiness: { enabled: false, duration: 1 },
        },
      },
    ],
    tags: { "slipway:stage": "staging" },
    tagsAll: { "slipway:stage": "staging" },
  };
}

/** The same rule as DescribeRules returns it: legacy Values beside the *Config, defaults filled in. */
function liveRule(weights = { blue: 90, green: 10 }): Record<string, any> {
  return {
    RuleArn: RULE_ARN,
    Priority: "100",
    IsDefault: false,
    Conditions: [
      { Field: "path-pattern", Values: ["/*"], PathPatternConfig: { Values: ["/*"] } },
      {
        Field: "host-header",
        Values: ["Checkout.Example.com"],
        HostHeaderConfig: { Values: ["Checkout.Example.com"] },
      },
    ],
    Actions: [
      {
        Type: "forward",
        Order: 1,
        ForwardConfig: {
          TargetGroups: [
            { TargetGroupArn: tg("bbb"), Weight: weights.green },
            { TargetGroupArn: tg("aaa"), Weight: weights.blue },
          ],
          TargetGroupStickinessConfig: { Enabled: false },
        },
      },
    ],
  };
}

describe("listenerRuleDifferences", () => {
  it("no difference for the declared rule as the API returns it (order, case, legacy Values, defaults)", () => {
    expect(listenerRuleDifferences(declaredRule(), liveRule(), stage)).toEqual([]);
    // The legacy form alone reads the same as the *Config form.
    const legacy = liveRule();
    legacy.Conditions = [
      { Field: "host-header", Values: ["checkout.example.com"] },
      { Field: "path-pattern", Values: ["/*", "/*"] },
    ];
    delete legacy.Actions[0].ForwardConfig.TargetGroupStickinessConfig;
    expect(listenerRuleDifferences(declaredRule(), legacy, stage)).toEqual([]);
  });

  it("ignores the weights: they are compared with what the step expects, elsewhere", () => {
    expect(
      listenerRuleDifferences(declaredRule(), liveRule({ blue: 0, green: 100 }), stage),
    ).toEqual([]);
  });

  it("names an extra condition", () => {
    const live = liveRule();
    live.Conditions.push({
      Field: "http-header",
      HttpHeaderConfig: { HttpHeaderName: "X-Evil", Values: ["1"] },
    });
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "conditions: declared host-header [checkout.example.com] and path-pattern [/*], " +
        "found host-header [checkout.example.com] and http-header x-evil [1] and path-pattern [/*]",
    ]);
  });

  it("names a changed path or host condition", () => {
    const live = liveRule();
    live.Conditions[0] = { Field: "path-pattern", PathPatternConfig: { Values: ["/api/*"] } };
    live.Conditions[1] = { Field: "host-header", HostHeaderConfig: { Values: ["evil.example"] } };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "conditions: declared host-header [checkout.example.com] and path-pattern [/*], " +
        "found host-header [evil.example] and path-pattern [/api/*]",
    ]);
  });

  it("names a changed priority", () => {
    const live = { ...liveRule(), Priority: "5" };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "priority: declared 100, found 5",
    ]);
  });

  it("names an added fixed-response action, with its settings", () => {
    const live = liveRule();
    live.Actions[0].Order = 2;
    live.Actions.unshift({
      Type: "fixed-response",
      Order: 1,
      FixedResponseConfig: { StatusCode: "503", ContentType: "text/plain" },
    });
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      'actions: found an extra fixed-response action ({"contentType":"text/plain","statusCode":"503"})',
    ]);
  });

  it("a redirect in place of the forward action: the forward is missing, the redirect extra", () => {
    const live = liveRule();
    live.Actions = [
      {
        Type: "redirect",
        Order: 1,
        RedirectConfig: { Host: "evil.example", StatusCode: "HTTP_302" },
      },
    ];
    const differences = listenerRuleDifferences(declaredRule(), live, stage);
    expect(differences).toHaveLength(2);
    expect(differences[0]).toBe("actions: the declared forward action is missing");
    expect(differences[1]).toMatch(
      /^actions: found an extra redirect action \(.*"host":"evil\.example"/,
    );
  });

  it("a redirect whose settings changed, with the API's placeholders filled in on both sides", () => {
    const declared = declaredRule();
    declared.actions = [
      { type: "redirect", order: 1, redirect: { statusCode: "HTTP_301", protocol: "HTTPS" } },
    ];
    const live = liveRule();
    live.Actions = [
      {
        Type: "redirect",
        Order: 1,
        RedirectConfig: {
          Protocol: "HTTPS",
          Port: "#{port}",
          Host: "#{host}",
          Path: "/#{path}",
          Query: "#{query}",
          StatusCode: "HTTP_301",
        },
      },
    ];
    expect(listenerRuleDifferences(declared, live, stage)).toEqual([]);
    live.Actions[0].RedirectConfig.Host = "evil.example";
    expect(listenerRuleDifferences(declared, live, stage)).toEqual([
      expect.stringMatching(
        /^redirect: declared .*"host":"#\{host\}".*, found .*"host":"evil\.example"/,
      ),
    ]);
  });

  it("actions in another order", () => {
    const declared = declaredRule();
    declared.actions.unshift({
      type: "authenticate-oidc",
      order: 1,
      authenticateOidc: { issuer: "https://idp", clientSecret: "s" },
    });
    declared.actions[1].order = 2;
    const live = liveRule();
    live.Actions[0].Order = 1;
    live.Actions.push({
      Type: "authenticate-oidc",
      Order: 2,
      AuthenticateOidcConfig: { Issuer: "https://idp" },
    });
    expect(listenerRuleDifferences(declared, live, stage)).toEqual([
      "actions: declared in the order authenticate-oidc, forward, found forward, authenticate-oidc",
    ]);
  });

  it("names forwarded target groups by slot, and one that is not the stage's by ARN", () => {
    const live = liveRule();
    live.Actions[0].ForwardConfig.TargetGroups[0] = { TargetGroupArn: tg("zzz"), Weight: 10 };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      `forward: target groups declared blue,green, found blue,${tg("zzz")}`,
    ]);
    // The single-group form (TargetGroupArn) reads as a forward to that group.
    live.Actions = [{ Type: "forward", Order: 1, TargetGroupArn: tg("aaa") }];
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "forward: target groups declared blue,green, found blue",
    ]);
  });

  it("names a stickiness change; the duration of disabled stickiness does not count", () => {
    const live = liveRule();
    live.Actions[0].ForwardConfig.TargetGroupStickinessConfig = {
      Enabled: false,
      DurationSeconds: 3600,
    };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([]);
    live.Actions[0].ForwardConfig.TargetGroupStickinessConfig = {
      Enabled: true,
      DurationSeconds: 3600,
    };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "stickiness: declared disabled, found enabled for 3600s",
    ]);
  });

  it("names a transform added outside the stack", () => {
    const live = {
      ...liveRule(),
      Transforms: [
        {
          Type: "url-rewrite",
          UrlRewriteConfig: { Rewrites: [{ Regex: "^/(.*)$", Replace: "/evil/$1" }] },
        },
      ],
    };
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "transforms: declared none, found url-rewrite ^/(.*)$ → /evil/$1",
    ]);
    const declared = {
      ...declaredRule(),
      transforms: [
        {
          type: "url-rewrite",
          urlRewriteConfig: { rewrite: { regex: "^/(.*)$", replace: "/evil/$1" } },
        },
      ],
    };
    expect(listenerRuleDifferences(declared, live, stage)).toEqual([]);
  });

  it("reports several differences at once", () => {
    const live: Record<string, any> = { ...liveRule(), Priority: "7" };
    live.Conditions.push({ Field: "source-ip", SourceIpConfig: { Values: ["10.0.0.0/8"] } });
    expect(listenerRuleDifferences(declaredRule(), live, stage)).toEqual([
      "priority: declared 100, found 7",
      expect.stringMatching(/^conditions: .*found .*source-ip \[10\.0\.0\.0\/8\]/),
    ]);
  });

  it("garbage on either side does not crash it; a part not of the declared shape is not compared", () => {
    const garbage: unknown[] = [
      undefined,
      null,
      42,
      "text",
      [],
      [1, 2],
      { Priority: { x: 1 }, Conditions: "no", Actions: [null, 3, { Type: 5 }], Transforms: {} },
      { priority: "x", conditions: [null, 1, { weird: { a: 1 } }], actions: [null, { type: [] }] },
      { Conditions: [{ Field: "future-field", FutureConfig: { A: 1 } }, { Values: 3 }] },
    ];
    for (const a of garbage)
      for (const b of garbage) expect(() => listenerRuleDifferences(a, b, stage)).not.toThrow();
    expect(listenerRuleDifferences(undefined, liveRule(), stage)).toEqual([]);
    // A value the state keeps secret (the checkpoint's secret signature) is not compared.
    const secret = {
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      ciphertext: "x",
    };
    const transformed = {
      ...liveRule(),
      Priority: "5",
      Transforms: [{ Type: "url-rewrite", UrlRewriteConfig: { Rewrites: [{ Regex: "a" }] } }],
    };
    // Its secret parts are left out; the others are compared.
    expect(
      listenerRuleDifferences(
        { ...declaredRule(), conditions: secret, actions: secret, transforms: secret },
        transformed,
        stage,
      ),
    ).toEqual(["priority: declared 100, found 5"]);
    // A rule secret whole is unknown: nothing to compare, not "none declared".
    expect(listenerRuleDifferences(secret, transformed, stage)).toEqual([]);
    expect(listenerRuleDifferences(declaredRule(), {}, stage)).toEqual([
      "priority: declared 100, found none",
      "conditions: declared host-header [checkout.example.com] and path-pattern [/*], found none",
      "actions: the declared forward action is missing",
    ]);
  });
});

describe("LoadBalancerWeights with the declared rule", () => {
  const outputs = {
    stage: "staging",
    routing: { kind: "ListenerRule", id: RULE_ARN },
    aws: stage,
  } as unknown as StageOutputs;
  /** A client answering DescribeRules with `rule`. */
  const reading = (rule: Record<string, any>, declared?: Record<string, any>) =>
    new LoadBalancerWeights({
      settings: { region: "eu-west-1", maxAttempts: 1 },
      client: { send: async () => ({ Rules: [rule] }) } as any,
      declared: async () => declared,
    });

  it("a rule as declared reads as its weights", async () => {
    expect(await reading(liveRule({ blue: 70, green: 30 }), declaredRule()).read(outputs)).toEqual({
      blue: 70,
      green: 30,
    });
  });

  it("unknown declared rule: the weights only, as before", async () => {
    expect(await reading({ ...liveRule(), Priority: "5" }).read(outputs)).toEqual({
      blue: 90,
      green: 10,
    });
  });

  it("a rule changed beyond its weights is a RouteDriftedError with the live weights", async () => {
    const err = await reading(
      { ...liveRule({ blue: 50, green: 50 }), Priority: "5" },
      declaredRule(),
    )
      .read(outputs)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouteDriftedError);
    expect(err).toMatchObject({
      routingId: RULE_ARN,
      weights: { blue: 50, green: 50 },
      differences: ["priority: declared 100, found 5"],
    });
  });

  it("a rule whose weights cannot be read stays a read-back error, naming the differences too", async () => {
    const live = liveRule();
    live.Actions = [
      { Type: "fixed-response", Order: 1, FixedResponseConfig: { StatusCode: "503" } },
    ];
    const err = await reading(live, declaredRule())
      .read(outputs)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadBalancerReadBackError);
    expect(err).toMatchObject({ problem: "notForwarding" });
    expect((err as Error).message).toMatch(
      /the rule differs from the stack: actions: the declared forward action is missing; actions: found an extra fixed-response action/,
    );
  });
});
