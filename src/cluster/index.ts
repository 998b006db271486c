/** The local Kubernetes cluster (README, "Local cluster"): lifecycle, API client, its objects. */
export {
  type ClusterInfo,
  type ClusterOptions,
  clusterClient,
  clusterDown,
  clusterSignalSync,
  clusterStatus,
  clusterUp,
  defaultStateDir,
  listening,
  localStageNeeds,
  PARTS,
  type PartName,
  type PartStatus,
} from "./lifecycle";
export {
  conditionStatus,
  KubeApiError,
  KubeClient,
  type KubeObject,
  resourcePath,
} from "../kube/client";
export {
  FIRST_SERVICE_IP,
  GATEWAY_CLASS,
  type GatewayRef,
  NODE_NAME,
  NODE_POD_CIDR,
  SERVICE_CIDR,
} from "./manifests";
export { clusterToolchainDir, findClusterToolchain } from "./toolchain";
