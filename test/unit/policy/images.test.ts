import { describe, expect, it } from "vitest";
import { imageViolations, TYPES } from "../../../src/policy/rules";
import { resource } from "./support";

const PINNED = "registry.local/checkout@sha256:" + "a".repeat(64);
const pod = (containers: object[], initContainers: object[] = []) => ({
  containers,
  initContainers,
});

describe("images-pinned-by-digest", () => {
  it("passes workloads whose containers and init containers are pinned", () => {
    const spec = pod(
      [{ name: "app", image: PINNED }],
      [{ name: "migrate", image: `ghcr.io/acme/migrate:1.2@sha256:${"b".repeat(64)}` }],
    );
    expect(imageViolations(resource(TYPES.deployment, { spec: { template: { spec } } }))).toEqual(
      [],
    );
    expect(imageViolations(resource("kubernetes:core/v1:Pod", { spec }))).toEqual([]);
    expect(
      imageViolations(
        resource("kubernetes:batch/v1:CronJob", {
          spec: { jobTemplate: { spec: { template: { spec } } } },
        }),
      ),
    ).toEqual([]);
  });

  it.each([
    ["kubernetes:apps/v1:Deployment", (s: object) => ({ spec: { template: { spec: s } } })],
    ["kubernetes:apps/v1:StatefulSet", (s: object) => ({ spec: { template: { spec: s } } })],
    ["kubernetes:apps/v1:DaemonSet", (s: object) => ({ spec: { template: { spec: s } } })],
    ["kubernetes:core/v1:Pod", (s: object) => ({ spec: s })],
  ])("fails a tag-only container or init container in a %s", (type, wrap) => {
    const found = imageViolations(
      resource(
        type,
        wrap(pod([{ name: "app", image: "nginx:1.27" }], [{ name: "init", image: "busybox" }])),
      ),
    );
    expect(found.map((v) => v.message)).toEqual([
      expect.stringMatching(
        /^init container "init" image "busybox" is not pinned by digest.*allowed: an image pinned by digest/,
      ),
      expect.stringMatching(/^container "app" image "nginx:1.27" is not pinned by digest/),
    ]);
  });

  it("checks ECS container definitions", () => {
    const task = (image: string) =>
      resource(TYPES.taskDefinition, {
        containerDefinitions: JSON.stringify([{ name: "app", image }]),
      });
    expect(imageViolations(task(PINNED))).toEqual([]);
    expect(
      imageViolations(task("111111111111.dkr.ecr.eu-west-1.amazonaws.com/checkout:latest"))[0]!
        .message,
    ).toContain(
      'container "app" image "111111111111.dkr.ecr.eu-west-1.amazonaws.com/checkout:latest" is not pinned by digest',
    );
    expect(imageViolations(task(`checkout@sha256:${"A".repeat(64)}`))).toHaveLength(1);
    expect(
      imageViolations(resource(TYPES.taskDefinition, { containerDefinitions: "[" }))[0]!.message,
    ).toContain("not valid JSON");
  });

  it("reports a container without an image", () => {
    expect(
      imageViolations(resource("kubernetes:core/v1:Pod", { spec: pod([{ name: "app" }]) }))[0]!
        .message,
    ).toBe(
      'container "app" image (none) is missing; allowed: an image pinned by digest, repo@sha256:<64 lowercase hex> (optionally repo:tag@sha256:<64 lowercase hex>)',
    );
  });
});
