import { describe, expect, it } from "vitest";
import { CATENA_TYPE_URL } from "../../../proto/catena/v1/protos.js";
import {
  decodeAny,
  decodeMessageJson,
  type ProtoJson,
  type Resource,
  structToJson,
  TYPE_URL,
} from "../../../xds/index.js";
import type { Kind, StoredResource } from "../model/resource.js";
import type { FunctionInstance } from "../registry/instances.js";
import { type ChainInput, chainResources, type HopInput, resolveChain } from "./chain-resources.js";

function decode(r: Resource): ProtoJson {
  const any = decodeAny(r.any);
  if (!any) throw new Error("not an Any");
  expect(any.typeUrl).toBe(r.typeUrl);
  const json = decodeMessageJson(r.typeUrl, any.value);
  if (!json.ok) throw new Error(JSON.stringify(json.errors));
  return json.value;
}

/** An instance's resources for the chain as {"<kind> <name>": Envoy JSON}. */
function held(out: ReturnType<typeof chainResources>, id: string): Record<string, ProtoJson> {
  const short: Record<string, string> = {
    [TYPE_URL.listener]: "Listener",
    [TYPE_URL.cluster]: "Cluster",
    [TYPE_URL.endpoint]: "ClusterLoadAssignment",
  };
  return Object.fromEntries(
    (out.byInstance.get(id) ?? []).map((r) => [`${short[r.typeUrl]} ${r.name}`, decode(r)]),
  );
}

function catenaMetadata(json: ProtoJson): unknown {
  const md = json.metadata as { filter_metadata?: { catena?: unknown } } | undefined;
  return structToJson(md?.filter_metadata?.catena);
}

const FW: HopInput = {
  function: "edge-fw",
  type: "firewall",
  config: { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [8080] }] },
};
const QOS: HopInput = {
  function: "edge-qos",
  type: "qos",
  config: {
    connectionsPerSecond: 200,
    maxConnections: 1000,
    bandwidth: { bytesPerSecond: 10485760, burstBytes: 1048576, scope: "connection" },
  },
};
const LB: HopInput = {
  function: "edge-lb",
  type: "loadbalancer",
  config: {
    policy: "round_robin",
    healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
  },
};

function edgeChain(over: Partial<ChainInput> = {}): ChainInput {
  return {
    name: "web-edge",
    service: "web",
    port: 8080,
    placement: "separate",
    hops: [FW, QOS, LB],
    serviceProxyProtocol: false,
    endpoints: [
      { address: "127.0.0.1", port: 9001, weight: 1 },
      { address: "127.0.0.1", port: 9002, weight: 3 },
    ],
    instances: {
      "edge-fw": [{ id: "fw-1", address: "127.64.0.1" }],
      "edge-qos": [{ id: "qos-1", address: "127.64.0.2" }],
      "edge-lb": [
        { id: "lb-1", address: "127.64.0.3" },
        { id: "lb-2", address: "127.64.0.4" },
      ],
    },
    ...over,
  };
}

const PROXY_V2_SOCKET = {
  name: "envoy.transport_sockets.upstream_proxy_protocol",
  typed_config: {
    "@type": TYPE_URL.upstreamProxyProtocol,
    config: { version: "V2" },
    transport_socket: { name: "envoy.transport_sockets.raw_buffer" },
  },
};

const tcpProxy = (stage: string) => ({
  name: "envoy.filters.network.tcp_proxy",
  typed_config: { "@type": TYPE_URL.tcpProxy, stat_prefix: stage, cluster: `${stage}/next` },
});

