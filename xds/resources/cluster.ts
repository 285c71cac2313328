// Clusters Catena emits: endpoints from EDS over the same ADS stream, optional upstream TLS via SDS.
import { encodeResource, type Resource } from "../resource.js";
import { FILTER_NAME, TYPE_URL } from "../type-urls.js";
import type { Json } from "../wire/struct.js";
import { type CommonTlsInput, http2ProtocolOptions, upstreamTlsSocket } from "./tls.js";
import { adsConfigSource, duration, filterMetadata, typedConfig } from "./typed-config.js";

export type LbPolicy = "ROUND_ROBIN" | "LEAST_REQUEST" | "RING_HASH" | "RANDOM" | "MAGLEV";

/** Upstream TLS: the common context's fields and an SNI. */
export type UpstreamTlsInput = CommonTlsInput & { sni?: string };

export interface EdsClusterInput {
  name: string;
  /** The ClusterLoadAssignment name; defaults to the cluster's name. */
  serviceName?: string;
  connectTimeoutMs?: number;
  lbPolicy?: LbPolicy;
  upstreamTls?: UpstreamTlsInput;
  /** Start every upstream connection with a PROXY protocol header of this version. */
  upstreamProxyProtocol?: "V1" | "V2";
  /** Speak HTTP/2 to the endpoints (HttpProtocolOptions), as a CONNECT tunnel needs. */
  http2?: boolean;
  /** Cluster metadata: filter_metadata per namespace. */
  metadata?: Record<string, { [key: string]: Json }>;
  /** Raw Cluster fields (proto names): health_checks, outlier_detection, circuit_breakers... */
  extra?: Record<string, unknown>;
}

/** The plain transport socket, which an upstream_proxy_protocol socket must wrap when nothing else is. */
function rawBufferSocket(): Record<string, unknown> {
  return { name: FILTER_NAME.rawBuffer, typed_config: typedConfig(TYPE_URL.rawBuffer) };
}

/** envoy.transport_sockets.upstream_proxy_protocol around `inner` (TLS, or raw_buffer). */
function upstreamProxyProtocolSocket(
  version: "V1" | "V2",
  inner: Record<string, unknown>,
): Record<string, unknown> {
  return {
    name: FILTER_NAME.upstreamProxyProtocol,
    typed_config: typedConfig(TYPE_URL.upstreamProxyProtocol, {
      config: { version },
      transport_socket: inner,
    }),
  };
}

function transportSocket(input: EdsClusterInput): Record<string, unknown> | undefined {
  const tls = input.upstreamTls ? upstreamTlsSocket(input.upstreamTls) : undefined;
  if (!input.upstreamProxyProtocol) return tls;
  return upstreamProxyProtocolSocket(input.upstreamProxyProtocol, tls ?? rawBufferSocket());
}

export function edsCluster(input: EdsClusterInput): Resource {
  const socket = transportSocket(input);
  const cluster: Record<string, unknown> = {
    name: input.name,
    type: "EDS",
    eds_cluster_config: { service_name: input.serviceName ?? input.name, eds_config: adsConfigSource() },
    connect_timeout: duration(input.connectTimeoutMs ?? 5000),
    lb_policy: input.lbPolicy ?? "ROUND_ROBIN",
    ...(socket ? { transport_socket: socket } : {}),
    ...(input.http2 ? { typed_extension_protocol_options: http2ProtocolOptions() } : {}),
    ...(input.metadata ? { metadata: filterMetadata(input.metadata) } : {}),
    ...input.extra,
  };
  return encodeResource(TYPE_URL.cluster, input.name, cluster);
}

/** Any Cluster given in proto object form; the name is read from it. */
export function clusterFromObject(cluster: { name: string; [field: string]: unknown }): Resource {
  return encodeResource(TYPE_URL.cluster, cluster.name, cluster);
}
