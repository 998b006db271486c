import { describe, expect, it } from "vitest";
import { ConfigError, parseStageConfig } from "../../../src/config/load";
import { stackConfig } from "../support/harness";

function problemsFor(change: (raw: any) => void, stage = "local") {
  const raw = structuredClone(stackConfig(stage));
  change(raw);
  try {
    parseStageConfig(raw, stage);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { message: (err as ConfigError).message, problems: (err as ConfigError).problems };
  }
  throw new Error("expected a ConfigError");
}

describe("config validation", () => {
  it("accepts every shipped stack file", () => {
    for (const stage of ["local", "staging", "prod"]) {
      expect(parseStageConfig(stackConfig(stage), stage).stage).toBe(stage);
    }
  });

  // Each bad input names the key, the value and what is allowed.
  const cases: [string, (raw: any) => void, string, RegExp][] = [
    [
      "a tag-only image",
      (r) => (r.slots.green.image = "repo:1.2"),
      "slipway:slots.green.image",
      /got "repo:1.2".*pinned by digest.*repo@sha256:<64 lowercase hex>/,
    ],
    [
      "a weight of 150",
      (r) => (r.traffic.canaryWeight = 150),
      "slipway:traffic.canaryWeight",
      /got 150.*integer from 0 to 100/,
    ],
    [
      "a weight of -1",
      (r) => (r.traffic.canaryWeight = -1),
      "slipway:traffic.canaryWeight",
      /got -1.*integer from 0 to 100/,
    ],
    [
      'a weight of "ten"',
      (r) => (r.traffic.canaryWeight = "ten"),
      "slipway:traffic.canaryWeight",
      /got "ten".*integer from 0 to 100/,
    ],
    [
      "a fractional weight",
      (r) => (r.traffic.canaryWeight = 12.5),
      "slipway:traffic.canaryWeight",
      /got 12.5.*integer from 0 to 100/,
    ],
    [
      "an unknown platform",
      (r) => (r.platform = "gcp"),
      "slipway:platform",
      /got "gcp".*"kubernetes" or "aws"/,
    ],
    [
      "stable: purple",
      (r) => (r.traffic.stable = "purple"),
      "slipway:traffic.stable",
      /got "purple".*"blue" or "green"/,
    ],
    [
      "a missing port",
      (r) => delete r.service.port,
      "slipway:service.port",
      /missing.*port number from 1 to 65535/,
    ],
    [
      "a wildcard action",
      (r) => (r.service.permissions = [{ actions: ["s3:*"], resources: ["arn:aws:s3:::b/*"] }]),
      "slipway:service.permissions[0].actions[0]",
      /got "s3:\*".*wildcards/,
    ],
    [
      "a bare * action",
      (r) => (r.service.permissions = [{ actions: ["*"], resources: ["arn:aws:s3:::b"] }]),
      "slipway:service.permissions[0].actions[0]",
      /got "\*"/,
    ],
    [
      "a bare * resource",
      (r) => (r.service.permissions = [{ actions: ["s3:GetObject"], resources: ["*"] }]),
      "slipway:service.permissions[0].resources[0]",
      /bare "\*" resource/,
    ],
    [
      "zero replicas on the stable slot",
      (r) => (r.slots.blue.replicas = 0),
      "slipway:slots.blue.replicas",
      /got 0.*stable slot must run at full size/,
    ],
    [
      "an unknown runtime",
      (r) => (r.service.runtime = "java"),
      "slipway:service.runtime",
      /got "java".*"go" or "rust"/,
    ],
    [
      "an unknown key",
      (r) => (r.traffic.weight = 5),
      "slipway:traffic.weight",
      /not a known setting/,
    ],
    [
      "an unknown top-level key",
      (r) => (r.colour = "blue"),
      "slipway:colour",
      /allowed keys: platform, service/,
    ],
    [
      "a hook at an unknown point",
      (r) => (r.canary.hooks = [{ name: "a", at: "whenever", url: "https://ci.example.com/" }]),
      "slipway:canary.hooks[0].at",
      /got "whenever".*allowed: preRollout, afterDeploy, beforeStep, afterStep, confirmPromotion, postRollout, onRollback/,
    ],
    [
      "the tester header's secret to a plain-HTTP host",
      (r) =>
        (r.canary.hooks = [
          { name: "a", at: "afterDeploy", url: "http://ci.example.com/t", sendTesterHeader: true },
        ]),
      "slipway:canary.hooks[0].url",
      /got "http:\/\/ci.example.com\/t".*allowed: an https:\/\/ URL or a loopback one/,
    ],
    [
      "a hook for a step beyond the plan",
      (r) =>
        (r.canary.hooks = [
          { name: "a", at: "afterStep", url: "https://ci.example.com/", steps: [9] },
        ]),
      "slipway:canary.hooks[0].steps",
      /got \[9\].*not in the plan, which has 6 steps; allowed: step numbers from 1 to 6/,
    ],
    [
      "a blocking policy after the outcome",
      (r) =>
        (r.canary.hooks = [
          { name: "a", at: "postRollout", url: "https://ci.example.com/", failurePolicy: "pause" },
        ]),
      "slipway:canary.hooks[0].failurePolicy",
      /got "pause".*allowed: "ignore"/,
    ],
    [
      "a header that is neither a literal nor fromEnv",
      (r) =>
        (r.canary.hooks = [
          {
            name: "a",
            at: "preRollout",
            url: "https://ci.example.com/",
            headers: { X: { env: "T" } },
          },
        ]),
      "slipway:canary.hooks[0].headers.X",
      /allowed: a string, or \{fromEnv/,
    ],
    [
      "an unknown notification format",
      (r) =>
        (r.notifications = {
          webhooks: [{ name: "chat", url: "https://h.example.com/", format: "teams" }],
        }),
      "slipway:notifications.webhooks[0].format",
      /got "teams".*allowed: "generic" or "slack"/,
    ],
    [
      "an unknown notification event",
      (r) =>
        (r.notifications = {
          webhooks: [{ name: "chat", url: "https://h.example.com/", events: ["deployed"] }],
        }),
      "slipway:notifications.webhooks[0].events[0]",
      /got "deployed".*allowed: started, stepDone, analysis, paused, promoted, rolledBack, failed, drift/,
    ],
    [
      "weights out of order",
      (r) => (r.canary.steps = [{ setWeight: 50 }, { setWeight: 20 }]),
      "slipway:canary.steps[1].setWeight",
      /must rise.*20 follows 50/,
    ],
    [
      "a weight step out of range",
      (r) => (r.canary.steps = [{ setWeight: 120 }]),
      "slipway:canary.steps[0].setWeight",
      /got 120.*weight from 1 to 100/,
    ],
    [
      "a bad pause duration",
      (r) => (r.canary.steps = [{ pause: { duration: "5 minutes" } }]),
      "slipway:canary.steps[0].pause.duration",
      /got "5 minutes".*"30s", "5m"/,
    ],
    [
      "a pause of no time that waits for no approval",
      (r) => (r.canary.steps = [{ setWeight: 10 }, { pause: { untilApproved: false } }]),
      "slipway:canary.steps[1].pause",
      /needs a duration; allowed: \{duration: 30s\} or \{untilApproved: true\}/,
    ],
    [
      "a pause of 0 seconds",
      (r) => (r.canary.steps = [{ pause: { duration: 0 } }]),
      "slipway:canary.steps[0].pause.duration",
      /got 0.*whole seconds from 1/,
    ],
    [
      "a plan longer than its progress deadline",
      (r) => {
        r.canary.steps = [
          { setWeight: 10 },
          { pause: { duration: "5m" } },
          { analysis: { count: 5, interval: "1m" } },
        ];
      },
      "slipway:canary.steps",
      /got \[.*; the plan's pauses and analyses take at least 600s, longer than progressDeadlineSeconds \(300s\)/,
    ],
    [
      "a version that is not a label value",
      (r) => (r.slots.green.version = "1.4.0+build.7"),
      "slipway:slots.green.version",
      /got "1.4.0\+build.7".*1 to 63 letters, digits/,
    ],
    [
      "a flag without owner",
      (r) => delete r.flags["new-checkout-flow"].owner,
      "slipway:flags.new-checkout-flow.owner",
      /missing.*owning team/,
    ],
    [
      "a bad flag expiry",
      (r) => (r.flags["new-checkout-flow"].expires = "next year"),
      "slipway:flags.new-checkout-flow.expires",
      /YYYY-MM-DD/,
    ],
  ];

  it.each(cases)(
    "rejects %s, naming the key, the value and what is allowed",
    (_label, change, key, pattern) => {
      const { message, problems } = problemsFor(change);
      expect(problems.map((p) => p.key)).toContain(key);
      const line = message.split("\n").find((l) => l.includes(`${key}:`));
      expect(line, message).toMatch(pattern);
    },
  );

  it("on AWS, requires the aws block and checks Fargate sizes", () => {
    const noAws = problemsFor((r) => delete r.aws, "staging");
    expect(noAws.message).toMatch(
      /slipway:aws: missing; is required when slipway:platform is "aws"/,
    );
    const badSize = problemsFor((r) => (r.service.memoryMiB = 300), "staging");
    expect(badSize.message).toMatch(
      /slipway:service.memoryMiB: got 300; with 0.5 vCPU, Fargate allows 1024 to 4096 MiB/,
    );
  });

  it("reports every problem at once", () => {
    const { problems } = problemsFor((r) => {
      r.traffic.canaryWeight = 150;
      r.platform = "gcp";
      r.slots.blue.image = "repo:latest";
    });
    expect(problems.map((p) => p.key).sort()).toEqual(
      ["slipway:platform", "slipway:slots.blue.image", "slipway:traffic.canaryWeight"].sort(),
    );
  });
});