describe("chain resources, separate placement", () => {
  const out = chainResources(edgeChain());

  it("each instance holds exactly its hop's listener, cluster and assignment", () => {
    expect(Object.keys(held(out, "fw-1")).sort()).toEqual([
      "Cluster web-edge/0/next",
      "ClusterLoadAssignment web-edge/0/next",
      "Listener web-edge/0",
    ]);
    expect(Object.keys(held(out, "qos-1")).sort()).toEqual([
      "Cluster web-edge/1/next",
      "ClusterLoadAssignment web-edge/1/next",
      "Listener web-edge/1",
    ]);
    for (const id of ["lb-1", "lb-2"]) {
      expect(Object.keys(held(out, id)).sort()).toEqual([
        "Cluster web-edge/2/next",
        "ClusterLoadAssignment web-edge/2/next",
        "Listener web-edge/2",
      ]);
    }
    expect([...out.byInstance.keys()].sort()).toEqual(["fw-1", "lb-1", "lb-2", "qos-1"]);
    expect(out.problems).toEqual([]);
    expect(out.stages.map((s) => [s.name, s.instances])).toEqual([
      ["web-edge/0", ["fw-1"]],
      ["web-edge/1", ["qos-1"]],
      ["web-edge/2", ["lb-1", "lb-2"]],
    ]);
  });

  it("hop 0 listens on its own address and the chain's port, plain TCP from anyone", () => {
    const l = held(out, "fw-1")["Listener web-edge/0"] as ProtoJson;
    expect(l.address).toEqual({ socket_address: { address: "127.64.0.1", port_value: 8080 } });
    expect(l.listener_filters).toBeUndefined();
    const chains = l.filter_chains as ProtoJson[];
    expect(chains).toHaveLength(1);
    expect(chains[0]?.filter_chain_match).toBeUndefined();
    expect(catenaMetadata(l)).toEqual({ chain: "web-edge", hop: 0, service: "web" });
  });

  it("the firewall becomes an RBAC ALLOW filter, then tcp_proxy", () => {
    const l = held(out, "fw-1")["Listener web-edge/0"] as ProtoJson;
    expect((l.filter_chains as ProtoJson[])[0]?.filters).toEqual([
      {
        name: "envoy.filters.network.rbac",
        typed_config: {
          "@type": TYPE_URL.networkRbac,
          stat_prefix: "web-edge/0",
          rules: {
            action: "ALLOW",
            policies: {
              "allow-0": {
                permissions: [{ destination_port: 8080 }],
                principals: [{ remote_ip: { address_prefix: "127.0.0.0", prefix_len: { value: 8 } } }],
              },
            },
          },
        },
      },
      tcpProxy("web-edge/0"),
    ]);
  });

  it("between hops: PROXY v2 out, proxy_protocol listener filter in, only from the previous hop", () => {
    const fw = held(out, "fw-1");
    expect(fw["Cluster web-edge/0/next"]).toMatchObject({
      name: "web-edge/0/next",
      type: "EDS",
      eds_cluster_config: { service_name: "web-edge/0/next", eds_config: { ads: {} } },
      connect_timeout: { seconds: 5 },
      lb_policy: "ROUND_ROBIN",
      transport_socket: PROXY_V2_SOCKET,
    });
    expect(fw["ClusterLoadAssignment web-edge/0/next"]).toMatchObject({
      cluster_name: "web-edge/0/next",
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: "127.64.0.2", port_value: 8080 } } },
              health_status: "HEALTHY",
              load_balancing_weight: { value: 1 },
            },
          ],
        },
      ],
    });
    const l = held(out, "qos-1")["Listener web-edge/1"] as ProtoJson;
    expect(l.listener_filters).toEqual([
      {
        name: "envoy.filters.listener.proxy_protocol",
        typed_config: { "@type": TYPE_URL.listenerProxyProtocol },
      },
    ]);
    expect((l.filter_chains as ProtoJson[])[0]?.filter_chain_match).toEqual({
      direct_source_prefix_ranges: [{ address_prefix: "127.64.0.1", prefix_len: { value: 32 } }],
    });
    const lb = held(out, "lb-2")["Listener web-edge/2"] as ProtoJson;
    expect((lb.filter_chains as ProtoJson[])[0]?.filter_chain_match).toEqual({
      direct_source_prefix_ranges: [{ address_prefix: "127.64.0.2", prefix_len: { value: 32 } }],
    });
    expect(lb.address).toEqual({ socket_address: { address: "127.64.0.4", port_value: 8080 } });
  });

  it("qos becomes local_ratelimit, connection_limit and catena Bandwidth, in that order", () => {
    const l = held(out, "qos-1")["Listener web-edge/1"] as ProtoJson;
    expect((l.filter_chains as ProtoJson[])[0]?.filters).toEqual([
      {
        name: "envoy.filters.network.local_ratelimit",
        typed_config: {
          "@type": TYPE_URL.localRateLimit,
          stat_prefix: "web-edge/1",
          token_bucket: {
            max_tokens: 200,
            tokens_per_fill: { value: 200 },
            fill_interval: { seconds: 1, nanos: 0 },
          },
        },
      },
      {
        name: "envoy.filters.network.connection_limit",
        typed_config: {
          "@type": TYPE_URL.connectionLimit,
          stat_prefix: "web-edge/1",
          max_connections: { value: 1000 },
        },
      },
      {
        name: "catena.filters.network.bandwidth",
        typed_config: {
          "@type": CATENA_TYPE_URL.bandwidth,
          bytes_per_second: 10485760,
          burst_bytes: 1048576,
          scope: "CONNECTION",
        },
      },
      tcpProxy("web-edge/1"),
    ]);
  });

  it("the last hop's cluster is the load balancer's, to the Service's endpoints, plain TCP", () => {
    const lb = held(out, "lb-1");
    const cluster = lb["Cluster web-edge/2/next"] as ProtoJson;
    expect(cluster).toMatchObject({
      lb_policy: "ROUND_ROBIN",
      health_checks: [
        {
          timeout: { nanos: 500_000_000 },
          interval: { seconds: 1 },
          unhealthy_threshold: { value: 2 },
          healthy_threshold: { value: 1 },
          tcp_health_check: {},
        },
      ],
    });
    expect(cluster.transport_socket).toBeUndefined();
    const cla = lb["ClusterLoadAssignment web-edge/2/next"] as { endpoints: { lb_endpoints: unknown[] }[] };
    expect(cla.endpoints[0]?.lb_endpoints).toEqual([
      {
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9001 } } },
        health_status: "HEALTHY",
        load_balancing_weight: { value: 1 },
      },
      {
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9002 } } },
        health_status: "HEALTHY",
        load_balancing_weight: { value: 3 },
      },
    ]);
    // Every instance of a hop gets the same cluster and assignment, byte for byte.
    const [, c1, a1] = out.byInstance.get("lb-1") ?? [];
    const [, c2, a2] = out.byInstance.get("lb-2") ?? [];
    expect(c1).toBe(c2);
    expect(a1).toBe(a2);
  });

  it("the last hop sends PROXY v2 to the endpoints when the Service asks for it", () => {
    const v2 = chainResources(edgeChain({ serviceProxyProtocol: true }));
    expect(held(v2, "lb-1")["Cluster web-edge/2/next"]).toMatchObject({ transport_socket: PROXY_V2_SOCKET });
  });
});

