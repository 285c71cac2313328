// Test support for the function host: a real xDS server (AdsServer + SnapshotCache), chain resources
// built per DESIGN.md "Hop resources" with xds/resources builders (not the compiler, so these tests
// pin the contract on the host's side), TCP backends that greet then echo, and clients.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import type { EventSink } from "../../../functions/sdk/events.js";
import type { FunctionHost } from "../../../functions/sdk/host.js";
import { loadHostProtos } from "../../../functions/sdk/protos.js";
import {
  AdsServer,
  clusterLoadAssignment,
  duration,
  edsCluster,
  type NetworkFilter,
  networkFilter,
  proxyProtocolListenerFilter,
  type Resource,
  Snapshot,
  SnapshotCache,
  TYPE_URL,
  tcpProxyListener,
  typedConfig,
} from "../../../xds/index.js";
import { startTestHost } from "../../support/hosts.js";

export { freePort } from "../../../services/control/events/nats-server-process.js";

loadHostProtos();

export const BANDWIDTH_TYPE_URL = "type.googleapis.com/catena.v1.Bandwidth";

export interface XdsServer {
  cache: SnapshotCache;
  server: AdsServer;
  address: string;
  close(): Promise<void>;
}

export async function startXds(): Promise<XdsServer> {
  const cache = new SnapshotCache({ debounceMs: 0 });
  const server = new AdsServer({ cache });
  const port = await server.listen("127.0.0.1:0");
  return {
    cache,
    server,
    address: `127.0.0.1:${port}`,
    close: async () => {
      cache.close();
      await server.close();
    },
  };
}

// ---- filters in the Envoy dialect, as the compiler emits them ----

export interface Cidr {
  address: string;
  prefixLen: number;
}

/** RBAC ALLOW: only these sources (any port). */
export function rbacAllow(statPrefix: string, sources: Cidr[]): NetworkFilter {
  const policies: Record<string, unknown> = {};
  policies["allow-0"] = {
    permissions: [{ any: true }],
    principals: [
      {
        or_ids: {
          ids: sources.map((c) => ({
            remote_ip: { address_prefix: c.address, prefix_len: { value: c.prefixLen } },
          })),
        },
      },
    ],
  };
  return networkFilter(
    "envoy.filters.network.rbac",
    typedConfig(TYPE_URL.networkRbac, { stat_prefix: statPrefix, rules: { action: "ALLOW", policies } }),
  );
}

/** RBAC DENY: these sources are denied (any port). */
export function rbacDeny(statPrefix: string, sources: Cidr[]): NetworkFilter {
  return networkFilter(
    "envoy.filters.network.rbac",
    typedConfig(TYPE_URL.networkRbac, {
      stat_prefix: statPrefix,
      rules: {
        action: "DENY",
        policies: {
          "deny-0": {
            permissions: [{ any: true }],
            principals: sources.map((c) => ({
              remote_ip: { address_prefix: c.address, prefix_len: { value: c.prefixLen } },
            })),
          },
        },
      },
    }),
  );
}

export function localRateLimit(statPrefix: string, perSecond: number, burst = perSecond): NetworkFilter {
  return networkFilter(
    "envoy.filters.network.local_ratelimit",
    typedConfig(TYPE_URL.localRateLimit, {
      stat_prefix: statPrefix,
      token_bucket: {
        max_tokens: burst,
        tokens_per_fill: { value: perSecond },
        fill_interval: duration(1000),
      },
    }),
  );
}

export function connectionLimit(statPrefix: string, max: number): NetworkFilter {
  return networkFilter(
    "envoy.filters.network.connection_limit",
    typedConfig(TYPE_URL.connectionLimit, { stat_prefix: statPrefix, max_connections: { value: max } }),
  );
}

