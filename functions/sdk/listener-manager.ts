// The host's listeners: each Listener resource bound on its address:port, each accepted connection
// taken through the hop's data path:
//   peer check (source_prefix_ranges) → PROXY v2 header (when the listener expects one) → filters in
//   order → connect upstream at once (PROXY v2 preamble when the cluster wants one) → relay.
// A Listener update is a new generation: new connections get the new filters while the previous
// generation stops accepting and drains (its connections finish under the config they started with,
// and are destroyed after the drain timeout). A listener at the same address keeps its socket, so an
// update refuses no connection; one that moves binds its new address before the old one is closed.
// A VPN tunnel's far end (DownstreamTlsContext + http_connection_manager) hands each accepted socket to
// its generation's TunnelServer; it binds only once its secrets have arrived (warming: the previous
// version, if any, serves meanwhile), and a new certificate applies to new handshakes at once. A
// listener with tunneling_config opens an HTTP/2 CONNECT through its cluster's tunnel instead of TCP.
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../xds/logger.js";
import { formatTunnelHeaders } from "./connect-config.js";
import type {
  Connection,
  ConnectionStats,
  HelperScope,
  HostHelper,
  NetworkFilter,
  Verdict,
} from "./define-function.js";
import { deny } from "./define-function.js";
import { type ActiveFilter, FilterChain } from "./filter-chain.js";
import type { ListenerPlan } from "./listener-config.js";
import { ListenerStats, type RefusalReason } from "./metrics.js";
import { formatHostPort } from "./options.js";
import { readProxyHeader } from "./proxy-header-reader.js";
import {
  type ProxyEndpoint,
  type ProxyParseResult,
  proxyHeaderBuffer,
  tcpProxyHeader,
} from "./proxy-protocol.js";
import type { TlsMaterials } from "./secrets.js";
import { type RelayStream, TcpRelay } from "./tcp-relay.js";
import { DEFAULT_TUNNEL_OPTIONS, type TunnelEventSink, type TunnelOptions } from "./tunnel-client.js";
import { TunnelServer } from "./tunnel-server.js";
import type { ClusterManager } from "./upstream-cluster.js";

export interface ListenerDeps {
  clusters: ClusterManager;
  logger: Logger;
  /** A host event (kind = the function type, name = the node id). */
  emit(verb: string, data: Record<string, unknown>): void;
  /** A child helper for one filter. */
  helperFor(scope: Omit<HelperScope, "nodeId">): HostHelper;
  drainTimeoutMs: number;
  proxyHeaderTimeoutMs: number;
  /** Secrets and our key, for tunnel listeners (DownstreamTlsContext). */
  materials?: TlsMaterials;
  tunnelOptions?: TunnelOptions;
  /** vpn connected/disconnected/refused events. */
  tunnelEvents?: TunnelEventSink;
}

const swallow = (): void => {};

const UNAVAILABLE: NetworkFilter = { onConnection: () => deny("filter_unavailable") };

/** One version of one Listener: its plan, its filters, and the connections it accepted. */
/** Two versions of a CONNECT terminator that differ in their routes only (same socket, same TLS). */
function routesOnlyChange(a: ListenerPlan, b: ListenerPlan): boolean {
  if (!a.connect || !b.connect || !a.tls || !b.tls) return false;
  const rest = (p: ListenerPlan) => JSON.stringify({ ...p, connect: undefined });
  return rest(a) === rest(b) && a.connect.statPrefix === b.connect.statPrefix;
}

class Generation {
  readonly live = new Set<Socket>();
  /** Hop index sent in the upstream PROXY header: the hop after the last one this listener runs. */
  readonly nextHop: number;
  draining = false;
  bound = false;
  bindError: string | undefined;
  /** The tunnel's far end (a listener with a DownstreamTlsContext), once its secrets are here. */
  tunnel: TunnelServer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #resolveDrained: () => void = () => {};
  readonly drained: Promise<void>;

  constructor(
    /** Replaced in place only when a CONNECT terminator's routes change (routesOnlyChange). */
    public plan: ListenerPlan,
    readonly chain: FilterChain,
    readonly stats: ListenerStats,
  ) {
    this.nextHop = Math.max(plan.hop + plan.hops - 1, ...plan.filters.map((f) => f.hop)) + 1;
    this.drained = new Promise((r) => {
      this.#resolveDrained = r;
    });
  }