describe("chain resources, fused placement", () => {
  const out = chainResources(edgeChain({ placement: "fused" }));

  it("one listener on the first hop's instances, every hop's filters in order, one tcp_proxy", () => {
    expect([...out.byInstance.keys()]).toEqual(["fw-1"]);
    const fw = held(out, "fw-1");
    expect(Object.keys(fw).sort()).toEqual([
      "Cluster web-edge/fused/next",
      "ClusterLoadAssignment web-edge/fused/next",
      "Listener web-edge/fused",
    ]);
    const l = fw["Listener web-edge/fused"] as ProtoJson;
    const filters = (l.filter_chains as { filters: { name: string; typed_config: ProtoJson }[] }[])[0]
      ?.filters;
    expect(filters?.map((f) => [f.name, f.typed_config.stat_prefix])).toEqual([
      ["envoy.filters.network.rbac", "web-edge/0"],
      ["envoy.filters.network.local_ratelimit", "web-edge/1"],
      ["envoy.filters.network.connection_limit", "web-edge/1"],
      ["catena.filters.network.bandwidth", undefined],
      ["envoy.filters.network.tcp_proxy", "web-edge/fused"],
    ]);
    expect(filters?.at(-1)?.typed_config.cluster).toBe("web-edge/fused/next");
    expect(l.listener_filters).toBeUndefined();
    expect(catenaMetadata(l)).toEqual({ chain: "web-edge", hop: 0, service: "web", hops: 3 });
    expect(out.stages).toEqual([
      { name: "web-edge/fused", hops: [0, 1, 2], function: "edge-fw", instances: ["fw-1"] },
    ]);
  });

  it("the one cluster goes to the endpoints, shaped by the load balancer hop", () => {
    const fw = held(out, "fw-1");
    const cluster = fw["Cluster web-edge/fused/next"] as ProtoJson;
    expect(cluster).toMatchObject({ lb_policy: "ROUND_ROBIN", health_checks: [{ tcp_health_check: {} }] });
    expect(cluster.transport_socket).toBeUndefined();
    const cla = fw["ClusterLoadAssignment web-edge/fused/next"] as {
      endpoints: { lb_endpoints: unknown[] }[];
    };
    expect(cla.endpoints[0]?.lb_endpoints).toHaveLength(2);
  });
});

