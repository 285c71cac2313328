// Listeners Catena emits: a hop's TCP listener whose filter chain ends in tcp_proxy.
import { encodeResource, type Resource } from "../resource.js";
import { FILTER_NAME, TYPE_URL } from "../type-urls.js";
import type { Json } from "../wire/struct.js";
import {
  cidrRange,
  duration,
  filterMetadata,
  socketAddress,
  type TypedConfig,
  typedConfig,
} from "./typed-config.js";

export interface NetworkFilter {
  name: string;
  typedConfig: TypedConfig;
}

export function networkFilter(name: string, config: TypedConfig): NetworkFilter {
  return { name, typedConfig: config };
}

export interface TcpProxyInput {
  cluster: string;
  statPrefix?: string;
  idleTimeoutMs?: number;
  /** Tunnel the TCP stream over HTTP/2 CONNECT to this authority (the VPN hop). */
  tunnelingHostname?: string;
  /** Request headers the tunnel's CONNECT carries; values may use Envoy's command operators. */
  tunnelingHeaders?: Record<string, string>;
}

export function tcpProxyFilter(input: TcpProxyInput): NetworkFilter {
  const fields: Record<string, unknown> = {
    stat_prefix: input.statPrefix ?? input.cluster,
    cluster: input.cluster,
  };
  if (input.idleTimeoutMs !== undefined) fields.idle_timeout = duration(input.idleTimeoutMs);
  if (input.tunnelingHostname) {
    const headers = Object.entries(input.tunnelingHeaders ?? {}).map(([key, value]) => ({
      header: { key, value },
    }));
    fields.tunneling_config = {
      hostname: input.tunnelingHostname,
      ...(headers.length > 0 ? { headers_to_add: headers } : {}),
    };
  }
  return networkFilter(FILTER_NAME.tcpProxy, typedConfig(TYPE_URL.tcpProxy, fields));
}

export interface TcpProxyListenerInput {
  name: string;
  address: string;
  port: number;
  /** Network filters that run before tcp_proxy, in order (rbac, local_ratelimit, connection_limit...). */
  filters?: NetworkFilter[];
  tcpProxy: TcpProxyInput;
  /** Listener filters (e.g. envoy.filters.listener.proxy_protocol), as name + typed config. */
  listenerFilters?: NetworkFilter[];
  /** The filter chain's match; a connection that matches no chain is closed. */
  filterChainMatch?: FilterChainMatchInput;
  /** Listener metadata: filter_metadata per namespace. */
  metadata?: Record<string, { [key: string]: Json }>;
  /** Raw Listener fields (proto names) merged over what the builder sets. */
  extra?: Record<string, unknown>;
}

export interface CidrInput {
  address: string;
  /** Defaults to the whole address (/32 or /128). */
  prefixLen?: number;
}

export interface FilterChainMatchInput {
  /** The connection's source after listener filters (the PROXY header's source when one was read). */
  sourcePrefixRanges?: CidrInput[];
  /** The directly connected peer's address, whatever a PROXY header says. */
  directSourcePrefixRanges?: CidrInput[];
}

function filterChainMatchObject(m: FilterChainMatchInput): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ranges = (list: CidrInput[]) => list.map((c) => cidrRange(c.address, c.prefixLen));
  if (m.sourcePrefixRanges) out.source_prefix_ranges = ranges(m.sourcePrefixRanges);
  if (m.directSourcePrefixRanges) out.direct_source_prefix_ranges = ranges(m.directSourcePrefixRanges);
  return out;
}

/** envoy.filters.listener.proxy_protocol: reads a PROXY v1/v2 header and takes its addresses. */
export function proxyProtocolListenerFilter(): NetworkFilter {
  return networkFilter(FILTER_NAME.listenerProxyProtocol, typedConfig(TYPE_URL.listenerProxyProtocol));
}

function filterObject(f: NetworkFilter): Record<string, unknown> {
  return { name: f.name, typed_config: f.typedConfig };
}