export function bandwidth(
  statPrefix: string,
  bytesPerSecond: number,
  burstBytes: number,
  scope: "CONNECTION" | "CHAIN",
): NetworkFilter {
  void statPrefix;
  return networkFilter(
    "catena.filters.network.bandwidth",
    typedConfig(BANDWIDTH_TYPE_URL, { bytes_per_second: bytesPerSecond, burst_bytes: burstBytes, scope }),
  );
}

// ---- a chain's resources per instance ----

export interface HopSpec {
  /** Instance ids and addresses running this hop (separate placement). */
  instances: { id: string; address: string }[];
  filters: (statPrefix: string) => NetworkFilter[];
}

export interface ChainSpec {
  name: string;
  port: number;
  service: string;
  placement: "separate" | "fused";
  hops: HopSpec[];
  /** Fused: the instances running the whole chain. */
  fusedInstances?: { id: string; address: string }[];
  backends: { address: string; port: number }[];
  /** Last cluster's balancing: lb_policy and health checks (the loadbalancer hop's). */
  lb?: {
    policy?: "ROUND_ROBIN" | "LEAST_REQUEST" | "RING_HASH" | "MAGLEV" | "RANDOM";
    healthIntervalMs?: number;
  };
}

function lastCluster(spec: ChainSpec, name: string): Resource {
  const hc = spec.lb?.healthIntervalMs;
  return edsCluster({
    name,
    serviceName: name,
    connectTimeoutMs: 2000,
    lbPolicy: spec.lb?.policy ?? "ROUND_ROBIN",
    extra: hc
      ? {
          health_checks: [
            {
              timeout: duration(Math.max(50, Math.floor(hc / 2))),
              interval: duration(hc),
              unhealthy_threshold: { value: 1 },
              healthy_threshold: { value: 1 },
              tcp_health_check: {},
            },
          ],
        }
      : {},
  });
}

/** Resources per instance id, as DESIGN.md "Hop resources" lays them out. */
export function chainSnapshots(spec: ChainSpec): Map<string, Resource[]> {
  const out = new Map<string, Resource[]>();
  const add = (id: string, rs: Resource[]) => out.set(id, [...(out.get(id) ?? []), ...rs]);
  const C = spec.name;
  if (spec.placement === "fused") {
    const name = `${C}/fused`;
    const filters = spec.hops.flatMap((h, i) => h.filters(`${C}/${i}`));
    for (const inst of spec.fusedInstances ?? []) {
      add(inst.id, [
        tcpProxyListener({
          name,
          address: inst.address,
          port: spec.port,
          filters,
          tcpProxy: { cluster: `${name}/next`, statPrefix: name },
          metadata: { catena: { chain: C, hop: 0, hops: spec.hops.length, service: spec.service } },
        }),
        lastCluster(spec, `${name}/next`),
        clusterLoadAssignment({ clusterName: `${name}/next`, endpoints: spec.backends }),
      ]);
    }
    return out;
  }
  spec.hops.forEach((hop, h) => {
    const name = `${C}/${h}`;
    const last = h === spec.hops.length - 1;
    const next = spec.hops[h + 1];
    const prev = spec.hops[h - 1];
    for (const inst of hop.instances) {
      add(inst.id, [
        tcpProxyListener({
          name,
          address: inst.address,
          port: spec.port,
          filters: hop.filters(name),
          tcpProxy: { cluster: `${name}/next`, statPrefix: name },
          metadata: { catena: { chain: C, hop: h, service: spec.service } },
          ...(prev
            ? {
                listenerFilters: [proxyProtocolListenerFilter()],
                filterChainMatch: {
                  directSourcePrefixRanges: prev.instances.map((i) => ({ address: i.address })),
                },
              }
            : {}),
        }),
        last
          ? lastCluster(spec, `${name}/next`)
          : edsCluster({
              name: `${name}/next`,
              serviceName: `${name}/next`,
              connectTimeoutMs: 2000,
              upstreamProxyProtocol: "V2",
            }),
        clusterLoadAssignment({
          clusterName: `${name}/next`,
          endpoints: last
            ? spec.backends
            : (next?.instances ?? []).map((i) => ({ address: i.address, port: spec.port })),
        }),
      ]);
    }
  });
  return out;
}