type Filter = { name: string; typed_config: ProtoJson };
const firstHopFilters = (hop: HopInput): Filter[] => {
  const out = chainResources(
    edgeChain({ hops: [hop], instances: { [hop.function]: [{ id: "i", address: "127.64.0.9" }] } }),
  );
  const l = held(out, "i")[`Listener web-edge/0`] as { filter_chains: { filters: Filter[] }[] };
  return l.filter_chains[0]?.filters.slice(0, -1) ?? [];
};
const rbac = (f: Filter) => (f.typed_config as { rules: unknown }).rules;

const firewallCases: { name: string; config: Record<string, unknown>; expect: unknown[] }[] = [
  {
    name: "defaultAction allow without deny rules adds no filter",
    config: { defaultAction: "allow", allow: [{ from: [{ cidr: "10.0.0.0/8" }] }] },
    expect: [],
  },
  {
    name: "defaultAction deny without allow rules denies everything (ALLOW with no policy)",
    config: { defaultAction: "deny" },
    expect: [{ action: "ALLOW" }],
  },
  {
    name: "deny rules come first, as DENY; several sources are or_ids, several ports or_rules",
    config: {
      defaultAction: "deny",
      deny: [
        { from: [{ cidr: "127.0.0.66/32" }, { cidr: "::1" }], ports: [22, { port: 9000, endPort: 9100 }] },
      ],
      allow: [{ ports: [{ port: 8080 }] }, { from: [{ cidr: "10.1.0.0/16" }] }],
    },
    expect: [
      {
        action: "DENY",
        policies: {
          "deny-0": {
            permissions: [
              {
                or_rules: {
                  rules: [{ destination_port: 22 }, { destination_port_range: { start: 9000, end: 9101 } }],
                },
              },
            ],
            principals: [
              {
                or_ids: {
                  ids: [
                    { remote_ip: { address_prefix: "127.0.0.66", prefix_len: { value: 32 } } },
                    { remote_ip: { address_prefix: "::1", prefix_len: { value: 128 } } },
                  ],
                },
              },
            ],
          },
        },
      },
      {
        action: "ALLOW",
        policies: {
          "allow-0": { permissions: [{ destination_port: 8080 }], principals: [{ any: true }] },
          "allow-1": {
            permissions: [{ any: true }],
            principals: [{ remote_ip: { address_prefix: "10.1.0.0", prefix_len: { value: 16 } } }],
          },
        },
      },
    ],
  },
];

describe("firewall → RBAC", () => {
  it.each(firewallCases)("$name", ({ config, expect: want }) => {
    const filters = firstHopFilters({ function: "fw", type: "firewall", config });
    expect(filters.every((f) => f.name === "envoy.filters.network.rbac")).toBe(true);
    expect(filters.map(rbac)).toEqual(want);
  });
});

