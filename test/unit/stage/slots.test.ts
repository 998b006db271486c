import { describe, expect, it } from "vitest";
import { coreCount, runtimeProfile } from "../../../src/runtime/profiles";
import { renderStage, stageConfigOf, variant } from "../support/harness";

describe("runtime profiles", () => {
  it("Go gets GOMAXPROCS from the CPU limit and GOMEMLIMIT at 90% of memory", () => {
    expect(runtimeProfile({ runtime: "go", cpu: 2, memoryMiB: 1024 }).env).toEqual({
      GOMAXPROCS: "2",
      GOMEMLIMIT: "921MiB",
    });
    expect(runtimeProfile({ runtime: "go", cpu: 0.5, memoryMiB: 256 }).env.GOMAXPROCS).toBe("1");
  });
  it("Rust gets TOKIO_WORKER_THREADS from the CPU limit and backtraces", () => {
    expect(runtimeProfile({ runtime: "rust", cpu: 4, memoryMiB: 512 }).env).toEqual({
      TOKIO_WORKER_THREADS: "4",
      RUST_BACKTRACE: "1",
    });
    expect(coreCount(0.25)).toBe(1);
    expect(coreCount(1.9)).toBe(1);
  });
});

describe("Kubernetes slots", () => {
  it("pin images by digest, size containers, probe the service and set the runtime profile", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const blue = local.byName("checkout-k8s-blue-deployment").inputs;
    const green = local.byName("checkout-k8s-green-deployment").inputs;
    expect(blue.metadata.name).toBe("checkout-blue");
    expect(blue.spec.replicas).toBe(2);
    expect(green.spec.replicas).toBe(0);
    const container = blue.spec.template.spec.containers[0];
    expect(container.image).toMatch(/@sha256:[a-f0-9]{64}$/);
    expect(container.resources.limits).toEqual({ cpu: "500m", memory: "256Mi" });
    expect(container.readinessProbe.httpGet.path).toBe("/readyz");
    expect(container.livenessProbe.httpGet.path).toBe("/healthz");
    const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({
      GOMAXPROCS: "1",
      GOMEMLIMIT: "230MiB",
      SLOT: "blue",
      VERSION: "1.0.0",
      PORT: "8080",
      LOG_FORMAT: "json",
    });
    expect(blue.spec.selector.matchLabels).toEqual({
      "app.kubernetes.io/name": "checkout",
      "slipway.dev/slot": "blue",
    });
    expect(blue.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it("a Rust service gets the Rust profile", async () => {
    const rust = await renderStage(variant("local", (raw) => (raw.service.runtime = "rust")));
    const env = rust.byName("checkout-k8s-blue-deployment").inputs.spec.template.spec.containers[0]
      .env;
    const names = env.map((e: any) => e.name);
    expect(names).toContain("TOKIO_WORKER_THREADS");
    expect(names).not.toContain("GOMAXPROCS");
  });

  it("flags become a flagd ConfigMap", async () => {
    const local = await renderStage(stageConfigOf("local"));
    const cm = local.ofType("kubernetes:core/v1:ConfigMap")[0]!.inputs;
    const doc = JSON.parse(cm.data["flags.flagd.json"]);
    expect(doc.flags["new-checkout-flow"]).toMatchObject({
      state: "ENABLED",
      defaultVariant: "off",
      metadata: { owner: "team-payments", expires: "2027-06-30" },
    });
  });
});

describe("AWS slots", () => {
  it("pin task definitions by digest, turn the circuit breaker on and register in their own target group", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const task = staging.byName("checkout-aws-green-task").inputs;
    const [container] = JSON.parse(task.containerDefinitions);
    expect(container.image).toMatch(/@sha256:[a-f0-9]{64}$/);
    expect(task.family).toBe("checkout-green");
    const service = staging.byName("checkout-aws-green-service");
    expect(service.inputs.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
    expect(service.inputs.loadBalancers[0].targetGroupArn).toContain("targetgroup/green-");
    // ECS refuses a target group no listener rule uses: the service waits for the routing.
    expect(service.dependsOn).toContain("slipway:aws:WeightedRoute::checkout-aws-route");
    const tg = staging.byName("checkout-aws-route-green-tg").inputs;
    expect(tg.namePrefix).toBe("green-");
    expect(tg.healthCheck.path).toBe("/readyz");
  });

  it("alarm on the 5xx ratio and p99 latency of each target group", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    const alarms = staging.ofType("aws:cloudwatch/metricAlarm:MetricAlarm");
    expect(alarms.map((a) => a.inputs.name).sort()).toEqual([
      "checkout-staging-blue-5xx-ratio",
      "checkout-staging-blue-p99-latency",
      "checkout-staging-green-5xx-ratio",
      "checkout-staging-green-p99-latency",
    ]);
    const p99 = alarms.find((a) => a.inputs.name === "checkout-staging-blue-p99-latency")!.inputs;
    expect(p99).toMatchObject({
      extendedStatistic: "p99",
      threshold: 0.3,
      metricName: "TargetResponseTime",
    });
    expect(p99.dimensions.LoadBalancer).toBe("app/platform-staging/0123456789abcdef");
    const ratio = alarms.find((a) => a.inputs.name === "checkout-staging-blue-5xx-ratio")!.inputs;
    expect(ratio.threshold).toBe(0.02);
    expect(ratio.metricQueries.map((q: any) => q.id)).toEqual(["errors", "requests", "ratio"]);
  });

  it("flags become an AppConfig feature-flag profile", async () => {
    const staging = await renderStage(stageConfigOf("staging"));
    expect(
      staging.ofType("aws:appconfig/configurationProfile:ConfigurationProfile")[0]!.inputs.type,
    ).toBe("AWS.AppConfig.FeatureFlags");
    let content = staging.ofType(
      "aws:appconfig/hostedConfigurationVersion:HostedConfigurationVersion",
    )[0]!.inputs.content;
    // The provider marks `content` sensitive, so the mock sees it wrapped as a secret.
    if (typeof content === "object") content = content.value;
    content = JSON.parse(content);
    expect(content.values["new-checkout-flow"]).toMatchObject({ enabled: false });
  });
});