  /** Stops taking connections; destroys the ones left after timeoutMs. */
  drain(timeoutMs: number): void {
    if (this.draining) return;
    this.draining = true;
    // GOAWAY: the peers move new streams to the new generation; streams in flight finish.
    this.tunnel?.drain();
    if (this.live.size === 0) {
      this.#finish();
      return;
    }
    this.#timer = setTimeout(() => {
      this.tunnel?.destroy();
      for (const s of this.live) s.destroy();
    }, timeoutMs);
  }

  forget(s: Socket): void {
    if (this.live.delete(s) && this.draining && this.live.size === 0) this.#finish();
  }

  #finish(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.chain.close();
    this.#resolveDrained();
  }
}

interface BoundSocket {
  key: string;
  server: Server;
  owner: Generation | undefined;
}

const ZERO_STATS: ConnectionStats = Object.freeze({
  bytesUp: 0,
  bytesDown: 0,
  durationMs: 0,
  connected: false,
});

export class ListenerManager {
  readonly #deps: ListenerDeps;
  readonly #current = new Map<string, Generation>();
  readonly #sockets = new Map<string, BoundSocket>();
  readonly #draining = new Set<Generation>();
  /** Generations waiting for their secrets before they bind (the current one, if any, serves meanwhile). */
  readonly #warming = new Map<string, Generation>();
  readonly #retry = new Map<string, NodeJS.Timeout>();
  /** Counters by listener name, kept across generations and after removal (Prometheus counters). */
  readonly #stats = new Map<string, ListenerStats>();
  #nextId = 0;
  #closed = false;

  readonly #unsubscribe: (() => void) | undefined;

  constructor(deps: ListenerDeps) {
    this.#deps = deps;
    this.#unsubscribe = deps.materials?.store.onChange(() => this.#secretsChanged());
  }

  /** Tunnel counters of a listener's current generation (TLS sessions, streams, refusals). */
  tunnelStats(name: string): TunnelServer["stats"] | undefined {
    return this.#current.get(name)?.tunnel?.stats;
  }