describe("qos and third-party filters", () => {
  it("each qos filter only when configured; burstConnections sizes the bucket; scope chain", () => {
    const filters = firstHopFilters({
      function: "q",
      type: "qos",
      config: {
        connectionsPerSecond: 10,
        burstConnections: 50,
        bandwidth: { bytesPerSecond: 1000, scope: "chain" },
      },
    });
    expect(filters.map((f) => f.name)).toEqual([
      "envoy.filters.network.local_ratelimit",
      "catena.filters.network.bandwidth",
    ]);
    expect(filters[0]?.typed_config.token_bucket).toMatchObject({
      max_tokens: 50,
      tokens_per_fill: { value: 10 },
    });
    expect(filters[1]?.typed_config).toEqual({
      "@type": CATENA_TYPE_URL.bandwidth,
      bytes_per_second: 1000,
      scope: "CHAIN",
    });
  });

  it("a third-party type's config travels as a TypedStruct under its own type URL", () => {
    const filters = firstHopFilters({
      function: "waf",
      type: "acme-waf",
      config: { mode: "block", rules: ["sqli", "xss"], level: 3 },
    });
    expect(filters).toHaveLength(1);
    expect(filters[0]?.name).toBe("catena.filters.network.acme-waf");
    const tc = filters[0]?.typed_config as { "@type": string; type_url: string; value: unknown };
    expect(tc["@type"]).toBe(TYPE_URL.typedStruct);
    expect(tc.type_url).toBe("type.googleapis.com/catena.plugin.acme-waf");
    expect(structToJson(tc.value)).toEqual({ mode: "block", rules: ["sqli", "xss"], level: 3 });
  });
});

describe("load balancer → Cluster", () => {
  it("policy, outlier detection, circuit breaker and retries", () => {
    const out = chainResources(
      edgeChain({
        hops: [
          {
            function: "lb",
            type: "loadbalancer",
            config: {
              policy: "maglev",
              outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 10000, maxEjectionPercent: 50 },
              maxConnections: 100,
              retries: { attempts: 3 },
            },
          },
        ],
        instances: { lb: [{ id: "lb-1", address: "127.64.0.3" }] },
      }),
    );
    const cluster = held(out, "lb-1")["Cluster web-edge/0/next"] as ProtoJson;
    expect(cluster).toMatchObject({
      lb_policy: "MAGLEV",
      outlier_detection: {
        consecutive_5xx: { value: 3 },
        base_ejection_time: { seconds: 10 },
        max_ejection_percent: { value: 50 },
      },
      circuit_breakers: { thresholds: [{ max_connections: { value: 100 } }] },
    });
    expect(cluster.health_checks).toBeUndefined();
    expect(catenaMetadata(cluster)).toEqual({ connectRetries: 2 });
  });

  it("without a load balancer hop: round robin, no checks", () => {
    const out = chainResources(
      edgeChain({ hops: [FW], instances: { "edge-fw": [{ id: "f", address: "127.64.0.1" }] } }),
    );
    const cluster = held(out, "f")["Cluster web-edge/0/next"] as ProtoJson;
    expect(cluster.lb_policy).toBe("ROUND_ROBIN");
    expect(cluster.health_checks).toBeUndefined();
    expect(cluster.outlier_detection).toBeUndefined();
    expect(cluster.metadata).toBeUndefined();
  });

  it("a cluster toward the next hop retries once on another instance (one may not have bound yet)", () => {
    const out = chainResources(
      edgeChain({
        hops: [FW, { function: "edge-lb", type: "loadbalancer", config: { policy: "round_robin" } }],
        instances: {
          "edge-fw": [{ id: "f", address: "127.64.0.1" }],
          "edge-lb": [{ id: "l", address: "127.64.0.3" }],
        },
      }),
    );
    expect(catenaMetadata(held(out, "f")["Cluster web-edge/0/next"] as ProtoJson)).toEqual({
      connectRetries: 1,
    });
    expect((held(out, "l")["Cluster web-edge/1/next"] as ProtoJson).metadata).toBeUndefined();
  });
});

