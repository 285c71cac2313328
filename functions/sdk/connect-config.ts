// The HTTP/2 CONNECT subset of Envoy the VPN hop uses (DESIGN.md "VPN hops, tunnels and secrets"):
// TcpProxy.tunneling_config on the initiating side, and on the terminating side an
// http_connection_manager (HTTP/2, allow_connect, upgrade CONNECT) whose inline route_config sends a
// CONNECT to the cluster of the virtual host whose domains match :authority (connect_matcher route,
// connect_config: the stream is terminated and its bytes relayed as TCP). Anything else is a field
// error with its path. Never throws.
import { isObject, rejectUnknown, wrappedValue } from "./proto-json.js";
import type { SanMatcher } from "./tls-config.js";
import { ErrorList, type Validated } from "./validated.js";

const PREFIX = "type.googleapis.com/";
export const CONNECT_TYPE_URL = {
  httpConnectionManager: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  rbac: `${PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
  httpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
} as const;

export const CONNECT_FILTER_NAME = {
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  router: "envoy.filters.http.router",
  rbac: "envoy.filters.http.rbac",
  httpProtocolOptions: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
} as const;

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

// ---- initiating side: tunneling_config ----

/** The addresses a header value may name, per accepted connection. */
export interface ConnectionAddresses {
  /** The original client (the PROXY v2 source when one came). */
  source: { address: string; port: number };
  destination: { address: string; port: number };
}

type Piece = string | ((c: ConnectionAddresses) => string);

function hostPort(a: { address: string; port: number }): string {
  return a.address.includes(":") ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

const COMMANDS: Record<string, (c: ConnectionAddresses) => string> = {
  DOWNSTREAM_REMOTE_ADDRESS: (c) => hostPort(c.source),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => c.source.address,
  DOWNSTREAM_LOCAL_ADDRESS: (c) => hostPort(c.destination),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => c.destination.address,
};

/** A header value with Envoy substitution commands, compiled once; formatting is a join per connection. */
export interface HeaderTemplate {
  key: string;
  pieces: Piece[];
}

export interface TunnelingPlan {
  /** :authority of every CONNECT. */
  hostname: string;
  headers: HeaderTemplate[];
}

function compileValue(value: string, at: string, errors: ErrorList): Piece[] {
  const pieces: Piece[] = [];
  const re = /%([A-Z_]+)%/g;
  let last = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    if (m.index > last) pieces.push(value.slice(last, m.index));
    const cmd = COMMANDS[m[1] as string];
    if (!cmd)
      errors.add(
        at,
        `%${m[1]}% is not supported (${Object.keys(COMMANDS)
          .map((k) => `%${k}%`)
          .join(", ")})`,
      );
    else pieces.push(cmd);
    last = m.index + m[0].length;
  }
  if (last < value.length) pieces.push(value.slice(last));
  if (value.slice(last).includes("%") || pieces.some((p) => typeof p === "string" && p.includes("%")))
    errors.add(at, "a lone % is not supported");
  return pieces;
}

// HTTP/2 forbids connection-specific headers; pseudo-headers are the host's to set.
const FORBIDDEN_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "host",
]);
const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

export function compileTunnelingConfig(raw: unknown, at: string): Validated<TunnelingPlan> {
  const errors = new ErrorList();
  const t = isObject(raw) ? raw : {};
  rejectUnknown(t, new Set(["hostname", "headers_to_add"]), at, errors);
  const plan: TunnelingPlan = { hostname: typeof t.hostname === "string" ? t.hostname : "", headers: [] };
  if (plan.hostname === "") errors.add(`${at}.hostname`, "must be set");
  else if (plan.hostname.includes("%"))
    errors.add(`${at}.hostname`, "substitution commands are not supported here");
  list(t.headers_to_add).forEach((h, i) => {
    const hAt = `${at}.headers_to_add[${i}]`;
    if (!isObject(h) || !isObject(h.header)) {
      errors.add(`${hAt}.header`, "must be set");
      return;
    }
    rejectUnknown(h, new Set(["header", "append_action"]), hAt, errors);
    // APPEND_IF_EXISTS_OR_ADD is the zero value; each header is added once per CONNECT anyway.
    if (
      h.append_action !== undefined &&
      h.append_action !== "APPEND_IF_EXISTS_OR_ADD" &&
      h.append_action !== "OVERWRITE_IF_EXISTS_OR_ADD"
    )
      errors.add(`${hAt}.append_action`, "only APPEND_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS_OR_ADD");
    const hv = h.header;
    rejectUnknown(hv, new Set(["key", "value"]), `${hAt}.header`, errors);
    const key = typeof hv.key === "string" ? hv.key.toLowerCase() : "";
    if (!TOKEN.test(key) || FORBIDDEN_HEADERS.has(key)) {
      errors.add(`${hAt}.header.key`, `"${key}" cannot be sent on an HTTP/2 CONNECT`);
      return;
    }
    const value = typeof hv.value === "string" ? hv.value : "";
    plan.headers.push({ key, pieces: compileValue(value, `${hAt}.header.value`, errors) });
  });
  return errors.result(plan);
}

/** The headers for one connection (one object per connection; nothing per byte). */
export function formatTunnelHeaders(
  plan: TunnelingPlan,
  c: ConnectionAddresses,
): Record<string, string> | undefined {
  if (plan.headers.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const h of plan.headers) {
    let v = "";
    for (const p of h.pieces) v += typeof p === "string" ? p : p(c);
    out[h.key] = v;
  }
  return out;
}

// ---- terminating side: http_connection_manager ----

export interface ConnectRoute {
  /** The virtual host's name: `C/h` for a tunnelled hop. */
  vhost: string;
  cluster: string;
  /** For the PROXY v2 header to the next hop: chain C and hop h+1 (from the vhost name `C/h`). */
  chain: string | undefined;
  nextHop: number | undefined;
}

/** One ALLOW policy of the RBAC HTTP filter: these authorities (undefined: any) by these peers (undefined: any). */
export interface ConnectPolicy {
  name: string;
  authorities: Set<string> | undefined;
  principals: SanMatcher[] | undefined;
}

export interface ConnectTerminationPlan {
  /** The RBAC HTTP filter's ALLOW policies; undefined without the filter (every admitted peer may CONNECT). */
  policies?: ConnectPolicy[];
  statPrefix: string;
  routeConfigName: string;
  /** Lower-cased exact domains. */
  exact: Map<string, ConnectRoute>;
  /** Wildcard domains in order: `*`, `*suffix`, `prefix*`. */
  wildcards: { kind: "any" | "suffix" | "prefix"; value: string; route: ConnectRoute }[];
}

/** The route for a CONNECT's :authority, as Envoy matches domains (exact first, then the longest wildcard). */
export function matchAuthority(plan: ConnectTerminationPlan, authority: string): ConnectRoute | undefined {
  const a = authority.toLowerCase();
  const exact = plan.exact.get(a);
  if (exact) return exact;
  let best: { len: number; route: ConnectRoute } | undefined;
  for (const w of plan.wildcards) {
    const ok =
      w.kind === "any" ||
      (w.kind === "suffix" && a.endsWith(w.value) && a.length > w.value.length) ||
      (w.kind === "prefix" && a.startsWith(w.value) && a.length > w.value.length);
    if (ok && (!best || w.value.length > best.len)) best = { len: w.value.length, route: w.route };
  }
  return best?.route;
}

/** "C/h" → chain C, next hop h+1. */
function hopOfVhost(name: string): { chain: string | undefined; nextHop: number | undefined } {
  const slash = name.lastIndexOf("/");
  if (slash <= 0) return { chain: undefined, nextHop: undefined };
  const h = name.slice(slash + 1);
  if (!/^\d+$/.test(h)) return { chain: undefined, nextHop: undefined };
  return { chain: name.slice(0, slash), nextHop: Number(h) + 1 };
}

const HCM_FIELDS = new Set([
  "stat_prefix",
  "codec_type",
  "http2_protocol_options",
  "upgrade_configs",
  "route_config",
  "http_filters",
]);

export function compileConnectManager(raw: unknown, at: string): Validated<ConnectTerminationPlan> {
  const errors = new ErrorList();
  const m = isObject(raw) ? raw : {};
  const plan: ConnectTerminationPlan = {
    statPrefix: typeof m.stat_prefix === "string" ? m.stat_prefix : "",
    routeConfigName: "",
    exact: new Map(),
    wildcards: [],
  };
  rejectUnknown(m, HCM_FIELDS, at, errors);
  if (m.codec_type !== "HTTP2") errors.add(`${at}.codec_type`, "must be HTTP2");
  const h2o = isObject(m.http2_protocol_options) ? m.http2_protocol_options : {};
  rejectUnknown(h2o, new Set(["allow_connect"]), `${at}.http2_protocol_options`, errors);
  if (h2o.allow_connect !== true) errors.add(`${at}.http2_protocol_options.allow_connect`, "must be true");
  const ups = list(m.upgrade_configs);
  if (ups.length !== 1 || !isObject(ups[0]) || ups[0].upgrade_type !== "CONNECT")
    errors.add(`${at}.upgrade_configs`, 'must be [{upgrade_type: "CONNECT"}]');
  else rejectUnknown(ups[0], new Set(["upgrade_type"]), `${at}.upgrade_configs[0]`, errors);
  const filters = list(m.http_filters);
  const last = filters.length - 1;
  if (filters.length === 0 || filters.length > 2)
    errors.add(
      `${at}.http_filters`,
      "must be [envoy.filters.http.rbac (optional), envoy.filters.http.router]",
    );
  filters.forEach((f, i) => {
    const fAt = `${at}.http_filters[${i}]`;
    const tc = isObject(f) && isObject(f.typed_config) ? f.typed_config : undefined;
    const type = tc?.["@type"] ?? tc?.type_url;
    const isRouter =
      type === CONNECT_TYPE_URL.router ||
      (tc === undefined && isObject(f) && f.name === CONNECT_FILTER_NAME.router);
    if (i === last && isRouter) {
      if (tc) rejectUnknown(tc, new Set(["type_url", "value"]), `${fAt}.typed_config`, errors);
    } else if (i === 0 && i !== last && type === CONNECT_TYPE_URL.rbac && tc) {
      plan.policies = compileConnectRbac(tc, `${fAt}.typed_config`, errors);
    } else
      errors.add(
        fAt,
        `${String(type ?? (isObject(f) ? f.name : ""))} is not supported here (only ${CONNECT_FILTER_NAME.rbac} first, ${CONNECT_FILTER_NAME.router} last)`,
      );
  });

  const rcAt = `${at}.route_config`;
  if (!isObject(m.route_config)) {
    errors.add(rcAt, "must be set (inline; RDS is not supported)");
    return errors.result(plan);
  }
  const rc = m.route_config;
  rejectUnknown(rc, new Set(["name", "virtual_hosts"]), rcAt, errors);
  plan.routeConfigName = typeof rc.name === "string" ? rc.name : "";
  list(rc.virtual_hosts).forEach((vh, i) => {
    const vAt = `${rcAt}.virtual_hosts[${i}]`;
    if (!isObject(vh)) {
      errors.add(vAt, "must be an object");
      return;
    }
    rejectUnknown(vh, new Set(["name", "domains", "routes"]), vAt, errors);
    const name = typeof vh.name === "string" ? vh.name : "";
    const routes = list(vh.routes);
    if (routes.length !== 1) {
      errors.add(`${vAt}.routes`, `must hold exactly one connect_matcher route, found ${routes.length}`);
      return;
    }
    const r = routes[0];
    const rAt = `${vAt}.routes[0]`;
    if (!isObject(r)) {
      errors.add(rAt, "must be an object");
      return;
    }
    rejectUnknown(r, new Set(["match", "route", "name"]), rAt, errors);
    const match = isObject(r.match) ? r.match : {};
    rejectUnknown(match, new Set(["connect_matcher"]), `${rAt}.match`, errors);
    if (!isObject(match.connect_matcher)) errors.add(`${rAt}.match.connect_matcher`, "must be set");
    const action = isObject(r.route) ? r.route : {};
    rejectUnknown(action, new Set(["cluster", "upgrade_configs"]), `${rAt}.route`, errors);
    const cluster = typeof action.cluster === "string" ? action.cluster : "";
    if (cluster === "") errors.add(`${rAt}.route.cluster`, "must be set");
    const rups = list(action.upgrade_configs);
    const up = rups[0];
    if (rups.length !== 1 || !isObject(up) || up.upgrade_type !== "CONNECT" || !isObject(up.connect_config))
      errors.add(
        `${rAt}.route.upgrade_configs`,
        'must be [{upgrade_type: "CONNECT", connect_config: {}}] (the CONNECT is terminated here)',
      );
    else {
      rejectUnknown(
        up,
        new Set(["upgrade_type", "connect_config", "enabled"]),
        `${rAt}.route.upgrade_configs[0]`,
        errors,
      );
      if (up.enabled !== undefined && wrappedValue(up.enabled) !== true)
        errors.add(`${rAt}.route.upgrade_configs[0].enabled`, "must be true");
      rejectUnknown(up.connect_config, new Set(), `${rAt}.route.upgrade_configs[0].connect_config`, errors);
    }
    const route: ConnectRoute = { vhost: name, cluster, ...hopOfVhost(name) };
    const domains = list(vh.domains);
    if (domains.length === 0) errors.add(`${vAt}.domains`, "must name at least one domain");
    domains.forEach((d, j) => {
      const dAt = `${vAt}.domains[${j}]`;
      if (typeof d !== "string" || d === "") {
        errors.add(dAt, "must be a non-empty string");
        return;
      }
      const lower = d.toLowerCase();
      const stars = lower.split("*").length - 1;
      if (stars === 0) {
        if (plan.exact.has(lower)) errors.add(dAt, `"${d}" is already routed by another virtual host`);
        else plan.exact.set(lower, route);
      } else if (lower === "*") plan.wildcards.push({ kind: "any", value: "", route });
      else if (stars === 1 && lower.startsWith("*"))
        plan.wildcards.push({ kind: "suffix", value: lower.slice(1), route });
      else if (stars === 1 && lower.endsWith("*"))
        plan.wildcards.push({ kind: "prefix", value: lower.slice(0, -1), route });
      else errors.add(dAt, "a wildcard may only lead or trail");
    });
  });
  return errors.result(plan);
}

/** A Cluster's typed_extension_protocol_options: only HttpProtocolOptions{explicit_http_config: {http2_protocol_options: {}}}. */
export function compileHttpProtocolOptions(raw: unknown, at: string): Validated<{ http2: boolean }> {
  const errors = new ErrorList();
  const o = isObject(raw) ? raw : {};
  let http2 = false;
  for (const [k, v] of Object.entries(o)) {
    const kAt = `${at}["${k}"]`;
    const type = isObject(v) ? (v["@type"] ?? v.type_url) : undefined;
    if (k !== CONNECT_FILTER_NAME.httpProtocolOptions || type !== CONNECT_TYPE_URL.httpProtocolOptions) {
      errors.add(kAt, `not supported (only ${CONNECT_FILTER_NAME.httpProtocolOptions})`);
      continue;
    }
    const hpo = v as Record<string, unknown>;
    rejectUnknown(hpo, new Set(["explicit_http_config"]), kAt, errors);
    const ehc = isObject(hpo.explicit_http_config) ? hpo.explicit_http_config : undefined;
    if (!ehc || !isObject(ehc.http2_protocol_options)) {
      errors.add(`${kAt}.explicit_http_config.http2_protocol_options`, "must be set (tunnels are HTTP/2)");
      continue;
    }
    rejectUnknown(ehc, new Set(["http2_protocol_options"]), `${kAt}.explicit_http_config`, errors);
    rejectUnknown(
      ehc.http2_protocol_options,
      new Set(),
      `${kAt}.explicit_http_config.http2_protocol_options`,
      errors,
    );
    http2 = true;
  }
  return errors.result({ http2 });
}

/** Whether a peer (its URI SANs) may CONNECT to `authority` under the plan's RBAC policies. */
export function authorized(
  plan: ConnectTerminationPlan,
  authority: string,
  peerUris: readonly string[],
): boolean {
  if (!plan.policies) return true;
  const a = authority.toLowerCase();
  for (const p of plan.policies) {
    if (p.authorities && !p.authorities.has(a)) continue;
    if (!p.principals) return true;
    for (const u of peerUris)
      for (const m of p.principals)
        if (m.kind === "prefix" ? u.startsWith(m.value) : u === m.value) return true;
  }
  return false;
}

/**
 * The RBAC HTTP filter as Catena emits it for tunnel routes (an Istio AuthorizationPolicy's shape):
 * action ALLOW; per policy, permissions on `:authority` (exact, possibly in or_rules) or any, and
 * principals `authenticated.principal_name` (exact or prefix) or any.
 */
function compileConnectRbac(tc: Record<string, unknown>, at: string, errors: ErrorList): ConnectPolicy[] {
  rejectUnknown(tc, new Set(["rules"]), at, errors);
  const rules = isObject(tc.rules) ? tc.rules : undefined;
  if (!rules) {
    errors.add(`${at}.rules`, "must be set");
    return [];
  }
  rejectUnknown(rules, new Set(["action", "policies"]), `${at}.rules`, errors);
  if (rules.action !== undefined && rules.action !== "ALLOW" && rules.action !== 0)
    errors.add(`${at}.rules.action`, "only ALLOW is supported");
  const out: ConnectPolicy[] = [];
  const policies = isObject(rules.policies) ? rules.policies : {};
  for (const name of Object.keys(policies).sort()) {
    const pAt = `${at}.rules.policies["${name}"]`;
    const p = policies[name];
    if (!isObject(p)) {
      errors.add(pAt, "must be an object");
      continue;
    }
    rejectUnknown(p, new Set(["permissions", "principals"]), pAt, errors);
    let authorities: Set<string> | undefined = new Set();
    const addPermission = (perm: unknown, permAt: string): void => {
      if (!isObject(perm)) {
        errors.add(permAt, "must be an object");
      } else if (perm.any === true) {
        authorities = undefined;
      } else if (isObject(perm.or_rules)) {
        for (const [k, r] of list(perm.or_rules.rules).entries())
          addPermission(r, `${permAt}.or_rules.rules[${k}]`);
      } else {
        const header = isObject(perm.header) ? perm.header : undefined;
        const sm = header && isObject(header.string_match) ? header.string_match : undefined;
        if (header?.name === ":authority" && typeof sm?.exact === "string")
          authorities?.add(sm.exact.toLowerCase());
        else
          errors.add(permAt, "only any, or_rules, or header :authority with string_match.exact is supported");
      }
    };
    for (const [k, perm] of list(p.permissions).entries()) addPermission(perm, `${pAt}.permissions[${k}]`);
    let principals: SanMatcher[] | undefined = [];
    list(p.principals).forEach((pr, k) => {
      const prAt = `${pAt}.principals[${k}]`;
      if (isObject(pr) && pr.any === true) {
        principals = undefined;
        return;
      }
      const auth = isObject(pr) && isObject(pr.authenticated) ? pr.authenticated : undefined;
      const pn = auth && isObject(auth.principal_name) ? auth.principal_name : undefined;
      if (typeof pn?.prefix === "string") principals?.push({ kind: "prefix", value: pn.prefix });
      else if (typeof pn?.exact === "string") principals?.push({ kind: "exact", value: pn.exact });
      else errors.add(prAt, "only any, or authenticated.principal_name (exact or prefix) is supported");
    });
    out.push({ name, authorities, principals });
  }
  return out;
}