  /** Connections open through every generation. */
  get activeConnections(): number {
    let n = 0;
    for (const g of this.#current.values()) n += g.live.size;
    for (const g of this.#draining) n += g.live.size;
    return n;
  }

  stats(): Iterable<[string, ListenerStats]> {
    return this.#stats.entries();
  }

  names(): string[] {
    return [...this.#current.keys()];
  }

  /** Listeners that could not bind, with why. */
  unbound(): { name: string; error: string }[] {
    const out: { name: string; error: string }[] = [];
    for (const [name, g] of this.#current) if (!g.bound) out.push({ name, error: g.bindError ?? "binding" });
    for (const [name, g] of this.#warming)
      if (!this.#current.has(name)) out.push({ name, error: g.bindError ?? "waiting for secrets" });
    return out;
  }

  /** The address a listener is bound on (port 0 in its plan resolves here). */
  address(name: string): { address: string; port: number } | undefined {
    const g = this.#current.get(name);
    if (!g?.bound) return undefined;
    const s = this.#sockets.get(socketKey(g.plan));
    const a = s?.server.address();
    return a && typeof a === "object" ? { address: a.address, port: a.port } : undefined;
  }

  /** Adds or replaces a listener; resolves once it is bound (or its bind failed and is being retried). */
  async apply(plan: ListenerPlan): Promise<void> {
    if (this.#closed) return;
    let stats = this.#stats.get(plan.name);
    if (!stats) {
      stats = new ListenerStats();
      this.#stats.set(plan.name, stats);
    }
    const current = this.#current.get(plan.name);
    if (current?.tunnel && !current.draining && routesOnlyChange(current.plan, plan)) {
      // What RDS gives Envoy: a chain tunnelling to this gateway came or went; the listener, its
      // TLS sessions and every stream in them stay.
      current.tunnel.setRoutes(plan.connect as NonNullable<ListenerPlan["connect"]>);
      current.plan = plan;
      this.#dropWarming(plan.name);
      return;
    }
    const gen = new Generation(plan, this.#filterChain(plan), stats);
    this.#dropWarming(plan.name);
    if (plan.tls) {
      const materials = this.#deps.materials;
      const m = materials?.material(plan.tls);
      if (!m) {
        // Envoy's warming: ACKed, bound once the secrets arrive; the previous version serves meanwhile.
        const missing = materials ? materials.missing(plan.tls).join(", ") : "no secret store";
        gen.bindError = `waiting for secrets ${missing}`;
        this.#warming.set(plan.name, gen);
        this.#deps.logger.info("listener waiting for secrets", { listener: plan.name, missing });
        return;
      }
      gen.tunnel = this.#tunnelServer(gen, m);
    }
    await this.#activate(gen);
  }

  #dropWarming(name: string): void {
    const w = this.#warming.get(name);
    if (!w) return;
    this.#warming.delete(name);
    w.chain.close();
  }

  #tunnelServer(gen: Generation, m: NonNullable<ReturnType<TlsMaterials["material"]>>): TunnelServer {
    const plan = gen.plan;
    return new TunnelServer(
      plan.connect as NonNullable<ListenerPlan["connect"]>,
      plan.tls as NonNullable<ListenerPlan["tls"]>,
      m,
      {
        listener: plan.name,
        clusters: this.#deps.clusters,
        events: this.#deps.tunnelEvents ?? (() => {}),
        logger: this.#deps.logger,
        options: this.#deps.tunnelOptions ?? DEFAULT_TUNNEL_OPTIONS,
        onStreamDone: (up, down) => {
          gen.stats.bytesIn += up;
          gen.stats.bytesOut += down;
        },
      },
    );
  }

  /** Secrets changed: warming listeners whose secrets are all here bind; tunnel servers take new certificates. */
  #secretsChanged(): void {
    const materials = this.#deps.materials;
    if (!materials || this.#closed) return;
    for (const [name, gen] of [...this.#warming]) {
      const m = gen.plan.tls ? materials.material(gen.plan.tls) : undefined;
      if (!m) continue;
      this.#warming.delete(name);
      gen.bindError = undefined;
      gen.tunnel = this.#tunnelServer(gen, m);
      this.#deps.logger.info("listener secrets arrived", { listener: name });
      void this.#activate(gen);
    }
    for (const g of [...this.#current.values(), ...this.#draining]) {
      if (!g.tunnel || !g.plan.tls) continue;
      const m = materials.material(g.plan.tls);
      if (m) g.tunnel.setMaterial(m);
    }
  }

  async #activate(gen: Generation): Promise<void> {
    const plan = gen.plan;
    if (this.#closed) return;
    const old = this.#current.get(plan.name);
    this.#current.set(plan.name, gen);
    this.#cancelRetry(plan.name);
    const key = socketKey(plan);
    const shared = this.#sockets.get(key);
    if (shared) {
      // Same address: the socket stays, new connections go to the new generation at once.
      shared.owner = gen;
      gen.bound = true;
    } else {
      await this.#bind(gen);
    }
    if (old) this.#retire(old, "updated");
  }

  /** Removes a listener: it stops accepting and its connections drain. */
  remove(name: string): void {
    this.#dropWarming(name);
    const g = this.#current.get(name);
    if (!g) return;
    this.#current.delete(name);
    this.#cancelRetry(name);
    this.#retire(g, "removed");
  }

  /** Stops accepting everywhere and waits for connections to finish (destroyed after the drain timeout). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const name of [...this.#warming.keys()]) this.#dropWarming(name);
    for (const t of this.#retry.values()) clearTimeout(t);
    this.#retry.clear();
    for (const s of this.#sockets.values()) s.server.close();
    this.#sockets.clear();
    for (const g of this.#current.values()) {
      this.#draining.add(g);
      g.drain(this.#deps.drainTimeoutMs);
    }
    this.#current.clear();
    await Promise.all([...this.#draining].map((g) => g.drained));
  }

  /** Aborts every connection at once. Idempotent. */
  destroy(): void {
    const wasClosed = this.#closed;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const name of [...this.#warming.keys()]) this.#dropWarming(name);
    for (const t of this.#retry.values()) clearTimeout(t);
    this.#retry.clear();
    if (!wasClosed) for (const s of this.#sockets.values()) s.server.close();
    this.#sockets.clear();
    for (const g of [...this.#current.values(), ...this.#draining]) {
      this.#draining.add(g);
      g.drain(0);
      g.tunnel?.destroy();
      for (const s of g.live) s.destroy();
    }
    this.#current.clear();
  }

  #retire(g: Generation, why: "updated" | "removed"): void {
    const key = socketKey(g.plan);
    const s = this.#sockets.get(key);
    if (s && s.owner === g) {
      s.owner = undefined;
      s.server.close();
      this.#sockets.delete(key);
    }
    if (g.live.size > 0)
      this.#deps.emit("draining", { listener: g.plan.name, reason: why, connections: g.live.size });
    this.#draining.add(g);
    g.drain(this.#deps.drainTimeoutMs);
    void g.drained.then(() => this.#draining.delete(g));
  }

  #cancelRetry(name: string): void {
    const t = this.#retry.get(name);
    if (t) clearTimeout(t);
    this.#retry.delete(name);
  }

  async #bind(gen: Generation): Promise<void> {
    const plan = gen.plan;
    const key = socketKey(plan);
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false });
    const bound: BoundSocket = { key, server, owner: gen };
    server.on("connection", (socket: Socket) => this.#accept(bound, socket));
    try {
      server.listen({ host: plan.address, port: plan.port, backlog: 1024 });
      await Promise.race([
        once(server, "listening"),
        once(server, "error").then(([err]) => {
          throw err;
        }),
      ]);
    } catch (err) {
      server.close();
      gen.bindError = `cannot listen on ${formatHostPort(plan.address, plan.port)}: ${(err as Error).message}`;
      this.#deps.logger.warn("listener bind failed; retrying", { listener: plan.name, error: gen.bindError });
      this.#deps.emit("rejected", { listener: plan.name, error: gen.bindError });
      if (this.#current.get(plan.name) === gen && !this.#closed) {
        const t = setTimeout(() => {
          this.#retry.delete(plan.name);
          if (this.#current.get(plan.name) === gen && !this.#closed) void this.#bind(gen);
        }, 1000);
        t.unref();
        this.#retry.set(plan.name, t);
      }
      return;
    }
    server.on("error", (err) =>
      this.#deps.logger.error("listener error", { listener: plan.name, error: String(err) }),
    );
    if (this.#closed || this.#current.get(plan.name) !== gen) {
      server.close();
      return;
    }
    // Someone bound the same address meanwhile (a concurrent apply): keep theirs.
    const other = this.#sockets.get(key);
    if (other) {
      server.close();
      other.owner = gen;
    } else this.#sockets.set(key, bound);
    gen.bound = true;
    gen.bindError = undefined;
  }

  #filterChain(plan: ListenerPlan): FilterChain {
    const active: ActiveFilter[] = plan.filters.map((f) => {
      const scope = {
        function: f.prepared.function,
        listener: plan.name,
        chain: plan.chain,
        hop: f.hop,
        filterIndex: f.index,
      };
      let filter: NetworkFilter;
      try {
        filter = f.prepared.create(this.#deps.helperFor(scope));
      } catch (err) {
        // Fail closed: a filter that could not be built must not let traffic past it.
        this.#deps.logger.error("createFilter threw; the listener denies every connection", {
          listener: plan.name,
          function: f.prepared.function,
          error: String(err),
        });
        this.#deps.emit("rejected", { listener: plan.name, filter: f.name, error: String(err) });
        filter = UNAVAILABLE;
      }
      return { filter, function: f.prepared.function, name: f.name || f.typeUrl };
    });
    return new FilterChain(active, this.#deps.logger);
  }

  #accept(bound: BoundSocket, socket: Socket): void {
    socket.on("error", swallow);
    const gen = bound.owner;
    if (!gen || gen.draining || this.#closed) {
      socket.destroy();
      return;
    }
    const stats = gen.stats;
    gen.live.add(socket);
    stats.connections++;
    stats.active++;
    socket.once("close", () => {
      stats.active--;
      gen.forget(socket);
    });
    const peerAddress = socket.remoteAddress;
    const plan = gen.plan;
    if (peerAddress === undefined) {
      this.#refuse(gen, socket, "untrusted_source");
      return;
    }
    if (plan.trustedPeers && !plan.trustedPeers.has(peerAddress)) {
      this.#refuse(gen, socket, "untrusted_source");
      return;
    }
    if (gen.tunnel) {
      // The tunnel's far end: TLS, the peer's identity, then HTTP/2 CONNECT streams.
      gen.tunnel.accept(socket);
      return;
    }
    const peer: ProxyEndpoint = { address: peerAddress, port: socket.remotePort ?? 0 };
    if (!plan.proxyProtocol) {
      const local: ProxyEndpoint = {
        address: socket.localAddress ?? plan.address,
        port: socket.localPort ?? plan.port,
      };
      this.#filter(gen, socket, peer, peer, local);
      return;
    }
    void readProxyHeader(socket, { timeoutMs: this.#deps.proxyHeaderTimeoutMs }).then((r) =>
      this.#afterHeader(gen, socket, peer, r),
    );
  }

  #afterHeader(gen: Generation, socket: Socket, peer: ProxyEndpoint, r: ProxyParseResult): void {
    if (socket.destroyed) return;
    if (r.state !== "done") {
      this.#refuse(gen, socket, "proxy_header");
      return;
    }
    const h = r.header;
    if (h.command === "PROXY" && h.source && h.destination) {
      this.#filter(gen, socket, peer, h.source, h.destination);
      return;
    }
    // LOCAL (a health check from the previous hop) or UNSPEC: the peer speaks for itself.
    const local: ProxyEndpoint = {
      address: socket.localAddress ?? gen.plan.address,
      port: socket.localPort ?? 0,
    };
    this.#filter(gen, socket, peer, peer, local);
  }

  #filter(
    gen: Generation,
    socket: Socket,
    peer: ProxyEndpoint,
    source: ProxyEndpoint,
    destination: ProxyEndpoint,
  ): void {
    const plan = gen.plan;
    if (plan.sources && !plan.sources.has(source.address)) {
      this.#refuse(gen, socket, "untrusted_source");
      return;
    }
    const conn: Connection = {
      id: ++this.#nextId,
      source,
      destination,
      peer,
      chain: plan.chain,
      hop: plan.hop,
      listener: plan.name,
    };
    gen.chain.decide(conn, (v, accepted) => this.#decided(gen, socket, conn, v, accepted));
  }

  #decided(gen: Generation, socket: Socket, conn: Connection, v: Verdict, accepted: number): void {
    const { clusters } = this.#deps;
    if (!v.allow) {
      gen.stats.deny(v.reason);
      gen.chain.closed(conn, accepted, ZERO_STATS);
      // Closed with nothing sent, as Envoy does; after connection_limit's delay when one is set.
      if (v.delayMs && v.delayMs > 0) setTimeout(() => socket.destroy(), v.delayMs).unref();
      else socket.destroy();
      return;
    }
    if (socket.destroyed) {
      gen.chain.closed(conn, accepted, ZERO_STATS);
      return;
    }
    const plan = gen.plan;
    const cluster = clusters.get(plan.cluster);
    if (!cluster) {
      gen.chain.closed(conn, accepted, ZERO_STATS);
      this.#refuse(gen, socket, "no_cluster");
      return;
    }
    const throttles = gen.chain.wrap(conn);
    const tunneling = plan.tunneling;
    // Through a tunnel the far end writes the PROXY header (from x-catena-downstream), not us.
    const preamble =
      cluster.proxyProtocol && !tunneling
        ? proxyHeaderBuffer(
            tcpProxyHeader(conn.source, conn.destination, { chain: plan.chain, hop: gen.nextHop }),
          )
        : undefined;
    const upstream: Promise<RelayStream> = tunneling
      ? cluster.tunnel(conn.source.address, v.hashKey, plan.maxConnectAttempts, {
          authority: tunneling.hostname,
          headers: formatTunnelHeaders(tunneling, conn),
        })
      : cluster.connect(conn.source.address, v.hashKey, plan.maxConnectAttempts);
    const started = performance.now();
    const relay = new TcpRelay(socket, {
      upstream,
      preamble,
      up: throttles.up,
      down: throttles.down,
      idleTimeoutMs: plan.idleTimeoutMs,
    });
    void relay.done.then((stats) => {
      gen.stats.bytesIn += stats.bytesUp;
      gen.stats.bytesOut += stats.bytesDown;
      if (!stats.connected) gen.stats.refuse("upstream_unavailable");
      const cs: ConnectionStats = {
        bytesUp: stats.bytesUp,
        bytesDown: stats.bytesDown,
        durationMs: performance.now() - started,
        connected: stats.connected,
      };
      if (stats.error) cs.error = stats.error;
      gen.chain.closed(conn, accepted, cs);
    });
  }

  #refuse(gen: Generation, socket: Socket, reason: RefusalReason): void {
    gen.stats.refuse(reason);
    socket.destroy();
  }
}

function socketKey(plan: ListenerPlan): string {
  return formatHostPort(plan.address, plan.port);
}