describe("instances", () => {
  it("a hop whose previous hop has no instance gets nothing (an empty range list would admit anyone)", () => {
    const out = chainResources(
      edgeChain({
        instances: { "edge-fw": [], "edge-qos": [{ id: "qos-1", address: "127.64.0.2" }], "edge-lb": [] },
      }),
    );
    expect([...out.byInstance.keys()]).toEqual([]);
    expect(out.stages[1]).toMatchObject({ instances: [], withheld: expect.stringContaining("edge-fw") });
  });

  it("next hop without instances: an empty assignment", () => {
    const out = chainResources(edgeChain({ instances: { ...edgeChain().instances, "edge-qos": [] } }));
    const cla = held(out, "fw-1")["ClusterLoadAssignment web-edge/0/next"] as ProtoJson;
    expect(cla.endpoints ?? []).toEqual([]);
  });

  it("IPv6 instances are /128 sources", () => {
    const out = chainResources(
      edgeChain({
        hops: [FW, QOS],
        instances: {
          "edge-fw": [{ id: "f", address: "fd00::1" }],
          "edge-qos": [{ id: "q", address: "fd00::2" }],
        },
      }),
    );
    const l = held(out, "q")["Listener web-edge/1"] as { filter_chains: ProtoJson[] };
    expect(l.filter_chains[0]?.filter_chain_match).toEqual({
      direct_source_prefix_ranges: [{ address_prefix: "fd00::1", prefix_len: { value: 128 } }],
    });
  });

  it("the same function twice in a separate chain is a port conflict on its instances", () => {
    const out = chainResources(edgeChain({ hops: [FW, QOS, FW], instances: { ...edgeChain().instances } }));
    expect(Object.keys(held(out, "fw-1"))).toContain("Listener web-edge/0");
    expect(out.problems).toEqual([{ reason: "PortConflict", message: expect.stringContaining("fw-1") }]);
    expect(out.stages[2]?.instances).toEqual([]);
  });
});

