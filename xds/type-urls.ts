// Type URLs as constants (go-control-plane's resource.go): every xds/ module names types through these.
const PREFIX = "type.googleapis.com/";

export const TYPE_URL = {
  listener: `${PREFIX}envoy.config.listener.v3.Listener`,
  cluster: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  endpoint: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  route: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  secret: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  networkRbac: `${PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`,
  localRateLimit: `${PREFIX}envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit`,
  connectionLimit: `${PREFIX}envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit`,
  httpConnectionManager: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  httpRbac: `${PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
  typedStruct: `${PREFIX}xds.type.v3.TypedStruct`,
  upstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  downstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  listenerProxyProtocol: `${PREFIX}envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol`,
  upstreamProxyProtocol: `${PREFIX}envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`,
  rawBuffer: `${PREFIX}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
  httpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
} as const;

export type TypeUrlName = keyof typeof TYPE_URL;

/** Well-known extension names Envoy uses for the filters above. */
export const FILTER_NAME = {
  tcpProxy: "envoy.filters.network.tcp_proxy",
  networkRbac: "envoy.filters.network.rbac",
  localRateLimit: "envoy.filters.network.local_ratelimit",
  connectionLimit: "envoy.filters.network.connection_limit",
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  router: "envoy.filters.http.router",
  httpRbac: "envoy.filters.http.rbac",
  tlsTransportSocket: "envoy.transport_sockets.tls",
  listenerProxyProtocol: "envoy.filters.listener.proxy_protocol",
  upstreamProxyProtocol: "envoy.transport_sockets.upstream_proxy_protocol",
  rawBuffer: "envoy.transport_sockets.raw_buffer",
  httpProtocolOptions: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
} as const;

/**
 * Order of types in one ADS push, for make-before-break: clusters before the endpoints that fill
 * them, secrets before the listeners that use them, listeners before their routes. Removals go in
 * the reverse order, after every addition (xds-protocol "Eventual consistency considerations").
 */
export const PUSH_ORDER: readonly string[] = [
  TYPE_URL.cluster,
  TYPE_URL.endpoint,
  TYPE_URL.secret,
  TYPE_URL.listener,
  TYPE_URL.route,
];

/** Types whose SotW responses carry the full state: a name left out is a deletion. */
export const FULL_STATE_TYPES: ReadonlySet<string> = new Set([TYPE_URL.listener, TYPE_URL.cluster]);

/** The five discovery types the server answers unless told otherwise. */
export const DISCOVERY_TYPES: readonly string[] = PUSH_ORDER;

/** "type.googleapis.com/a.b.C" → "a.b.C" (the protobuf message name). */
export function messageNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf("/");
  return slash < 0 ? typeUrl : typeUrl.slice(slash + 1);
}

/** Sorts type URLs by PUSH_ORDER; unknown types after, alphabetically. */
export function pushRank(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i < 0 ? PUSH_ORDER.length : i;
}

export function comparePushOrder(a: string, b: string): number {
  return pushRank(a) - pushRank(b) || (a < b ? -1 : a > b ? 1 : 0);
}
