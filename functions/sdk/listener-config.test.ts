import { describe, expect, it } from "vitest";
import {
  edsCluster,
  listenerFromObject,
  networkFilter,
  proxyProtocolListenerFilter,
  type Resource,
  TYPE_URL,
  tcpProxyListener,
  typedConfig,
} from "../../xds/index.js";
import { decodeAny } from "../../xds/resource.js";
import { clusterType } from "../../xds/resource-types/cluster.js";
import { listenerType } from "../../xds/resource-types/listener.js";
import { loadBuiltinFunctions } from "../builtins.js";
import { FunctionRegistry } from "./define-function.js";
import { compileListener } from "./listener-config.js";
import { loadHostProtos } from "./protos.js";
import { compileCluster } from "./upstream-cluster.js";
import { formatFieldErrors } from "./validated.js";

loadHostProtos();
const registry = new FunctionRegistry();
for (const f of await loadBuiltinFunctions()) registry.register(f);

/** The resource as the host's xDS client decodes it (Envoy JSON form). */
function json(r: Resource): unknown {
  const any = decodeAny(r.any);
  const type = r.typeUrl === TYPE_URL.cluster ? clusterType : listenerType;
  const d = type.decode(any?.value ?? new Uint8Array());
  if (!d.ok) throw new Error(formatFieldErrors(d.errors));
  return d.value;
}

const base = {
  name: "c/1",
  address: "127.64.0.2",
  port: 8080,
  tcpProxy: { cluster: "c/1/next", statPrefix: "c/1" },
  metadata: { catena: { chain: "c", hop: 1, service: "web" } },
};

describe("compileListener", () => {
  it("reads a hop's listener: PROXY v2 from the previous hop, filters in order, its cluster", () => {
    const r = compileListener(
      json(
        tcpProxyListener({
          ...base,
          listenerFilters: [proxyProtocolListenerFilter()],
          filterChainMatch: { directSourcePrefixRanges: [{ address: "127.64.0.1" }] },
          filters: [
            networkFilter(
              "envoy.filters.network.connection_limit",
              typedConfig(TYPE_URL.connectionLimit, { stat_prefix: "c/1", max_connections: { value: 3 } }),
            ),
          ],
        }),
      ),
      registry,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      chain: "c",
      hop: 1,
      proxyProtocol: true,
      cluster: "c/1/next",
      port: 8080,
    });
    expect(r.value.trustedPeers?.has("127.64.0.1")).toBe(true);
    expect(r.value.trustedPeers?.has("::ffff:127.64.0.1")).toBe(true);
    expect(r.value.trustedPeers?.has("127.64.0.3")).toBe(false);
    expect(r.value.filters.map((f) => [f.prepared.function, f.hop])).toEqual([["qos", 1]]);
  });

  it.each([
    {
      name: "no tcp_proxy at the end",
      listener: () =>
        listenerFromObject({
          name: "c/0",
          address: { socket_address: { address: "127.64.0.1", port_value: 1 } },
          filter_chains: [{ filters: [] }],
        }),
      error: /^filter_chains\[0\]\.filters: must end in envoy\.filters\.network\.tcp_proxy$/,
    },
    {
      name: "an address that is not an IP",
      listener: () => tcpProxyListener({ ...base, address: "localhost" }),
      error: /address\.socket_address\.address: "localhost" is not an IP address/,
    },
    {
      name: "a listener filter other than proxy_protocol",
      listener: () =>
        tcpProxyListener({
          ...base,
          listenerFilters: [
            networkFilter(
              "envoy.filters.listener.tls_inspector",
              typedConfig(TYPE_URL.typedStruct, { type_url: "x/y" }),
            ),
          ],
        }),
      error: /^listener_filters\[0\]: .* is not supported/,
    },
    {
      name: "a filter chain match on destination port",
      listener: () =>
        tcpProxyListener({
          ...base,
          extra: { filter_chains: [{ filter_chain_match: { destination_port: { value: 1 } }, filters: [] }] },
        }),
      error: /filter_chains\[0\]\.filter_chain_match\.destination_port: not supported/,
    },
    {
      name: "a tunneling_config that POSTs",
      listener: () =>
        tcpProxyListener({
          ...base,
          tcpProxy: { cluster: "x" },
          extra: {
            filter_chains: [
              {
                filters: [
                  {
                    name: "envoy.filters.network.tcp_proxy",
                    typed_config: typedConfig(TYPE_URL.tcpProxy, {
                      stat_prefix: "c/1",
                      cluster: "x",
                      tunneling_config: { hostname: "h:1", use_post: true },
                    }),
                  },
                ],
              },
            ],
          },
        }),
      error: /filter_chains\[0\]\.filters\[0\]\.typed_config\.tunneling_config\.use_post: not supported/,
    },
  ])("refuses $name with its field path", ({ listener, error }) => {
    const r = compileListener(json(listener()), registry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(error);
  });
});

describe("compileCluster", () => {
  it("reads the upstream PROXY v2 socket, health checks and retries", () => {
    const r = compileCluster(
      json(
        edsCluster({
          name: "c/0/next",
          upstreamProxyProtocol: "V2",
          lbPolicy: "MAGLEV",
          metadata: { catena: { connectRetries: 2 } },
          extra: {
            health_checks: [
              {
                timeout: { seconds: 1 },
                interval: { seconds: 2 },
                unhealthy_threshold: { value: 2 },
                healthy_threshold: { value: 1 },
                tcp_health_check: {},
              },
            ],
          },
        }),
      ),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ edsName: "c/0/next", proxyProtocol: true, connectAttempts: 3 });
    expect(r.value.config.lb.policy).toBe("maglev");
    expect(r.value.config.healthCheck).toMatchObject({
      intervalMs: 2000,
      timeoutMs: 1000,
      unhealthyThreshold: 2,
    });
  });

  it.each([
    {
      name: "PROXY v1 upstream",
      cluster: () => edsCluster({ name: "x", upstreamProxyProtocol: "V1" }),
      error: /transport_socket\.typed_config\.config\.version: only V2 is supported/,
    },
    {
      name: "a STRICT_DNS cluster",
      cluster: () => edsCluster({ name: "x", extra: { type: "STRICT_DNS" } }),
      error: /^type: STRICT_DNS is not supported/,
    },
    {
      name: "negative retries",
      cluster: () => edsCluster({ name: "x", metadata: { catena: { connectRetries: -1 } } }),
      error: /metadata\.filter_metadata\.catena\.connectRetries: must be an integer >= 0/,
    },
  ])("refuses $name with its field path", ({ cluster, error }) => {
    const r = compileCluster(json(cluster()));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(error);
  });
});
