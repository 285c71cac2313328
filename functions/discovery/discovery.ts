// The discovery function (`catena function discovery`): a DNS server fed over xDS. It subscribes over
// ADS to every ClusterLoadAssignment (one per Service, from the control server's shared services
// snapshot) and rebuilds the answers of a service when its assignment changes.
import { AdsClient, endpointType, type Logger } from "../../xds/index.js";
import { SDK_ERROR, SdkError } from "../sdk/errors.js";
import { AdminServer } from "./admin.js";
import { claEndpoints } from "./cla-endpoints.js";
import { DnsServer, freeDnsPort } from "./dns-server.js";
import { DnsWorkerPool } from "./dns-workers.js";
import {
  DISCOVERY_DEFAULTS,
  type DiscoveryInit,
  type DiscoveryOptions,
  discoveryOptions,
  formatHostPort,
  type HostPort,
  parseHostPort,
} from "./options.js";
import { Responder, type ResponderStats } from "./responder.js";
import { Upstream } from "./upstream.js";
import { Zone, type ZoneEndpoint } from "./zone.js";

export interface Discovery {
  /** host:port DNS answers on (UDP and TCP), with the port actually bound. */
  readonly dnsAddress: string;
  readonly adminAddress: string;
  readonly zone: Zone;
  /** Query counters (summed over the workers, as of their last report). */
  readonly stats: ResponderStats;
  /** Resolves once the first set of assignments is in the zone. */
  readonly synced: Promise<void>;
  /** Called after every change applied to the zone, with the service concerned (tests, benchmarks). */
  onZoneChange(listener: (service: string) => void): () => void;
  /** Stops DNS, admin and xDS. Idempotent. */
  close(): Promise<void>;
}

export async function runDiscovery(init: DiscoveryInit): Promise<Discovery> {
  const o = discoveryOptions(init);
  const log: Logger = o.logger;
  const dns = parseHostPort(o.dnsAddr) as HostPort;
  const zone = new Zone({ zone: o.zone, ttlSeconds: o.ttlSeconds, nsAddress: dns.host });
  const upstreamAt = o.upstream ? (parseHostPort(o.upstream, 53) as HostPort) : undefined;
  const upstream = upstreamAt
    ? new Upstream({ host: upstreamAt.host, port: upstreamAt.port, timeoutMs: o.upstreamTimeoutMs })
    : undefined;
  const responder = new Responder(zone, upstream);
  // Every service's endpoints as last received, for workers that start (or start again).
  const known = new Map<string, ZoneEndpoint[]>();
  let server: DnsServer | undefined;
  let pool: DnsWorkerPool | undefined;
  let dnsAddress: string;
  if (o.dnsWorkers > 1) {
    const port = dns.port === 0 ? await freeDnsPort(dns.host) : dns.port;
    pool = await DnsWorkerPool.start({
      count: o.dnsWorkers,
      init: {
        host: dns.host,
        port,
        zone: o.zone,
        ttlSeconds: o.ttlSeconds,
        nsAddress: dns.host,
        upstream: upstreamAt ? { ...upstreamAt, timeoutMs: o.upstreamTimeoutMs } : undefined,
        tcpIdleTimeoutMs: o.tcpIdleTimeoutMs,
        maxTcpConnections: o.maxTcpConnections,
      },
      services: () => [...known],
      onWorkerExit: (code) => log.warn("discovery: a DNS worker exited; starting another", { code }),
    });
    // The workers forward for themselves.
    upstream?.close();
    dnsAddress = formatHostPort(dns.host, port);
  } else {
    server = await DnsServer.start({
      host: dns.host,
      port: dns.port,
      responder,
      tcpIdleTimeoutMs: o.tcpIdleTimeoutMs,
      maxTcpConnections: o.maxTcpConnections,
    });
    dnsAddress = server.address;
  }
  const stats = () => (pool ? pool.stats() : responder.stats);
  let synced = false;
  const admin = await AdminServer.start(adminHostPort(o), {
    notReady: () => (synced ? undefined : "waiting for the first service assignments over xDS"),
    stats: () => ({
      ...stats(),
      services: zoneServices(zone),
      names: zone.size,
      serial: zone.serial,
      workers: pool?.size ?? 1,
    }),
  }).catch(async (err: unknown) => {
    await server?.close();
    await pool?.close();
    upstream?.close();
    throw err;
  });

  const client = new AdsClient({
    servers: o.xdsServers,
    node: {
      id: o.nodeId,
      cluster: o.functionName,
      metadata: {
        type: "discovery",
        admin: admin.address,
        dns: dnsAddress,
        ...(o.address ? { address: o.address } : {}),
      },
    },
    logger: log,
    ...(o.xdsBackoff ? { backoff: o.xdsBackoff } : {}),
  });
  const listeners = new Set<(service: string) => void>();
  const watch = client.watch(endpointType, "*");
  const consuming = (async () => {
    for await (const event of watch) {
      switch (event.type) {
        case "changed": {
          const endpoints = claEndpoints(event.value);
          zone.setService(event.name, endpoints);
          known.set(event.name, endpoints);
          pool?.setService(event.name, endpoints);
          break;
        }
        case "does-not-exist":
          zone.setService(event.name, undefined);
          known.delete(event.name);
          pool?.setService(event.name, undefined);
          break;
        case "error":
          // The client NACKed it and keeps the last accepted version: so does the zone.
          continue;
      }
      for (const l of listeners) l(event.name);
    }
  })();
  const syncedPromise = client.synced(endpointType).then(() => {
    synced = true;
  });
  log.info("discovery: answering", {
    dns: dnsAddress,
    zone: zone.zone,
    admin: admin.address,
    workers: o.dnsWorkers,
  });

  let closing: Promise<void> | undefined;
  return {
    dnsAddress,
    adminAddress: admin.address,
    zone,
    get stats() {
      return stats();
    },
    synced: syncedPromise,
    onZoneChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closing ??= (async () => {
        watch.close();
        await client.close();
        await consuming.catch(() => undefined);
        await server?.close();
        await pool?.close();
        upstream?.close();
        await admin.close();
      })();
      return closing;
    },
  };
}

function zoneServices(zone: Zone): number {
  let n = 0;
  for (const _ of zone.services()) n++;
  return n;
}

/** The admin address to bind: given, else <address>:9901, else an ephemeral port on loopback. */
function adminHostPort(o: DiscoveryOptions): HostPort {
  if (o.adminAddr) {
    const at = parseHostPort(o.adminAddr);
    if (!at)
      throw new SdkError(SDK_ERROR.invalidArgument, `adminAddr: expected HOST:PORT, got "${o.adminAddr}"`);
    return at;
  }
  if (o.address) return { host: o.address, port: DISCOVERY_DEFAULTS.adminPort };
  return { host: "127.0.0.1", port: 0 };
}
