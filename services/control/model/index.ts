// The model package: what Catena objects look like, and how manifests become valid objects.

export {
  type BatchEntry,
  checkDeletes,
  checkReferences,
  type DeleteEntry,
  indexResources,
  type Reference,
  type ResourceList,
  type ResourceLookup,
  referencesOf,
} from "./cross-checks.js";
export { applyDefaults, applyHopConfigDefaults } from "./defaults.js";
export { formatFieldPath, type PathSegment, parseFieldPath } from "./field-path.js";
export { formatErrorDetail } from "./format-error.js";
export {
  BUILTIN_FUNCTION_TYPES,
  type BuiltinFunctionType,
  checkHopConfig,
  DiscoveryConfig,
  effectiveHopConfig,
  FirewallConfig,
  HOP_CONFIG_SCHEMAS,
  type HopConfigs,
  isBuiltinFunctionType,
  LB_POLICIES,
  LoadBalancerConfig,
  QosConfig,
  VpnConfig,
} from "./hop-configs.js";
export * from "./ip.js";
export { manifestJsonSchema } from "./json-schema.js";
export {
  locateDetail,
  type ManifestDocument,
  type ParsedManifests,
  parseManifests,
  type SourcePosition,
} from "./manifest.js";
export * from "./resource.js";
export {
  type CatenaResource,
  isKind,
  type NetworkPolicyResource,
  NetworkPolicySpec,
  type NetworkResource,
  NetworkSpec,
  PLACEMENTS,
  type ServiceChainResource,
  ServiceChainSpec,
  type ServiceFunctionResource,
  ServiceFunctionSpec,
  type ServiceResource,
  ServiceSpec,
  SPEC_SCHEMAS,
  type Specs,
  type TypedResource,
  WORKLOAD_KINDS,
  type WorkloadResource,
  WorkloadSpec,
} from "./schemas.js";
export { validateResource } from "./validate.js";
export { identifyDocument, type ManifestValidation, validateManifests } from "./validate-manifests.js";
