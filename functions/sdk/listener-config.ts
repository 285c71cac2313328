// A hop's Listener (DESIGN.md "Hop resources") compiled into what the host runs: the address to bind,
// whether a PROXY v2 header comes first and from which peers, the filters (each config parsed by the
// function registered for its type URL), and the tcp_proxy cluster. Everything the host cannot apply
// is a field error with its path, so the NACK says exactly what to fix. Never throws.
import { isIP } from "node:net";
import { type Json, structToJson } from "../../xds/wire/struct.js";
import {
  CONNECT_TYPE_URL,
  type ConnectTerminationPlan,
  compileConnectManager,
  compileTunnelingConfig,
  type TunnelingPlan,
} from "./connect-config.js";
import type { FunctionRegistry, PreparedFilter } from "./define-function.js";
import { PrefixSet } from "./prefix-set.js";
import { durationMs, isObject, present, wrappedValue } from "./proto-json.js";
import {
  compileDownstreamTlsContext,
  TLS_TRANSPORT_SOCKET,
  TLS_TYPE_URL,
  type TlsContextPlan,
} from "./tls-config.js";
import { ErrorList, type FieldError, type Validated } from "./validated.js";

const PREFIX = "type.googleapis.com/";
export const HOST_TYPE_URL = {
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  typedStruct: `${PREFIX}xds.type.v3.TypedStruct`,
  proxyProtocolListener: `${PREFIX}envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol`,
  upstreamProxyProtocol: `${PREFIX}envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport`,
  rawBuffer: `${PREFIX}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
} as const;

export const HOST_FILTER_NAME = {
  tcpProxy: "envoy.filters.network.tcp_proxy",
  proxyProtocolListener: "envoy.filters.listener.proxy_protocol",
  upstreamProxyProtocol: "envoy.transport_sockets.upstream_proxy_protocol",
  rawBuffer: "envoy.transport_sockets.raw_buffer",
} as const;

export interface PlannedFilter {
  /** The filter's name in the Listener. */
  name: string;
  typeUrl: string;
  prepared: PreparedFilter;
  /** The hop this filter belongs to (differs per filter in a fused listener). */
  hop: number;
  index: number;
}

export interface ListenerPlan {
  name: string;
  address: string;
  port: number;
  chain: string;
  /** The hop the listener serves (a fused listener's first). */
  hop: number;
  /** Hops this listener runs: 1, or metadata `hops` for a fused listener. */
  hops: number;
  service: string;
  /** A PROXY v2 header must come first (envoy.filters.listener.proxy_protocol). */
  proxyProtocol: boolean;
  /** Peers allowed to connect (direct_source_prefix_ranges: the previous hop's instances); undefined: any. */
  trustedPeers: PrefixSet | undefined;
  /** Sources allowed after the PROXY header (source_prefix_ranges, as Envoy matches it); undefined: any. */
  sources: PrefixSet | undefined;
  filters: PlannedFilter[];
  cluster: string;
  statPrefix: string;
  idleTimeoutMs: number | undefined;
  /** tcp_proxy max_connect_attempts, when set. */
  maxConnectAttempts: number | undefined;
  /** tcp_proxy tunneling_config: each connection becomes an HTTP/2 CONNECT through the cluster's tunnel. */
  tunneling: TunnelingPlan | undefined;
  /** The filter chain's DownstreamTlsContext (mutual TLS); only with `connect`. */
  tls: TlsContextPlan | undefined;
  /** http_connection_manager terminating CONNECT (the tunnel's far end) instead of tcp_proxy. */
  connect: ConnectTerminationPlan | undefined;
}

/** Listener fields the host does not implement; set, they are refused rather than ignored. */
const UNSUPPORTED_LISTENER_FIELDS = [
  "api_listener",
  "default_filter_chain",
  "additional_addresses",
  "internal_listener",
  "udp_listener_config",
  "filter_chain_matcher",
];
const SUPPORTED_MATCH_FIELDS = new Set(["source_prefix_ranges", "direct_source_prefix_ranges"]);

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** A typed_config as the plugin sees it: its type URL and fields (a TypedStruct's value unpacked). */
export function typedConfigOf(tc: unknown): { typeUrl: string; raw: unknown; struct: boolean } | undefined {
  if (!isObject(tc)) return undefined;
  const at = tc["@type"];
  if (at === HOST_TYPE_URL.typedStruct) {
    return { typeUrl: str(tc.type_url), raw: structToJson(tc.value), struct: true };
  }
  if (typeof at === "string") {
    const { "@type": _, ...fields } = tc;
    return { typeUrl: at, raw: fields, struct: false };
  }
  // An Any of a type this process has no proto for arrives undecoded: {type_url, value: bytes}.
  if (typeof tc.type_url === "string") return { typeUrl: tc.type_url, raw: tc, struct: false };
  return undefined;
}

/** The catena metadata of a Listener: {chain, hop, service}. */
function catenaMetadata(l: Record<string, unknown>): { [key: string]: Json } {
  const md = isObject(l.metadata) ? l.metadata : undefined;
  const fm = md && isObject(md.filter_metadata) ? md.filter_metadata : undefined;
  return fm && isObject(fm.catena) ? structToJson(fm.catena) : {};
}

/** "C/2" or "C/2/rbac": a stat_prefix naming the filter's hop in chain C. */
function hopOfStatPrefix(raw: unknown, chain: string): number | undefined {
  const sp = isObject(raw) ? raw.stat_prefix : undefined;
  if (typeof sp !== "string" || !sp.startsWith(`${chain}/`)) return undefined;
  const m = /^(\d+)(\/|$)/.exec(sp.slice(chain.length + 1));
  return m ? Number(m[1]) : undefined;
}

function cidrRanges(v: unknown, path: string, set: PrefixSet, errors: ErrorList): void {
  list(v).forEach((r, i) => {
    const at = `${path}[${i}]`;
    if (!isObject(r) || typeof r.address_prefix !== "string") {
      errors.add(`${at}.address_prefix`, "must be set");
      return;
    }
    // An unset prefix_len (or a wrapper whose value is the default) is 0, as in Envoy: the whole
    // family. Catena writes /32 and /128 explicitly.
    const w = wrappedValue(r.prefix_len);
    const len = typeof w === "number" ? w : 0;
    if (!set.add(r.address_prefix, len)) errors.add(at, `${r.address_prefix}/${len} is not a CIDR range`);
  });
}

export function compileListener(json: unknown, registry: FunctionRegistry): Validated<ListenerPlan> {
  const errors = new ErrorList();
  const l = isObject(json) ? json : {};
  const name = str(l.name);
  const md = catenaMetadata(l);
  const chain = typeof md.chain === "string" && md.chain !== "" ? md.chain : name;
  const hop = typeof md.hop === "number" && Number.isInteger(md.hop) && md.hop >= 0 ? md.hop : 0;
  const plan: ListenerPlan = {
    name,
    address: "",
    port: 0,
    chain,
    hop,
    hops: typeof md.hops === "number" && Number.isInteger(md.hops) && md.hops > 0 ? md.hops : 1,
    service: typeof md.service === "string" ? md.service : "",
    proxyProtocol: false,
    trustedPeers: undefined,
    sources: undefined,
    filters: [],
    cluster: "",
    statPrefix: name,
    idleTimeoutMs: undefined,
    maxConnectAttempts: undefined,
    tunneling: undefined,
    tls: undefined,
    connect: undefined,
  };
  for (const f of UNSUPPORTED_LISTENER_FIELDS)
    if (present(l, f)) errors.add(f, "not supported by the Catena function host");

  // address
  const sa = isObject(l.address) && isObject(l.address.socket_address) ? l.address.socket_address : undefined;
  if (!sa) errors.add("address.socket_address", "must be set (only TCP socket addresses are supported)");
  else {
    plan.address = str(sa.address);
    if (isIP(plan.address) === 0)
      errors.add("address.socket_address.address", `"${plan.address}" is not an IP address`);
    if (sa.protocol !== undefined && sa.protocol !== "TCP")
      errors.add("address.socket_address.protocol", "only TCP is supported");
    const port = Number(sa.port_value ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      errors.add("address.socket_address.port_value", "must be a port 0-65535");
    else plan.port = port;
    if (present(sa, "named_port")) errors.add("address.socket_address.named_port", "not supported");
  }

  // listener filters
  for (const [i, lf] of list(l.listener_filters).entries()) {
    const at = `listener_filters[${i}]`;
    if (!isObject(lf)) {
      errors.add(at, "must be an object");
      continue;
    }
    const tc = typedConfigOf(lf.typed_config);
    const isProxy =
      tc?.typeUrl === HOST_TYPE_URL.proxyProtocolListener ||
      (tc === undefined && lf.name === HOST_FILTER_NAME.proxyProtocolListener);
    if (!isProxy) {
      errors.add(
        at,
        `${tc?.typeUrl ?? str(lf.name)} is not supported (only ${HOST_FILTER_NAME.proxyProtocolListener})`,
      );
      continue;
    }
    const cfg = isObject(tc?.raw) ? tc.raw : {};
    if (cfg.allow_requests_without_proxy_protocol === true)
      errors.add(
        `${at}.typed_config.allow_requests_without_proxy_protocol`,
        "not supported: a header is required",
      );
    if (list(cfg.disallowed_versions).some((v) => v === "V2" || v === 1))
      errors.add(
        `${at}.typed_config.disallowed_versions`,
        "Catena speaks PROXY v2 only; it cannot be disallowed",
      );
    plan.proxyProtocol = true;
  }

  // the filter chain
  const chains = list(l.filter_chains);
  if (chains.length !== 1)
    errors.add("filter_chains", `must hold exactly one filter chain, found ${chains.length}`);
  const fc = chains[0];
  if (isObject(fc)) {
    const match = isObject(fc.filter_chain_match) ? fc.filter_chain_match : undefined;
    if (match) {
      for (const k of Object.keys(match))
        if (!SUPPORTED_MATCH_FIELDS.has(k) && present(match, k))
          errors.add(`filter_chains[0].filter_chain_match.${k}`, "not supported (only source prefix ranges)");
      // As in Envoy: direct_source_prefix_ranges match the socket peer (Catena's previous hop),
      // source_prefix_ranges the source after listener filters (the client a PROXY header names).
      const peers = new PrefixSet();
      const sources = new PrefixSet();
      cidrRanges(
        match.direct_source_prefix_ranges,
        "filter_chains[0].filter_chain_match.direct_source_prefix_ranges",
        peers,
        errors,
      );
      cidrRanges(
        match.source_prefix_ranges,
        "filter_chains[0].filter_chain_match.source_prefix_ranges",
        sources,
        errors,
      );
      if (peers.size > 0) plan.trustedPeers = peers;
      if (sources.size > 0) plan.sources = sources;
    }
    if (isObject(fc.transport_socket)) {
      const ts = fc.transport_socket;
      const tc = typedConfigOf(ts.typed_config);
      const at = "filter_chains[0].transport_socket";
      if (
        tc?.typeUrl === TLS_TYPE_URL.downstreamTlsContext ||
        (tc === undefined && ts.name === TLS_TRANSPORT_SOCKET)
      ) {
        const t = compileDownstreamTlsContext(tc?.raw, `${at}.typed_config`);
        if (!t.ok) for (const e of t.errors) errors.add(e.path, e.message);
        else plan.tls = t.value;
      } else if (tc?.typeUrl !== HOST_TYPE_URL.rawBuffer && ts.name !== HOST_FILTER_NAME.rawBuffer)
        errors.add(at, `${tc?.typeUrl ?? str(ts.name)} is not supported (only ${TLS_TRANSPORT_SOCKET})`);
    }
    const filters = list(fc.filters);
    if (filters.length === 0)
      errors.add("filter_chains[0].filters", `must end in ${HOST_FILTER_NAME.tcpProxy}`);
    const lastTc = typedConfigOf(
      isObject(filters[filters.length - 1])
        ? (filters[filters.length - 1] as Record<string, unknown>).typed_config
        : undefined,
    );
    const terminatesConnect = lastTc?.typeUrl === CONNECT_TYPE_URL.httpConnectionManager;
    if (isObject(fc.transport_socket) && !terminatesConnect && plan.tls)
      errors.add(
        "filter_chains[0].transport_socket",
        "a TLS filter chain must hold one envoy.filters.network.http_connection_manager (the VPN tunnel's end)",
      );
    if (terminatesConnect) {
      const at = `filter_chains[0].filters[${filters.length - 1}]`;
      if (filters.length !== 1)
        errors.add("filter_chains[0].filters", "http_connection_manager must be the only filter");
      if (!isObject(fc.transport_socket))
        errors.add(
          "filter_chains[0].transport_socket",
          "must be a DownstreamTlsContext: tunnels are mutual TLS",
        );
      if (present(l, "listener_filters"))
        errors.add("listener_filters", "not supported on a tunnel listener");
      const m = compileConnectManager(lastTc?.raw, `${at}.typed_config`);
      if (!m.ok) for (const e of m.errors) errors.add(e.path, e.message);
      else {
        plan.connect = m.value;
        if (m.value.statPrefix) plan.statPrefix = m.value.statPrefix;
      }
      return errors.result(plan);
    }
    for (const [i, f] of filters.entries()) {
      const at = `filter_chains[0].filters[${i}]`;
      if (!isObject(f)) {
        errors.add(at, "must be an object");
        continue;
      }
      const tc = typedConfigOf(f.typed_config);
      if (!tc) {
        errors.add(`${at}.typed_config`, "must be set");
        continue;
      }
      const last = i === filters.length - 1;
      if (tc.typeUrl === HOST_TYPE_URL.tcpProxy) {
        if (!last) {
          errors.add(at, `${HOST_FILTER_NAME.tcpProxy} must be the last filter`);
          continue;
        }
        tcpProxy(tc.raw, `${at}.typed_config`, plan, errors);
        continue;
      }
      if (last) errors.add(at, `the last filter must be ${HOST_FILTER_NAME.tcpProxy}, found ${tc.typeUrl}`);
      const prepared = registry.prepare(tc.typeUrl, tc.raw);
      if (!prepared.ok) {
        const base = tc.struct ? `${at}.typed_config.value` : `${at}.typed_config`;
        for (const e of prepared.errors)
          errors.add(e.path ? `${base}.${e.path}` : `${at}.typed_config`, e.message);
        continue;
      }
      plan.filters.push({
        name: str(f.name),
        typeUrl: tc.typeUrl,
        prepared: prepared.value,
        hop: hopOfStatPrefix(tc.raw, chain) ?? hop,
        index: plan.filters.length,
      });
    }
  }
  return errors.result(plan);
}

function tcpProxy(raw: unknown, at: string, plan: ListenerPlan, errors: ErrorList): void {
  const t = isObject(raw) ? raw : {};
  if (present(t, "weighted_clusters"))
    errors.add(`${at}.weighted_clusters`, "not supported (use one cluster)");
  if (present(t, "tunneling_config")) {
    const tc = compileTunnelingConfig(t.tunneling_config, `${at}.tunneling_config`);
    if (!tc.ok) for (const e of tc.errors) errors.add(e.path, e.message);
    else plan.tunneling = tc.value;
  }
  if (present(t, "on_demand")) errors.add(`${at}.on_demand`, "not supported");
  plan.cluster = str(t.cluster);
  if (!plan.cluster && !present(t, "weighted_clusters")) errors.add(`${at}.cluster`, "must be set");
  if (typeof t.stat_prefix === "string" && t.stat_prefix) plan.statPrefix = t.stat_prefix;
  if (present(t, "idle_timeout")) {
    const ms = durationMs(t.idle_timeout);
    if (ms === undefined || ms < 0) errors.add(`${at}.idle_timeout`, "must be a duration");
    else if (ms > 0) plan.idleTimeoutMs = ms;
  }
  if (present(t, "max_connect_attempts")) {
    const n = Number(wrappedValue(t.max_connect_attempts));
    if (!Number.isInteger(n) || n < 1) errors.add(`${at}.max_connect_attempts`, "must be at least 1");
    else plan.maxConnectAttempts = n;
  }
}

export type { FieldError };