describe("resolveChain", () => {
  const stored = (kind: Kind, name: string, spec: Record<string, unknown>): StoredResource => ({
    apiVersion: "catena.dev/v1alpha1",
    kind,
    metadata: { name, resourceVersion: "1", generation: 1, uid: name, creationTimestamp: "" },
    spec,
  });
  const objects = [
    stored("Service", "web", { network: "n", ports: [{ name: "http", port: 80 }], proxyProtocol: "v2" }),
    stored("ServiceFunction", "lb", {
      type: "loadbalancer",
      config: { policy: "maglev", maxConnections: 5 },
    }),
  ];
  const get = (kind: Kind, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const inst = (id: string, address?: string): FunctionInstance => ({
    id,
    function: "lb",
    type: "loadbalancer",
    connectedAt: "",
    ...(address ? { address } : {}),
  });

  it("merges the function's defaults under the hop's config, fills declared defaults, drops address-less instances", () => {
    const chain = stored("ServiceChain", "c", {
      service: "web",
      ingress: { port: 80 },
      hops: [{ function: "lb", config: { maxConnections: 7, outlierDetection: {} } }],
    });
    const resolved = resolveChain(
      chain,
      get,
      () => [{ address: "10.0.0.1", port: 80, weight: 2 }],
      () => [inst("a", "127.64.0.1"), inst("b")],
    );
    expect(resolved).toEqual({
      ok: true,
      input: {
        name: "c",
        service: "web",
        port: 80,
        placement: "separate",
        hops: [
          {
            function: "lb",
            type: "loadbalancer",
            config: {
              policy: "maglev",
              maxConnections: 7,
              outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30000, maxEjectionPercent: 10 },
            },
          },
        ],
        serviceProxyProtocol: true,
        endpoints: [{ address: "10.0.0.1", port: 80, weight: 2 }],
        instances: { lb: [{ id: "a", address: "127.64.0.1" }] },
      },
    });
  });

  it("a firewall config with ports resolves (defaults cannot be filled into its unions)", () => {
    const fw = stored("ServiceFunction", "fw", { type: "firewall" });
    const chain = stored("ServiceChain", "c", {
      service: "web",
      ingress: { port: 80 },
      hops: [{ function: "fw", config: { defaultAction: "deny", allow: [{ ports: [80, { port: 90 }] }] } }],
    });
    const lookup = (kind: Kind, name: string) =>
      kind === "ServiceFunction" && name === "fw" ? fw : get(kind, name);
    const resolved = resolveChain(
      chain,
      lookup,
      () => [],
      () => [],
    );
    expect(resolved.ok && resolved.input.hops[0]?.config).toEqual({
      defaultAction: "deny",
      allow: [{ ports: [80, { port: 90 }] }],
    });
  });

  it("a discovery function cannot be a hop (its instances read the services snapshot)", () => {
    const dns = stored("ServiceFunction", "dns", { type: "discovery" });
    const chain = stored("ServiceChain", "c", {
      service: "web",
      ingress: { port: 80 },
      hops: [{ function: "dns" }],
    });
    const lookup = (kind: Kind, name: string) => (name === "dns" ? dns : get(kind, name));
    expect(
      resolveChain(
        chain,
        lookup,
        () => [],
        () => [],
      ),
    ).toMatchObject({ ok: false, reason: "UnsupportedHop" });
  });

  it("a vpn hop cannot be fused; the peer's instances are gathered", () => {
    const a = stored("ServiceFunction", "vpn-a", { type: "vpn", config: { peer: "vpn-b" } });
    const b = stored("ServiceFunction", "vpn-b", { type: "vpn" });
    const lookup = (kind: Kind, name: string) =>
      kind === "ServiceFunction" && name === "vpn-a"
        ? a
        : kind === "ServiceFunction" && name === "vpn-b"
          ? b
          : get(kind, name);
    const chain = (placement: string) =>
      stored("ServiceChain", "c", {
        service: "web",
        ingress: { port: 80 },
        placement,
        hops: [{ function: "vpn-a" }],
      });
    const instances = (fn: string): FunctionInstance[] => [
      {
        id: `${fn}-1`,
        function: fn,
        type: "vpn",
        address: fn === "vpn-a" ? "127.0.0.2" : "127.0.0.3",
        connectedAt: "",
      },
    ];
    expect(resolveChain(chain("fused"), lookup, () => [], instances)).toMatchObject({
      ok: false,
      reason: "UnsupportedHop",
    });
    const ok = resolveChain(chain("separate"), lookup, () => [], instances);
    expect(ok.ok && ok.input.instances).toEqual({
      "vpn-a": [{ id: "vpn-a-1", address: "127.0.0.2" }],
      "vpn-b": [{ id: "vpn-b-1", address: "127.0.0.3" }],
    });
  });

  it("a missing ServiceFunction is an InvalidReference", () => {
    const chain = stored("ServiceChain", "c", {
      service: "web",
      ingress: { port: 80 },
      hops: [{ function: "nope" }],
    });
    expect(
      resolveChain(
        chain,
        get,
        () => [],
        () => [],
      ),
    ).toMatchObject({
      ok: false,
      reason: "InvalidReference",
      message: "hop 0: ServiceFunction nope does not exist",
    });
  });
});

