// The data path of one ServiceChain in the Envoy dialect: for every function instance that runs
// one of its hops, the Listener, Cluster and ClusterLoadAssignment it must hold. The contract with
// the function host is docs/design.md, "Hop resources: what a function instance receives".
import { isIPv6 } from "node:net";
import {
  CATENA_FILTER_NAME,
  CATENA_TYPE_URL,
  loadCatenaProtos,
  pluginFilterName,
  pluginTypeUrl,
} from "../../../proto/catena/v1/protos.js";
import {
  type ConnectRoute,
  clusterLoadAssignment,
  duration,
  edsCluster,
  FILTER_NAME,
  type Json,
  type LbPolicy,
  type NetworkFilter,
  networkFilter,
  proxyProtocolListenerFilter,
  type Resource,
  TYPE_URL,
  tcpProxyListener,
  typedConfig,
  typedStruct,
} from "../../../xds/index.js";
import {
  applyHopConfigDefaults,
  effectiveHopConfig,
  type FirewallConfig,
  type LoadBalancerConfig,
  type QosConfig,
  type ServiceChainSpec,
  type ServiceFunctionSpec,
  type ServiceSpec,
  type VpnConfig,
} from "../model/index.js";
import type { Kind, StoredResource } from "../model/resource.js";
import type { FunctionInstance } from "../registry/instances.js";
import { policyFilters, type ServicePolicy } from "./policy.js";
import {
  DEFAULT_TRUST_DOMAIN,
  DEFAULT_TUNNEL_PORT,
  DOWNSTREAM_HEADER,
  spiffePrefix,
  tunnelClusterResources,
} from "./vpn-resources.js";

/** One hop as it runs: its ServiceFunction, that function's type, and the effective config. */
export interface HopInput {
  function: string;
  type: string;
  /** The ServiceFunction's config under the hop's own, with the type's declared defaults. */
  config: Record<string, unknown>;
}

export interface UpstreamEndpoint {
  address: string;
  port: number;
  weight: number;
}

export interface ChainInput {
  name: string;
  service: string;
  port: number;
  placement: "separate" | "fused";
  hops: HopInput[];
  /** The Service's `proxyProtocol: v2`: the last hop opens connections to it with a PROXY v2 header. */
  serviceProxyProtocol: boolean;
  /** The Service's own endpoints (never the chain's ingress). */
  endpoints: UpstreamEndpoint[];
  /** Connected instances with an address, per ServiceFunction, ordered by id. */
  instances: Record<string, { id: string; address: string }[]>;
  /** NetworkPolicy RBAC for the chain's first firewall hop (policy.ts), when a policy concerns the Service. */
  policy?: ServicePolicy;
  /** SPIFFE trust domain of the mesh CA (vpn hops name certificates and peers by it). */
  trustDomain?: string;
}

/** Where a listener of the chain runs: one per hop, or one for the whole chain when fused. */
export interface ChainStage {
  /** The listener's name, `C/h` or `C/fused`; its cluster and assignment are `<name>/next`. */
  name: string;
  /** Hop indexes whose filters the listener holds. */
  hops: number[];
  function: string;
  /** Ids of the instances running the stage. */
  instances: string[];
  /** Why the stage's instances get nothing yet (no previous hop to accept connections from). */
  withheld?: string;
}

export interface ChainProblem {
  reason: string;
  message: string;
}

/**
 * Where a vpn hop's tunnel comes out: the peer's instances answer CONNECT for `route` on `port`
 * (one terminating listener per instance and port, merged across chains by the compiler).
 */
export interface TunnelExit {
  peer: string;
  port: number;
  route: ConnectRoute;
  /** The ServiceFunction allowed to open these tunnels (the hop's own). */
  from: string;
  /** Peer instances that terminate it. */
  instances: { id: string; address: string }[];
  /** What each of them holds for it besides the listener: the exit's cluster and assignment. */
  resources: Resource[];
}

export interface ChainResources {
  stages: ChainStage[];
  /** Per instance id, what it must hold for this chain. */
  byInstance: Map<string, Resource[]>;
  problems: ChainProblem[];
  tunnels: TunnelExit[];
}

export type ResolvedChain = { ok: true; input: ChainInput } | ({ ok: false } & ChainProblem);

type Lookup = (kind: Kind, name: string) => StoredResource | undefined;

