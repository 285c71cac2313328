// A DNS worker process (`--dns-workers N`): Node answers UDP on one thread, so past one core's worth of
// queries the discovery function forks workers (node:cluster) that share its UDP socket and TCP port.
// The primary keeps the xDS stream and sends each worker the services' endpoints; every worker holds
// its own precomputed zone and answers on its own.
import cluster from "node:cluster";
import { DnsServer } from "./dns-server.js";
import { emptyStats, Responder, type ResponderStats } from "./responder.js";
import { Upstream } from "./upstream.js";
import { Zone, type ZoneEndpoint } from "./zone.js";

export interface WorkerInit {
  t: "init";
  host: string;
  port: number;
  zone: string;
  ttlSeconds: number;
  nsAddress: string;
  upstream?: { host: string; port: number; timeoutMs: number } | undefined;
  tcpIdleTimeoutMs: number;
  maxTcpConnections: number;
  services: [string, ZoneEndpoint[]][];
}

export type ToWorker =
  | WorkerInit
  | { t: "set"; name: string; endpoints: ZoneEndpoint[] | null }
  | { t: "stats" }
  | { t: "close" };

export type FromWorker =
  | { t: "hello" }
  | { t: "ready" }
  | { t: "stats"; stats: ResponderStats }
  | { t: "error"; message: string };

/** The worker side: waits for init, then serves until told to close. */
export function runDnsWorker(): void {
  const send = (m: FromWorker) => process.send?.(m);
  let zone: Zone | undefined;
  let responder: Responder | undefined;
  let server: DnsServer | undefined;
  let upstream: Upstream | undefined;
  // Sets that arrive before init is done are applied once the zone exists.
  const early: [string, ZoneEndpoint[] | null][] = [];
  process.on("message", (m: ToWorker) => {
    switch (m.t) {
      case "init":
        void (async () => {
          zone = new Zone({ zone: m.zone, ttlSeconds: m.ttlSeconds, nsAddress: m.nsAddress });
          for (const [name, endpoints] of m.services) zone.setService(name, endpoints);
          for (const [name, endpoints] of early.splice(0)) zone.setService(name, endpoints ?? undefined);
          upstream = m.upstream ? new Upstream(m.upstream) : undefined;
          responder = new Responder(zone, upstream);
          try {
            server = await DnsServer.start({
              host: m.host,
              port: m.port,
              responder,
              tcpIdleTimeoutMs: m.tcpIdleTimeoutMs,
              maxTcpConnections: m.maxTcpConnections,
              // The primary's socket and port, shared by every worker.
              exclusive: false,
            });
            send({ t: "ready" });
          } catch (err) {
            send({ t: "error", message: err instanceof Error ? err.message : String(err) });
          }
        })();
        return;
      case "set":
        if (zone) zone.setService(m.name, m.endpoints ?? undefined);
        else early.push([m.name, m.endpoints]);
        return;
      case "stats":
        send({ t: "stats", stats: responder?.stats ?? emptyStats() });
        return;
      case "close":
        void (async () => {
          await server?.close();
          upstream?.close();
          process.disconnect?.();
          process.exit(0);
        })();
        return;
    }
  });
  // Only now can a message be received: the primary sends init when it hears this.
  send({ t: "hello" });
}

if (cluster.isWorker && process.env.CATENA_DNS_WORKER === "1") runDnsWorker();
