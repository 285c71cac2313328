import { describe, expect, it } from "vitest";
import { decodeAny, type Resource } from "../resource.js";
import { BUILTIN_RESOURCE_TYPES } from "../resource-types/builtin.js";
import { TYPE_URL } from "../type-urls.js";
import { apiListener } from "./api-listener.js";
import { edsCluster } from "./cluster.js";
import { clusterLoadAssignment } from "./cluster-load-assignment.js";
import { connectTerminatorListener, proxyProtocolListenerFilter, tcpProxyListener } from "./listener.js";
import { routeConfiguration } from "./route-configuration.js";
import { tlsCertificateSecret } from "./secret.js";
import { downstreamTlsSocket } from "./tls.js";
import { typedConfig, typedStruct } from "./typed-config.js";

function roundTrip(r: Resource): Record<string, unknown> {
  const any = decodeAny(r.any);
  expect(any?.typeUrl).toBe(r.typeUrl);
  const type = BUILTIN_RESOURCE_TYPES.get(r.typeUrl);
  if (!type || !any) throw new Error("no type");
  const decoded = type.decode(any.value);
  if (!decoded.ok) throw new Error(JSON.stringify(decoded.errors));
  expect(decoded.name).toBe(r.name);
  return decoded.value;
}

const cases: { name: string; build: () => Resource; expect: Record<string, unknown> }[] = [
  {
    name: "tcp proxy listener keeps filter order and ends in tcp_proxy",
    build: () =>
      tcpProxyListener({
        name: "hop-1",
        address: "127.64.0.2",
        port: 9000,
        filters: [
          {
            name: "envoy.filters.network.connection_limit",
            typedConfig: typedConfig(TYPE_URL.connectionLimit, {
              stat_prefix: "cl",
              max_connections: { value: 10 },
            }),
          },
        ],
        tcpProxy: { cluster: "next" },
      }),
    expect: {
      name: "hop-1",
      address: { socket_address: { address: "127.64.0.2", port_value: 9000 } },
      filter_chains: [
        {
          filters: [
            {
              name: "envoy.filters.network.connection_limit",
              typed_config: {
                "@type": TYPE_URL.connectionLimit,
                stat_prefix: "cl",
                max_connections: { value: 10 },
              },
            },
            {
              name: "envoy.filters.network.tcp_proxy",
              typed_config: { "@type": TYPE_URL.tcpProxy, stat_prefix: "next", cluster: "next" },
            },
          ],
        },
      ],
    },
  },
  {
    name: "eds cluster fetches its endpoints over ads",
    build: () =>
      edsCluster({
        name: "web",
        lbPolicy: "LEAST_REQUEST",
        upstreamTls: { sni: "web", validationSecret: "ca" },
      }),
    expect: {
      name: "web",
      type: "EDS",
      lb_policy: "LEAST_REQUEST",
      eds_cluster_config: { service_name: "web", eds_config: { ads: {}, resource_api_version: "V3" } },
    },
  },
  {
    name: "listener reads PROXY headers only from the given peers and carries metadata",
    build: () =>
      tcpProxyListener({
        name: "c/1",
        address: "127.64.0.3",
        port: 8080,
        listenerFilters: [proxyProtocolListenerFilter()],
        filterChainMatch: { directSourcePrefixRanges: [{ address: "127.64.0.2" }, { address: "::1" }] },
        metadata: { catena: { chain: "c", hop: 1 } },
        tcpProxy: { cluster: "c/1/next" },
      }),
    expect: {
      listener_filters: [
        {
          name: "envoy.filters.listener.proxy_protocol",
          typed_config: { "@type": TYPE_URL.listenerProxyProtocol },
        },
      ],
      filter_chains: [
        {
          filter_chain_match: {
            direct_source_prefix_ranges: [
              { address_prefix: "127.64.0.2", prefix_len: { value: 32 } },
              { address_prefix: "::1", prefix_len: { value: 128 } },
            ],
          },
        },
      ],
      metadata: {
        filter_metadata: {
          catena: { fields: { chain: { stringValue: "c" }, hop: { numberValue: 1 } } },
        },
      },
    },
  },
  {
    name: "cluster sends PROXY v2 through upstream_proxy_protocol around raw_buffer",
    build: () => edsCluster({ name: "c/0/next", upstreamProxyProtocol: "V2" }),
    expect: {
      transport_socket: {
        name: "envoy.transport_sockets.upstream_proxy_protocol",
        typed_config: {
          "@type": TYPE_URL.upstreamProxyProtocol,
          config: { version: "V2" },
          transport_socket: {
            name: "envoy.transport_sockets.raw_buffer",
            typed_config: { "@type": TYPE_URL.rawBuffer },
          },
        },
      },
    },
  },
  {
    name: "cluster load assignment weighs a locality by the sum of its endpoints' weights",
    build: () =>
      clusterLoadAssignment({
        clusterName: "web",
        endpoints: [{ address: "10.0.0.1", port: 80, weight: 3 }],
      }),
    expect: {
      cluster_name: "web",
      endpoints: [
        {
          locality: {},
          load_balancing_weight: { value: 3 },
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } },
              health_status: "HEALTHY",
              load_balancing_weight: { value: 3 },
            },
          ],
        },
      ],
    },
  },
  {
    name: "cluster load assignment groups endpoints by their own locality",
    build: () =>
      clusterLoadAssignment({
        clusterName: "web",
        endpoints: [
          { address: "10.0.0.1", port: 80, weight: 1, locality: { zone: "a" } },
          { address: "10.0.0.2", port: 80, weight: 2, locality: { zone: "b" } },
          { address: "10.0.0.3", port: 80, locality: { zone: "a" } },
        ],
      }),
    expect: {
      cluster_name: "web",
      endpoints: [
        {
          locality: { zone: "a" },
          load_balancing_weight: { value: 2 },
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: "10.0.0.1", port_value: 80 } } },
              health_status: "HEALTHY",
              load_balancing_weight: { value: 1 },
            },
            {
              endpoint: { address: { socket_address: { address: "10.0.0.3", port_value: 80 } } },
              health_status: "HEALTHY",
            },
          ],
        },
        {
          locality: { zone: "b" },
          load_balancing_weight: { value: 2 },
          lb_endpoints: [
            {
              endpoint: { address: { socket_address: { address: "10.0.0.2", port_value: 80 } } },
              health_status: "HEALTHY",
              load_balancing_weight: { value: 2 },
            },
          ],
        },
      ],
    },
  },
  {
    name: "api listener uses rds and the router filter",
    build: () => apiListener({ name: "svc", routeConfigName: "svc-routes" }),
    expect: {
      name: "svc",
      api_listener: {
        api_listener: {
          "@type": TYPE_URL.httpConnectionManager,
          stat_prefix: "svc",
          rds: { route_config_name: "svc-routes", config_source: { ads: {}, resource_api_version: "V3" } },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": TYPE_URL.router } }],
        },
      },
    },
  },
  {
    name: "route configuration routes a prefix to a cluster",
    build: () =>
      routeConfiguration({
        name: "svc-routes",
        virtualHosts: [{ name: "svc", domains: ["*"], routes: [{ cluster: "web" }] }],
      }),
    expect: {
      name: "svc-routes",
      virtual_hosts: [
        { name: "svc", domains: ["*"], routes: [{ match: { prefix: "" }, route: { cluster: "web" } }] },
      ],
    },
  },
  {
    name: "tunnelling cluster speaks HTTP/2 over TLS 1.3 with SAN matchers and SDS secrets",
    build: () =>
      edsCluster({
        name: "c/0/next",
        http2: true,
        upstreamTls: {
          certificateSecret: "spiffe://td/function/a/1",
          validationSecret: "ROOTCA",
          sanUriPrefixes: ["spiffe://td/function/b/"],
          alpnProtocols: ["h2"],
          tlsVersion: "TLSv1_3",
        },
      }),
    expect: {
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          common_tls_context: {
            tls_params: { tls_minimum_protocol_version: "TLSv1_3", tls_maximum_protocol_version: "TLSv1_3" },
            alpn_protocols: ["h2"],
            tls_certificate_sds_secret_configs: [{ name: "spiffe://td/function/a/1" }],
            combined_validation_context: {
              default_validation_context: {
                match_typed_subject_alt_names: [
                  { san_type: "URI", matcher: { prefix: "spiffe://td/function/b/" } },
                ],
              },
              validation_context_sds_secret_config: { name: "ROOTCA" },
            },
          },
        },
      },
      typed_extension_protocol_options: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          explicit_http_config: { http2_protocol_options: {} },
        },
      },
    },
  },
  {
    name: "connect terminator routes CONNECT by authority behind mutual TLS",
    build: () =>
      connectTerminatorListener({
        name: "vpn/15008",
        address: "127.68.0.2",
        port: 15008,
        transportSocket: downstreamTlsSocket({ certificateSecret: "s", validationSecret: "ROOTCA" }),
        routes: [
          {
            name: "c/1",
            domains: ["inventory:5432"],
            cluster: "c/1/exit",
            principals: ["spiffe://td/function/vpn-a/"],
          },
        ],
      }),
    expect: {
      name: "vpn/15008",
      filter_chains: [
        {
          transport_socket: { typed_config: { require_client_certificate: { value: true } } },
          filters: [
            {
              name: "envoy.filters.network.http_connection_manager",
              typed_config: {
                codec_type: "HTTP2",
                http_filters: [
                  {
                    name: "envoy.filters.http.rbac",
                    typed_config: {
                      rules: {
                        action: "ALLOW",
                        policies: {
                          "c/1": {
                            permissions: [
                              { header: { name: ":authority", string_match: { exact: "inventory:5432" } } },
                            ],
                            principals: [
                              {
                                authenticated: { principal_name: { prefix: "spiffe://td/function/vpn-a/" } },
                              },
                            ],
                          },
                        },
                      },
                    },
                  },
                  { name: "envoy.filters.http.router" },
                ],
                http2_protocol_options: { allow_connect: true },
                upgrade_configs: [{ upgrade_type: "CONNECT" }],
                route_config: {
                  virtual_hosts: [
                    {
                      domains: ["inventory:5432"],
                      routes: [
                        {
                          match: { connect_matcher: {} },
                          route: {
                            cluster: "c/1/exit",
                            upgrade_configs: [{ upgrade_type: "CONNECT", connect_config: {} }],
                          },
                        },
                      ],
                    },
                  ],
                },
              },
            },
          ],
        },
      ],
    },
  },
  {
    name: "secret carries inline pem",
    build: () => tlsCertificateSecret({ name: "cert", certificateChain: "CERT", privateKey: "KEY" }),
    expect: {
      name: "cert",
      tls_certificate: {
        certificate_chain: { inline_string: "CERT" },
        private_key: { inline_string: "KEY" },
      },
    },
  },
];