export function publish(xds: XdsServer, snapshots: Map<string, Resource[]>, ids: string[]): void {
  for (const id of ids) xds.cache.setSnapshot(id, Snapshot.from(snapshots.get(id) ?? []));
}

// ---- hosts ----

export async function startHost(options: {
  xds: XdsServer;
  type: string;
  nodeId: string;
  address: string;
  events?: EventSink;
  drainTimeoutMs?: number;
  proxyHeaderTimeoutMs?: number;
}): Promise<FunctionHost> {
  return startTestHost({
    type: options.type,
    functionName: `${options.type}-fn`,
    nodeId: options.nodeId,
    xdsServers: [options.xds.address],
    address: options.address,
    events: options.events,
    drainTimeoutMs: options.drainTimeoutMs,
    proxyHeaderTimeoutMs: options.proxyHeaderTimeoutMs,
  });
}

// ---- backends: greet with "backend-<i>\n", then echo ----

export const BANNER_LENGTH = "backend-0\n".length;

export interface Backend {
  index: number;
  address: string;
  port: number;
  server: Server;
  sockets: Set<Socket>;
  /** Connections accepted, and the peers they came from. */
  accepted: number;
  /** Bytes received (health probes send none). */
  bytesIn: number;
  peers: string[];
  close(): Promise<void>;
  /** Listens again on the same address and port. */
  restart(): Promise<void>;
}

export async function startBackend(index: number, address: string, port = 0): Promise<Backend> {
  const sockets = new Set<Socket>();
  const b: Backend = {
    index,
    address,
    port,
    server: createServer(),
    sockets,
    accepted: 0,
    bytesIn: 0,
    peers: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      if (b.server.listening) await new Promise<void>((r) => b.server.close(() => r()));
    },
    restart: async () => {
      b.server = make();
      b.server.listen(b.port, address);
      await once(b.server, "listening");
    },
  };
  const make = () =>
    createServer({ allowHalfOpen: true }, (s) => {
      b.accepted++;
      b.peers.push(s.remoteAddress ?? "");
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
      s.on("data", (c: Buffer) => {
        b.bytesIn += c.length;
      });
      s.write(`backend-${index}\n`);
      s.pipe(s);
    });
  b.server = make();
  b.server.listen(port, address);
  await once(b.server, "listening");
  b.port = (b.server.address() as { port: number }).port;
  return b;
}

// ---- clients ----

export async function dial(host: string, port: number, localAddress?: string): Promise<Socket> {
  const s = netConnect({ host, port, localAddress, allowHalfOpen: true });
  await once(s, "connect");
  // A reset (a denied or drained connection) shows as close; without a listener it would throw.
  s.on("error", () => undefined);
  return s;
}

/** Everything until the peer ends or closes; never rejects (a reset ends it too). */
export function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  s.resume();
  return new Promise((resolve) => {
    const done = () => resolve(Buffer.concat(chunks));
    s.once("end", done);
    s.once("close", done);
    s.once("error", () => {});
  });
}

/** Sends payload, half-closes, and returns what came back (banner + echo). */
export async function roundTrip(
  host: string,
  port: number,
  payload: Buffer,
  localAddress?: string,
): Promise<{ banner: string; echo: Buffer; ms: number }> {
  const t0 = performance.now();
  const s = await dial(host, port, localAddress);
  const all = readAll(s);
  s.end(payload);
  const got = await all;
  s.destroy();
  return {
    banner: got.subarray(0, BANNER_LENGTH).toString(),
    echo: got.subarray(BANNER_LENGTH),
    ms: performance.now() - t0,
  };
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

export async function until(
  cond: () => boolean,
  what: string | (() => string),
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
