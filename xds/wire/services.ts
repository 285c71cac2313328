// gRPC method paths of the discovery services, and server definitions that pass raw bytes so
// handlers decode requests themselves (a bad message ends one stream with a clear status) and
// write responses the cache already encoded.
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { TYPE_URL } from "../type-urls.js";

export const ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";
export const CSDS_SERVICE = "envoy.service.status.v3.ClientStatusDiscoveryService";

export const ADS_PATHS = {
  sotw: `/${ADS_SERVICE}/StreamAggregatedResources`,
  delta: `/${ADS_SERVICE}/DeltaAggregatedResources`,
} as const;

export const CSDS_PATHS = {
  stream: `/${CSDS_SERVICE}/StreamClientStatus`,
  fetch: `/${CSDS_SERVICE}/FetchClientStatus`,
} as const;

/** A per-type discovery service (CDS, EDS, LDS, RDS, SDS): its one type and its three methods. */
export interface TypedService {
  service: string;
  typeUrl: string;
  stream: string;
  delta: string;
  fetch: string;
}

function typed(service: string, typeUrl: string, noun: string): TypedService {
  return {
    service,
    typeUrl,
    stream: `/${service}/Stream${noun}`,
    delta: `/${service}/Delta${noun}`,
    fetch: `/${service}/Fetch${noun}`,
  };
}

export const TYPED_SERVICES: readonly TypedService[] = [
  typed("envoy.service.cluster.v3.ClusterDiscoveryService", TYPE_URL.cluster, "Clusters"),
  typed("envoy.service.endpoint.v3.EndpointDiscoveryService", TYPE_URL.endpoint, "Endpoints"),
  typed("envoy.service.listener.v3.ListenerDiscoveryService", TYPE_URL.listener, "Listeners"),
  typed("envoy.service.route.v3.RouteDiscoveryService", TYPE_URL.route, "Routes"),
  typed("envoy.service.secret.v3.SecretDiscoveryService", TYPE_URL.secret, "Secrets"),
];

const identity = (b: Buffer): Buffer => b;

export function rawMethod(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** Method name (last path segment) → raw definition, as grpc-js Server.addService wants. */
export function rawService(
  methods: { path: string; requestStream: boolean; responseStream: boolean }[],
): ServiceDefinition {
  const def: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const m of methods) {
    const name = m.path.slice(m.path.lastIndexOf("/") + 1);
    def[name] = rawMethod(m.path, m.requestStream, m.responseStream);
  }
  return def;
}