describe("vpn hops", () => {
  const VPN: HopInput = { function: "vpn-a", type: "vpn", config: { peer: "vpn-b" } };
  const vpnChain = (hops: HopInput[], over: Partial<ChainInput> = {}) =>
    edgeChain({
      name: "inv",
      service: "inventory",
      port: 5432,
      hops,
      instances: {
        ...edgeChain().instances,
        "vpn-a": [{ id: "a-1", address: "127.67.0.2" }],
        "vpn-b": [
          { id: "b-1", address: "127.68.0.2" },
          { id: "b-2", address: "127.68.0.3" },
        ],
      },
      ...over,
    });

  it("the near gateway tunnels over mTLS + HTTP/2 to its peer's instances; the exit goes to the endpoints", () => {
    const out = chainResources(vpnChain([FW, VPN]));
    const a = held(out, "a-1");
    expect(Object.keys(a).sort()).toEqual([
      "Cluster inv/1/next",
      "ClusterLoadAssignment inv/1/next",
      "Listener inv/1",
    ]);
    const tcp = ((a["Listener inv/1"]?.filter_chains ?? []) as ProtoJson[])[0]?.filters as ProtoJson[];
    expect(tcp[0]?.typed_config).toMatchObject({
      cluster: "inv/1/next",
      tunneling_config: {
        hostname: "inventory:5432",
        headers_to_add: [{ header: { key: "x-catena-downstream", value: "%DOWNSTREAM_REMOTE_ADDRESS%" } }],
      },
    });
    expect(a["Cluster inv/1/next"]).toMatchObject({
      transport_socket: {
        typed_config: {
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{ name: "spiffe://catena.local/function/vpn-a/a-1" }],
            combined_validation_context: {
              default_validation_context: {
                match_typed_subject_alt_names: [
                  { matcher: { prefix: "spiffe://catena.local/function/vpn-b/" } },
                ],
              },
              validation_context_sds_secret_config: { name: "ROOTCA" },
            },
          },
        },
      },
    });
    const endpoints = ((a["ClusterLoadAssignment inv/1/next"]?.endpoints ?? []) as ProtoJson[])[0]
      ?.lb_endpoints;
    expect(JSON.stringify(endpoints)).toContain('"port_value":15008');
    expect(JSON.stringify(endpoints)).toContain("127.68.0.3");
    // The peer is not a hop: nothing of the chain's listeners, only the exit below.
    expect(out.byInstance.has("b-1")).toBe(false);
    expect(out.tunnels).toHaveLength(1);
    const [tunnel] = out.tunnels;
    expect(tunnel).toMatchObject({
      peer: "vpn-b",
      port: 15008,
      from: "vpn-a",
      route: { name: "inv/1", domains: ["inventory:5432"], cluster: "inv/1/exit" },
    });
    expect(tunnel?.instances.map((i) => i.id)).toEqual(["b-1", "b-2"]);
    const exitCluster = decode(tunnel?.resources[0] as Resource);
    expect(exitCluster.name).toBe("inv/1/exit");
    expect(exitCluster.transport_socket).toBeUndefined(); // plain TCP to the Service
  });

  it("a vpn hop in the middle: the exit sends PROXY v2 to the next hop, which trusts the peer's instances", () => {
    const out = chainResources(
      vpnChain([{ ...VPN, config: { peer: "vpn-b", tunnelPort: 8443, authority: "inv.b" } }, LB]),
    );
    const exitCluster = decode(out.tunnels[0]?.resources[0] as Resource);
    expect(exitCluster.transport_socket).toMatchObject(PROXY_V2_SOCKET);
    expect(catenaMetadata(exitCluster)).toMatchObject({ chain: "inv", hop: 1 });
    expect(out.tunnels[0]?.port).toBe(8443);
    const lb = held(out, "lb-1")["Listener inv/1"];
    const match = ((lb?.filter_chains ?? []) as ProtoJson[])[0]?.filter_chain_match as ProtoJson;
    expect(JSON.stringify(match.direct_source_prefix_ranges)).toBe(
      JSON.stringify([
        { address_prefix: "127.68.0.2", prefix_len: { value: 32 } },
        { address_prefix: "127.68.0.3", prefix_len: { value: 32 } },
      ]),
    );
  });

  it("with no peer instance, the hop after the tunnel is withheld", () => {
    const out = chainResources(
      vpnChain([VPN, LB], { instances: { ...vpnChain([]).instances, "vpn-b": [] } }),
    );
    expect(out.stages[1]?.withheld).toContain("its tunnel comes out at its peer");
    expect(out.byInstance.has("lb-1")).toBe(false);
  });
});