/**
 * Gathers what a chain compiles from. `endpoints` gives the Service's own endpoints and
 * `instances` a function's connected instances; instances without an address cannot bind and
 * are left out.
 */
export function resolveChain(
  chain: StoredResource,
  get: Lookup,
  endpoints: (service: StoredResource) => UpstreamEndpoint[],
  instances: (fn: string) => readonly FunctionInstance[],
  policy?: (
    service: StoredResource,
    port: number,
    destinations: readonly string[],
  ) => ServicePolicy | undefined,
): ResolvedChain {
  const spec = chain.spec as ServiceChainSpec;
  const service = get("Service", spec.service);
  if (!service) {
    return { ok: false, reason: "InvalidReference", message: `Service ${spec.service} does not exist` };
  }
  const hops: HopInput[] = [];
  const byFunction: ChainInput["instances"] = {};
  for (const [i, hop] of spec.hops.entries()) {
    const fn = get("ServiceFunction", hop.function);
    if (!fn) {
      return {
        ok: false,
        reason: "InvalidReference",
        message: `hop ${i}: ServiceFunction ${hop.function} does not exist`,
      };
    }
    const fnSpec = fn.spec as ServiceFunctionSpec;
    if (fnSpec.type === "discovery") {
      // Discovery instances read the shared services snapshot: nothing would ever reach them.
      return {
        ok: false,
        reason: "UnsupportedHop",
        message: `hop ${i}: ServiceFunction ${hop.function} is of type discovery, which runs no hops`,
      };
    }
    if (fnSpec.type === "vpn" && spec.placement === "fused") {
      // A tunnel ends in another process: there is no fused listener for it to be part of.
      return {
        ok: false,
        reason: "UnsupportedHop",
        message: `hop ${i}: ServiceFunction ${hop.function} is of type vpn, which cannot be fused`,
      };
    }
    const config = withDefaults(fnSpec.type, effectiveHopConfig(fnSpec.config, hop.config));
    hops.push({ function: hop.function, type: fnSpec.type, config });
    const addressed = (fn: string) =>
      instances(fn).flatMap((inst) => (inst.address ? [{ id: inst.id, address: inst.address }] : []));
    byFunction[hop.function] ??= addressed(hop.function);
    const peer = fnSpec.type === "vpn" ? (config as VpnConfig).peer : undefined;
    if (peer) byFunction[peer] ??= addressed(peer);
  }
  const serviceSpec = service.spec as ServiceSpec;
  const upstream = endpoints(service).map((e) => ({ address: e.address, port: e.port, weight: e.weight }));
  const ingress = (byFunction[spec.hops[0]?.function ?? ""] ?? []).map((i) => i.address);
  const servicePolicy = policy?.(service, spec.ingress.port, [...ingress, ...upstream.map((e) => e.address)]);
  return {
    ok: true,
    input: {
      name: chain.metadata.name,
      service: spec.service,
      port: spec.ingress.port,
      placement: spec.placement ?? "separate",
      hops,
      serviceProxyProtocol: serviceSpec.proxyProtocol === "v2",
      endpoints: upstream,
      instances: byFunction,
      ...(servicePolicy && { policy: servicePolicy }),
    },
  };
}

/**
 * The type's declared defaults filled in. TypeBox's Value.Default throws on a union holding a
 * Type.Unsafe schema (the firewall's ports); the builders below default what they read, so the
 * merged config as written is a safe fallback.
 */
function withDefaults(type: string, config: Record<string, unknown>): Record<string, unknown> {
  try {
    return applyHopConfigDefaults(type, config);
  } catch {
    return config;
  }
}

