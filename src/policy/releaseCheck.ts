import { appConfigDocument, flagdDocument } from "../config/flags";
import type { StageConfig } from "../config/schema";
import { otherSlot } from "../domain";
import { weightsFor } from "../traffic/weights";
import { evaluate, POLICIES, type Finding } from "./catalog";
import { FLAGD_DATA_KEY, TYPES, type PolicyResource } from "./rules";

/**
 * The policy pack's resource rules, run by `release` before any update: the
 * engine runs the pack only when a preview or update is given `--policy-pack`,
 * and a release must not start on a stage the pack would refuse (an expired
 * flag, an unpinned image, weights not totalling 100). The resources here are
 * the ones the release would make the program declare, built with the same
 * document functions the components use; the rules are the catalog's own. Pure.
 */
export function releasePolicyResources(
  config: StageConfig,
  candidateImage: string,
  candidateWeights: readonly number[],
): PolicyResource[] {
  const service = config.service.name;
  const stable = config.traffic.stable;
  const candidate = otherSlot(stable);
  const images = { [stable]: config.slots[stable].image, [candidate]: candidateImage };
  const out: PolicyResource[] = [];
  if (config.platform === "kubernetes") {
    out.push({
      type: TYPES.configMap,
      name: `${service}-flags`,
      props: { data: { [FLAGD_DATA_KEY]: flagdDocument(config.flags) } },
    });
    for (const slot of [stable, candidate])
      out.push({
        type: TYPES.deployment,
        name: `${service}-${slot}`,
        props: {
          spec: { template: { spec: { containers: [{ name: service, image: images[slot] }] } } },
        },
      });
    for (const w of candidateWeights) {
      const weights = weightsFor(stable, w);
      out.push({
        type: "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
        name: `${service} at candidate weight ${w}`,
        props: {
          spec: {
            rules: [
              {
                backendRefs: (["blue", "green"] as const).map((s) => ({
                  name: `${service}-${s}`,
                  weight: weights[s],
                })),
              },
            ],
          },
        },
      });
    }
  } else {
    out.push({
      type: TYPES.appConfigVersion,
      name: `${service}-flags`,
      props: { content: appConfigDocument(config.flags) },
    });
    for (const slot of [stable, candidate])
      out.push({
        type: TYPES.taskDefinition,
        name: `${service}-${slot}`,
        props: { containerDefinitions: JSON.stringify([{ name: service, image: images[slot] }]) },
      });
    for (const w of candidateWeights) {
      const weights = weightsFor(stable, w);
      out.push({
        type: TYPES.listenerRules[0],
        name: `${service} at candidate weight ${w}`,
        props: {
          actions: [
            {
              type: "forward",
              forward: {
                targetGroups: (["blue", "green"] as const).map((s) => ({
                  arn: `arn:aws:elasticloadbalancing:::targetgroup/${s}-${service}`,
                  weight: weights[s],
                })),
              },
            },
          ],
        },
      });
    }
  }
  return out;
}

/** Mandatory findings refuse the release; advisory ones are reported. */
export function releasePolicyFindings(
  config: StageConfig,
  candidateImage: string,
  candidateWeights: readonly number[],
  now: Date,
): { mandatory: Finding[]; advisory: Finding[] } {
  const findings = evaluate(
    releasePolicyResources(config, candidateImage, candidateWeights),
    { now },
    POLICIES.filter((p) => p.kind === "resource"),
  );
  return {
    mandatory: findings.filter((f) => f.enforcementLevel === "mandatory"),
    advisory: findings.filter((f) => f.enforcementLevel === "advisory"),
  };
}