describe("resource builders", () => {
  it.each(cases)("$name", ({ build, expect: want }) => {
    expect(roundTrip(build())).toMatchObject(want);
  });

  it("encodes the same input to the same bytes", () => {
    const a = edsCluster({ name: "web" });
    const b = edsCluster({ name: "web" });
    expect(Buffer.from(a.any).equals(Buffer.from(b.any))).toBe(true);
  });

  it("typed struct carries a plugin's type url and json", () => {
    const l = tcpProxyListener({
      name: "l",
      address: "127.0.0.1",
      port: 1,
      filters: [
        { name: "acme.filter", typedConfig: typedStruct("type.googleapis.com/acme.v1.Config", { limit: 3 }) },
      ],
      tcpProxy: { cluster: "c" },
    });
    const json = roundTrip(l) as {
      filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[];
    };
    expect(json.filter_chains[0]?.filters[0]?.typed_config).toMatchObject({
      "@type": TYPE_URL.typedStruct,
      type_url: "type.googleapis.com/acme.v1.Config",
      value: { fields: { limit: { numberValue: 3 } } },
    });
  });
});

describe("unpackTypedStruct", () => {
  it("gives back the plugin's type url and json", async () => {
    const { unpackTypedStruct } = await import("../resource-types/typed-struct.js");
    const l = tcpProxyListener({
      name: "l",
      address: "127.0.0.1",
      port: 1,
      filters: [
        {
          name: "acme.filter",
          typedConfig: typedStruct("type.googleapis.com/acme.v1.Config", { limit: 3, tags: ["x"] }),
        },
      ],
      tcpProxy: { cluster: "c" },
    });
    const json = roundTrip(l) as { filter_chains: { filters: { typed_config: unknown }[] }[] };
    expect(unpackTypedStruct(json.filter_chains[0]?.filters[0]?.typed_config)).toEqual({
      typeUrl: "type.googleapis.com/acme.v1.Config",
      value: { limit: 3, tags: ["x"] },
    });
    expect(unpackTypedStruct(json.filter_chains[0]?.filters[1]?.typed_config)).toBeUndefined();
  });
});