/** Every instance's resources for the chain (docs/design.md, "Hop resources"). */
export function chainResources(input: ChainInput): ChainResources {
  const out: ChainResources = { stages: [], byInstance: new Map(), problems: [], tunnels: [] };
  const trustDomain = input.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const { name: chain, hops } = input;
  const last = hops.length - 1;
  const fused = input.placement === "fused";
  const stages: { name: string; hops: number[]; fn: string }[] = fused
    ? [{ name: `${chain}/fused`, hops: hops.map((_, i) => i), fn: hops[0]?.function ?? "" }]
    : hops.map((h, i) => ({ name: `${chain}/${i}`, hops: [i], fn: h.function }));

  const instancesOf = (fn: string) => input.instances[fn] ?? [];
  // A vpn hop's traffic leaves from its peer's instances: the next hop trusts those.
  const egressOf = (hop: number) => {
    const h = hops[hop];
    return instancesOf(h?.type === "vpn" ? (h.config as VpnConfig).peer : (h?.function ?? ""));
  };
  const policyHop = hops.findIndex((h) => h.type === "firewall");
  for (const [s, stage] of stages.entries()) {
    const first = stage.hops[0] ?? 0;
    const lastHop = stage.hops[stage.hops.length - 1] ?? 0;
    const runs = instancesOf(stage.fn);
    const previous = s > 0 ? egressOf(first - 1) : [];
    const info: ChainStage = { name: stage.name, hops: stage.hops, function: stage.fn, instances: [] };
    out.stages.push(info);
    // An empty source_prefix_ranges list matches any source: rather no listener than an open one.
    if (s > 0 && previous.length === 0) {
      info.withheld = `hop ${s - 1} (${stages[s - 1]?.fn}) has no instance to accept connections from`;
      if (hops[first - 1]?.type === "vpn") info.withheld += " (its tunnel comes out at its peer)";
      continue;
    }

    const toEndpoints = lastHop === last;
    const next = toEndpoints
      ? input.endpoints
      : instancesOf(hops[lastHop + 1]?.function ?? "").map((i) => ({
          address: i.address,
          port: input.port,
          weight: 1,
        }));
    const vpnHop = hops[first];
    const vpn = !fused && vpnHop?.type === "vpn" ? (vpnHop.config as VpnConfig) : undefined;
    // A vpn hop goes on from its peer's instances: what a hop sends to comes out of the tunnel.
    const clusterName = vpn ? `${stage.name}/exit` : `${stage.name}/next`;
    // Fused: the load balancer nearest the endpoints shapes the one cluster.
    const lb = [...stage.hops].reverse().find((h) => hops[h]?.type === "loadbalancer");
    const cluster = hopCluster({
      name: clusterName,
      proxyProtocol: !toEndpoints || input.serviceProxyProtocol,
      lb: lb === undefined ? undefined : (hops[lb]?.config as LoadBalancerConfig),
      // Between hops, an instance is routed to once connected, which may be just before its listener
      // is bound (scale-up): one retry on another instance hides that window.
      minConnectRetries: toEndpoints ? 0 : 1,
      // The exit has no listener metadata of its own to say which hop receives the PROXY header.
      ...(vpn ? { metadata: { chain, hop: lastHop + 1 } } : {}),
    });
    const assignment = clusterLoadAssignment({
      clusterName,
      endpoints: next.map((e) => ({ address: e.address, port: e.port, weight: e.weight })),
    });
    const filters = stage.hops.flatMap((h) => {
      const hop = hops[h];
      if (!hop) return [];
      // NetworkPolicy's RBAC follows the first firewall hop's own filters: a connection passes both.
      const policy = h === policyHop && input.policy ? policyFilters(input.policy, `${chain}/${h}`) : [];
      return [...hopFilters(hop, `${chain}/${h}`), ...policy];
    });
    const metadata: { [key: string]: Json } = { chain, hop: first, service: input.service };
    if (fused) metadata.hops = hops.length;

    let tunnel: { peer: string; port: number; authority: string } | undefined;
    if (vpn) {
      tunnel = {
        peer: vpn.peer,
        port: vpn.tunnelPort ?? DEFAULT_TUNNEL_PORT,
        authority: vpn.authority ?? `${input.service}:${input.port}`,
      };
      const exits = instancesOf(vpn.peer);
      out.tunnels.push({
        peer: vpn.peer,
        port: tunnel.port,
        // Only this hop's gateways may open this chain's route, whatever else may tunnel to the peer.
        route: {
          name: stage.name,
          domains: [tunnel.authority],
          cluster: clusterName,
          principals: [spiffePrefix(trustDomain, stage.fn)],
        },
        from: stage.fn,
        instances: exits,
        resources: [cluster, assignment],
      });
    }

    for (const inst of runs) {
      if (out.byInstance.has(inst.id)) {
        // The same function twice in a chain: one instance cannot bind the chain's port twice.
        out.problems.push({
          reason: "PortConflict",
          message: `${stage.name}: instance ${inst.id} already listens on port ${input.port} for an earlier hop of this chain`,
        });
        continue;
      }
      info.instances.push(inst.id);
      const listener = tcpProxyListener({
        name: stage.name,
        address: inst.address,
        port: input.port,
        filters,
        tcpProxy: {
          cluster: `${stage.name}/next`,
          statPrefix: stage.name,
          ...(tunnel && {
            tunnelingHostname: tunnel.authority,
            tunnelingHeaders: { [DOWNSTREAM_HEADER]: "%DOWNSTREAM_REMOTE_ADDRESS%" },
          }),
        },
        ...(first > 0
          ? {
              listenerFilters: [proxyProtocolListenerFilter()],
              // The directly connected peer, not the PROXY header's source (Envoy's source_prefix_ranges).
              filterChainMatch: {
                directSourcePrefixRanges: previous.map((p) => ({
                  address: p.address,
                  prefixLen: isIPv6(p.address) ? 128 : 32,
                })),
              },
            }
          : {}),
        metadata: { catena: metadata },
      });
      out.byInstance.set(
        inst.id,
        tunnel
          ? [
              listener,
              ...tunnelClusterResources({
                name: `${stage.name}/next`,
                trustDomain,
                fn: stage.fn,
                instance: inst.id,
                peer: tunnel.peer,
                peerInstances: instancesOf(tunnel.peer),
                port: tunnel.port,
              }),
            ]
          : [listener, cluster, assignment],
      );
    }
  }
  return out;
}

