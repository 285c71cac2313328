// xds/: the xDS protocol, free of Catena's model. Proto loading and type URLs, resource builders
// and decoders, the snapshot cache, the ADS server (SotW and Delta, per-type services, CSDS) and
// the ADS client.

export { contentVersion, Snapshot, VersionedResource, versionOf } from "./cache/snapshot.js";
export {
  type ConfigWatcher,
  defaultSnapshotCacheOptions,
  SnapshotCache,
  type SnapshotCacheOptions,
  type SnapshotReader,
} from "./cache/snapshot-cache.js";
export {
  AdsClient,
  type AdsClientOptions,
  type AdsMode,
  type ClientState,
  type ClientStateName,
  defaultAdsClientOptions,
} from "./client/ads-client.js";
export { type BackoffOptions, defaultBackoffOptions } from "./client/backoff.js";
export type { Accepted } from "./client/subscription.js";
export type { ResourceWatch, WatchEvent } from "./client/watch-queue.js";
export { XDS_ERR, XdsError, type XdsErrorCode } from "./errors.js";
export { type Logger, silentLogger } from "./logger.js";
export type { Locality, Node } from "./node.js";
export { addProtoFiles, findMessageType, messageType, protoRoot } from "./protos.js";
export { decodeAny, encodeAny, encodeResource, type Resource, resourceFromBytes } from "./resource.js";
export { BUILTIN_RESOURCE_TYPES } from "./resource-types/builtin.js";
export { type ClusterJson, clusterEdsName, clusterType } from "./resource-types/cluster.js";
export { type ClusterLoadAssignmentJson, endpointType } from "./resource-types/endpoint.js";
export { type ListenerJson, listenerRouteNames, listenerType } from "./resource-types/listener.js";
export {
  type Decoded,
  decodeMessageJson,
  type ProtoJson,
  protoResourceType,
  type ResourceType,
  withValidation,
} from "./resource-types/resource-type.js";
export { type RouteConfigurationJson, routeType } from "./resource-types/route.js";
export { type SecretJson, secretType } from "./resource-types/secret.js";
export { type UnpackedTypedStruct, unpackTypedStruct } from "./resource-types/typed-struct.js";
export { type ApiListenerInput, apiListener } from "./resources/api-listener.js";
export {
  clusterFromObject,
  type EdsClusterInput,
  edsCluster,
  type LbPolicy,
  type UpstreamTlsInput,
} from "./resources/cluster.js";
export {
  type ClusterLoadAssignmentInput,
  clusterLoadAssignment,
  type EndpointInput,
  type HealthStatus,
  type LocalityInput,
} from "./resources/cluster-load-assignment.js";
export {
  type CidrInput,
  type ConnectRoute,
  type ConnectTerminatorInput,
  connectTerminatorListener,
  type FilterChainMatchInput,
  listenerFromObject,
  type NetworkFilter,
  networkFilter,
  proxyProtocolListenerFilter,
  type TcpProxyInput,
  type TcpProxyListenerInput,
  tcpProxyFilter,
  tcpProxyListener,
} from "./resources/listener.js";
export {
  type RouteConfigurationInput,
  type RouteInput,
  routeConfiguration,
  type VirtualHostInput,
} from "./resources/route-configuration.js";
export {
  type TlsCertificateSecretInput,
  tlsCertificateSecret,
  type ValidationContextSecretInput,
  validationContextSecret,
} from "./resources/secret.js";
export {
  type CommonTlsInput,
  commonTlsContext,
  downstreamTlsSocket,
  http2ProtocolOptions,
  upstreamTlsSocket,
} from "./resources/tls.js";
export {
  adsConfigSource,
  cidrRange,
  duration,
  filterMetadata,
  socketAddress,
  type TypedConfig,
  typedConfig,
  typedStruct,
} from "./resources/typed-config.js";
export { AdsServer, type AdsServerOptions, defaultAdsServerOptions } from "./server/ads-server.js";
export type {
  AckEvent,
  Admission,
  NackEvent,
  ServerCallbacks,
  StreamInfo,
  StreamVariant,
} from "./server/callbacks.js";
export type {
  NodeStatus,
  ResourceStatus,
  ResourceSyncState,
  StatusReader,
  TypeStatus,
} from "./server/client-status.js";
export {
  DISCOVERY_TYPES,
  FILTER_NAME,
  FULL_STATE_TYPES,
  PUSH_ORDER,
  TYPE_URL,
  type TypeUrlName,
} from "./type-urls.js";
export {
  type FieldError,
  formatFieldErrors,
  invalid,
  nestErrors,
  type Validated,
  valid,
} from "./validated.js";
export type { RpcStatus } from "./wire/discovery.js";
export { type Json, jsonToStruct, structToJson } from "./wire/struct.js";