export function tcpProxyListener(input: TcpProxyListenerInput): Resource {
  const filters = [...(input.filters ?? []), tcpProxyFilter(input.tcpProxy)].map(filterObject);
  const listener: Record<string, unknown> = {
    name: input.name,
    address: socketAddress(input.address, input.port),
    filter_chains: [
      {
        ...(input.filterChainMatch
          ? { filter_chain_match: filterChainMatchObject(input.filterChainMatch) }
          : {}),
        filters,
      },
    ],
    ...(input.listenerFilters ? { listener_filters: input.listenerFilters.map(filterObject) } : {}),
    ...(input.metadata ? { metadata: filterMetadata(input.metadata) } : {}),
    ...input.extra,
  };
  return encodeResource(TYPE_URL.listener, input.name, listener);
}

/** Any Listener given in proto object form; the name is read from it. */
export function listenerFromObject(listener: { name: string; [field: string]: unknown }): Resource {
  return encodeResource(TYPE_URL.listener, listener.name, listener);
}

export interface ConnectRoute {
  /** The virtual host's name. */
  name: string;
  /** `:authority` values it answers. */
  domains: readonly string[];
  /** Where the tunnelled stream goes. */
  cluster: string;
  /**
   * Peers (URI SAN prefixes, SPIFFE IDs) that may open this route; any peer the TLS context admits
   * when no route names any. Becomes an RBAC HTTP filter, as an Istio AuthorizationPolicy would.
   */
  principals?: readonly string[];
}

export interface ConnectTerminatorInput {
  name: string;
  address: string;
  port: number;
  /** The filter chain's `transport_socket` (downstreamTlsSocket). */
  transportSocket?: Record<string, unknown>;
  routes: readonly ConnectRoute[];
  metadata?: Record<string, { [key: string]: Json }>;
}

/**
 * A listener that terminates HTTP/2 CONNECT (Envoy's "terminating CONNECT"): an
 * HttpConnectionManager whose routes send each tunnelled stream, by authority, to a TCP cluster.
 */
export function connectTerminatorListener(input: ConnectTerminatorInput): Resource {
  const connect = { upgrade_type: "CONNECT" };
  const hcm = typedConfig(TYPE_URL.httpConnectionManager, {
    stat_prefix: input.name,
    codec_type: "HTTP2",
    http2_protocol_options: { allow_connect: true },
    upgrade_configs: [connect],
    route_config: {
      name: input.name,
      virtual_hosts: input.routes.map((r) => ({
        name: r.name,
        domains: [...r.domains],
        routes: [
          {
            match: { connect_matcher: {} },
            route: { cluster: r.cluster, upgrade_configs: [{ ...connect, connect_config: {} }] },
          },
        ],
      })),
    },
    http_filters: [
      ...(input.routes.some((r) => r.principals?.length) ? [routeRbacFilter(input.routes)] : []),
      { name: FILTER_NAME.router, typed_config: typedConfig(TYPE_URL.router) },
    ],
  });
  const listener: Record<string, unknown> = {
    name: input.name,
    address: socketAddress(input.address, input.port),
    filter_chains: [
      {
        ...(input.transportSocket ? { transport_socket: input.transportSocket } : {}),
        filters: [{ name: FILTER_NAME.httpConnectionManager, typed_config: hcm }],
      },
    ],
    ...(input.metadata ? { metadata: filterMetadata(input.metadata) } : {}),
  };
  return encodeResource(TYPE_URL.listener, input.name, listener);
}

/** One ALLOW policy per route: its authorities, opened by its principals only. */
function routeRbacFilter(routes: readonly ConnectRoute[]): Record<string, unknown> {
  const policies: Record<string, unknown> = {};
  for (const r of routes) {
    const authorities = r.domains.map((d) => ({
      header: { name: ":authority", string_match: { exact: d } },
    }));
    const principals = (r.principals ?? []).map((prefix) => ({
      authenticated: { principal_name: { prefix } },
    }));
    policies[r.name] = {
      permissions: authorities.length === 1 ? authorities : [{ or_rules: { rules: authorities } }],
      principals: principals.length > 0 ? principals : [{ any: true }],
    };
  }
  return {
    name: FILTER_NAME.httpRbac,
    typed_config: typedConfig(TYPE_URL.httpRbac, { rules: { action: "ALLOW", policies } }),
  };
}