// --- filters ------------------------------------------------------------------------------------

/** A hop's network filters, by its function's type; `statPrefix` is `C/h`. */
export function hopFilters(hop: HopInput, statPrefix: string): NetworkFilter[] {
  switch (hop.type) {
    case "firewall":
      return firewallFilters(hop.config as FirewallConfig, statPrefix);
    case "qos":
      return qosFilters(hop.config as QosConfig, statPrefix);
    case "loadbalancer":
    case "vpn":
    case "discovery":
      return [];
    default:
      return [
        networkFilter(
          pluginFilterName(hop.type),
          // Hop configs are stored JSON, so the cast only names what they already are.
          typedStruct(pluginTypeUrl(hop.type), hop.config as { [key: string]: Json }),
        ),
      ];
  }
}

type FirewallRule = NonNullable<FirewallConfig["allow"]>[number];

function cidr(text: string): Record<string, unknown> {
  const [address = text, len] = text.split("/");
  const prefixLen = len === undefined ? (isIPv6(address) ? 128 : 32) : Number(len);
  return { address_prefix: address, prefix_len: { value: prefixLen } };
}

function principal(rule: FirewallRule): Record<string, unknown> {
  const ids = (rule.from ?? []).map((s) => ({ remote_ip: cidr(s.cidr) }));
  if (ids.length === 0) return { any: true };
  if (ids.length === 1) return ids[0] as Record<string, unknown>;
  return { or_ids: { ids } };
}

function permission(rule: FirewallRule): Record<string, unknown> {
  const rules = (rule.ports ?? []).map((p) => {
    if (typeof p === "number") return { destination_port: p };
    if (p.endPort === undefined || p.endPort === p.port) return { destination_port: p.port };
    // Int32Range's end is exclusive; the operator's endPort is inclusive.
    return { destination_port_range: { start: p.port, end: p.endPort + 1 } };
  });
  if (rules.length === 0) return { any: true };
  if (rules.length === 1) return rules[0] as Record<string, unknown>;
  return { or_rules: { rules } };
}

function rbacFilter(
  action: "ALLOW" | "DENY",
  prefix: "allow" | "deny",
  rules: readonly FirewallRule[],
  statPrefix: string,
): NetworkFilter {
  const policies: Record<string, unknown> = {};
  rules.forEach((rule, i) => {
    policies[`${prefix}-${i}`] = { permissions: [permission(rule)], principals: [principal(rule)] };
  });
  return networkFilter(
    FILTER_NAME.networkRbac,
    typedConfig(TYPE_URL.networkRbac, { stat_prefix: statPrefix, rules: { action, policies } }),
  );
}

/** Deny rules first (a match denies), then, under `defaultAction: deny`, allow rules (no match denies). */
export function firewallFilters(config: FirewallConfig, statPrefix: string): NetworkFilter[] {
  const out: NetworkFilter[] = [];
  if (config.deny && config.deny.length > 0) out.push(rbacFilter("DENY", "deny", config.deny, statPrefix));
  if (config.defaultAction === "deny") out.push(rbacFilter("ALLOW", "allow", config.allow ?? [], statPrefix));
  return out;
}

export function qosFilters(config: QosConfig, statPrefix: string): NetworkFilter[] {
  const out: NetworkFilter[] = [];
  if (config.connectionsPerSecond !== undefined) {
    out.push(
      networkFilter(
        FILTER_NAME.localRateLimit,
        typedConfig(TYPE_URL.localRateLimit, {
          stat_prefix: statPrefix,
          token_bucket: {
            max_tokens: config.burstConnections ?? config.connectionsPerSecond,
            tokens_per_fill: { value: config.connectionsPerSecond },
            fill_interval: duration(1000),
          },
        }),
      ),
    );
  }
  if (config.maxConnections !== undefined) {
    out.push(
      networkFilter(
        FILTER_NAME.connectionLimit,
        typedConfig(TYPE_URL.connectionLimit, {
          stat_prefix: statPrefix,
          max_connections: { value: config.maxConnections },
        }),
      ),
    );
  }
  if (config.bandwidth) {
    loadCatenaProtos();
    const { bytesPerSecond, burstBytes, scope } = config.bandwidth;
    out.push(
      networkFilter(
        CATENA_FILTER_NAME.bandwidth,
        typedConfig(CATENA_TYPE_URL.bandwidth, {
          bytes_per_second: bytesPerSecond,
          ...(burstBytes !== undefined ? { burst_bytes: burstBytes } : {}),
          scope: scope === "chain" ? "CHAIN" : "CONNECTION",
        }),
      ),
    );
  }
  return out;
}

// --- cluster ------------------------------------------------------------------------------------

const LB_POLICY: Record<NonNullable<LoadBalancerConfig["policy"]>, LbPolicy> = {
  round_robin: "ROUND_ROBIN",
  least_request: "LEAST_REQUEST",
  ring_hash: "RING_HASH",
  maglev: "MAGLEV",
  random: "RANDOM",
};

/** The cluster of a stage: EDS over ADS, 5 s connect timeout, shaped by a load balancer hop. */
export function hopCluster(input: {
  name: string;
  proxyProtocol: boolean;
  lb?: LoadBalancerConfig;
  /** Connect retries on another endpoint even when no load balancer hop asks for them. */
  minConnectRetries?: number;
  /** More of the cluster's `catena` metadata. */
  metadata?: { [key: string]: Json };
}): Resource {
  const { lb } = input;
  const connectRetries = Math.max(lb?.retries ? lb.retries.attempts - 1 : 0, input.minConnectRetries ?? 0);
  const extra: Record<string, unknown> = {};
  if (lb?.healthCheck) {
    const hc = lb.healthCheck;
    extra.health_checks = [
      {
        timeout: duration(hc.timeoutMs),
        interval: duration(hc.intervalMs),
        unhealthy_threshold: { value: hc.unhealthyThreshold ?? 2 },
        healthy_threshold: { value: hc.healthyThreshold ?? 1 },
        tcp_health_check: {},
      },
    ];
  }
  if (lb?.outlierDetection) {
    const od = lb.outlierDetection;
    extra.outlier_detection = {
      // A TCP hop has no 5xx: Catena counts connect failures here (Envoy does the same unless
      // split_external_local_origin_errors is set).
      consecutive_5xx: { value: od.consecutiveFailures ?? 5 },
      base_ejection_time: duration(od.baseEjectionMs ?? 30000),
      max_ejection_percent: { value: od.maxEjectionPercent ?? 10 },
    };
  }
  if (lb?.maxConnections !== undefined) {
    extra.circuit_breakers = { thresholds: [{ max_connections: { value: lb.maxConnections } }] };
  }
  return edsCluster({
    name: input.name,
    connectTimeoutMs: 5000,
    lbPolicy: LB_POLICY[lb?.policy ?? "round_robin"],
    ...(input.proxyProtocol ? { upstreamProxyProtocol: "V2" as const } : {}),
    // Retries after the first attempt; Envoy's TcpProxy has max_connect_attempts, but on the listener.
    ...(connectRetries > 0 || input.metadata
      ? { metadata: { catena: { ...input.metadata, ...(connectRetries > 0 ? { connectRetries } : {}) } } }
      : {}),
    extra,
  });
}
