// The terminating side of a VPN tunnel (DESIGN.md "VPN hops, tunnels and secrets"): a listener whose
// filter chain has a DownstreamTlsContext and an http_connection_manager that terminates CONNECT.
// The listener's sockets are handed here: mutual TLS 1.3 (our certificate, the mesh roots, the client
// must present a certificate the roots trust), then the peer's URI SAN must match the context's
// matchers, then HTTP/2. Each CONNECT whose :authority names a virtual host opens that route's cluster
// through the host's upstream machinery (PROXY v2 first when the cluster asks, with the client from
// x-catena-downstream: the peer is authenticated), is answered 200 and relayed both ways. No matching
// virtual host: 404; not a CONNECT: 405; no upstream: 503. A handshake or identity failure closes that
// connection only, with a rate-limited `refused` event.
import {
  createServer as createH2Server,
  type Http2Server,
  type Http2Session,
  constants as h2,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { isIP, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from "node:tls";
import type { Logger } from "../../xds/logger.js";
import { authorized, type ConnectTerminationPlan, matchAuthority } from "./connect-config.js";
import { EventRateLimiter } from "./events.js";
import { parseHostPort } from "./options.js";
import { type ProxyEndpoint, proxyHeaderBuffer, tcpProxyHeader } from "./proxy-protocol.js";
import type { TlsMaterial } from "./secrets.js";
import { TcpRelay } from "./tcp-relay.js";
import type { TlsContextPlan } from "./tls-config.js";
import { matchedSan, uriSans } from "./tls-config.js";
import { TUNNEL_SESSION_MEMORY_MB, type TunnelEventSink, type TunnelOptions } from "./tunnel-client.js";
import type { ClusterManager } from "./upstream-cluster.js";

/** The header carrying the original client (Envoy's %DOWNSTREAM_REMOTE_ADDRESS%). */
export const DOWNSTREAM_HEADER = "x-catena-downstream";

/** A TLS handshake must finish within this long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TunnelServerDeps {
  listener: string;
  clusters: ClusterManager;
  events: TunnelEventSink;
  logger: Logger;
  options: TunnelOptions;
  /** Bytes relayed, per CONNECT stream when it ends. */
  onStreamDone?: (bytesUp: number, bytesDown: number, connected: boolean) => void;
}

export interface TunnelServerStats {
  /** TLS connections that passed the handshake and the identity check. */
  sessions: number;
  /** CONNECT streams answered 200. */
  streams: number;
  /** Connections refused at the handshake or identity check. */
  refused: number;
}

const swallow = (): void => {};

export class TunnelServer {
  readonly stats: TunnelServerStats = { sessions: 0, streams: 0, refused: 0 };
  readonly #deps: TunnelServerDeps;
  #plan: ConnectTerminationPlan;
  readonly #tlsPlan: TlsContextPlan;
  readonly #tls: TlsServer;
  readonly #h2: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #sockets = new Set<TLSSocket>();
  readonly #refused = new EventRateLimiter({ perSecond: 10 });
  readonly #uris = new WeakMap<Http2Session, string[]>();
  #materialKey: string;
  #draining = false;

  constructor(
    plan: ConnectTerminationPlan,
    tlsPlan: TlsContextPlan,
    material: TlsMaterial,
    deps: TunnelServerDeps,
  ) {
    this.#deps = deps;
    this.#plan = plan;
    this.#tlsPlan = tlsPlan;
    this.#materialKey = material.key;
    this.#tls = createTlsServer({
      ...material.options,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["h2"],
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.#tls.on("secureConnection", (s: TLSSocket) => this.#secured(s));
    this.#tls.on("tlsClientError", (err: Error & { code?: string }, s: TLSSocket) => {
      this.#refuse(s, "", err.code ? `${err.code}: ${err.message}` : err.message);
    });
    this.#tls.on("error", swallow);
    this.#h2 = createH2Server({
      settings: {
        initialWindowSize: deps.options.streamWindowBytes,
        maxFrameSize: deps.options.maxFrameBytes,
        enableConnectProtocol: false,
      },
      maxSessionMemory: TUNNEL_SESSION_MEMORY_MB,
    });
    this.#h2.on("session", (s: ServerHttp2Session) => {
      this.#sessions.add(s);
      s.on("error", swallow);
      s.once("close", () => this.#sessions.delete(s));
      s.setLocalWindowSize(deps.options.sessionWindowBytes);
      if (this.#draining) s.close();
    });
    this.#h2.on("sessionError", swallow);
    this.#h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
      this.#stream(stream, headers),
    );
  }

  /** A connection the listener accepted (raw TCP): the TLS handshake starts now. */
  accept(socket: Socket): void {
    // The listener accepts half-open TCP (tcp_proxy passes FINs on); TLS and HTTP/2 have their own
    // ends, and a half-open socket under them would keep a vanished peer's session (and its
    // upstream connections) open for ever.
    socket.allowHalfOpen = false;
    this.#tls.emit("connection", socket);
  }

  /** New routes (chains added or removed): the next CONNECT is routed by them; streams keep theirs. */
  setRoutes(plan: ConnectTerminationPlan): void {
    this.#plan = plan;
  }

  /** A new certificate or new roots: new handshakes use them; established sessions keep theirs. */
  setMaterial(m: TlsMaterial): void {
    if (m.key === this.#materialKey) return;
    this.#materialKey = m.key;
    this.#tls.setSecureContext(m.options);
  }

  /** Sessions open now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** GOAWAY to every session: streams in flight finish, new ones go to the new generation. */
  drain(): void {
    this.#draining = true;
    for (const s of this.#sessions) if (!s.closed) s.close();
  }

  destroy(): void {
    this.#draining = true;
    for (const s of this.#sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
  }

  /** The peer's URI SANs, read once per session (its certificate does not change). */
  #peerUris(session: Http2Session | undefined): string[] {
    if (!session) return [];
    let uris = this.#uris.get(session);
    if (!uris) {
      uris = uriSans((session.socket as TLSSocket).getPeerCertificate?.()?.subjectaltname);
      this.#uris.set(session, uris);
    }
    return uris;
  }

  #refuse(s: TLSSocket | undefined, spiffeId: string, reason: string): void {
    this.stats.refused++;
    if (this.#refused.admit()) {
      const peer = s?.remoteAddress ? `${formatAddress(s.remoteAddress)}:${s.remotePort ?? 0}` : "";
      this.#deps.events("refused", {
        role: "server",
        listener: this.#deps.listener,
        peer,
        spiffeId,
        reason,
        suppressed: this.#refused.takeSuppressed(),
      });
    }
    s?.destroy();
  }

  #secured(s: TLSSocket): void {
    s.on("error", swallow);
    const uris = uriSans(s.getPeerCertificate()?.subjectaltname);
    if (s.alpnProtocol !== "h2") {
      this.#refuse(s, uris[0] ?? "", `ALPN ${String(s.alpnProtocol)} is not h2`);
      return;
    }
    const spiffeId = matchedSan(uris, this.#tlsPlan.sanMatchers);
    if (spiffeId === undefined) {
      this.#refuse(s, uris[0] ?? "", `peer identity ${uris.join(" ") || "(none)"} is not allowed here`);
      return;
    }
    this.stats.sessions++;
    this.#sockets.add(s);
    s.setNoDelay(true);
    const peer = `${formatAddress(s.remoteAddress ?? "")}:${s.remotePort ?? 0}`;
    const listener = this.#deps.listener;
    this.#deps.events("established", { role: "server", listener, peer, spiffeId });
    s.once("close", () => {
      this.#sockets.delete(s);
      this.#deps.events("closed", { role: "server", listener, peer, spiffeId, reason: "closed" });
    });
    this.#h2.emit("connection", s);
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on("error", swallow);
    if (headers[h2.HTTP2_HEADER_METHOD] !== h2.HTTP2_METHOD_CONNECT) {
      respond(stream, 405);
      return;
    }
    const a = headers[h2.HTTP2_HEADER_AUTHORITY];
    const authority = (Array.isArray(a) ? a[0] : a) ?? "";
    const route = matchAuthority(this.#plan, authority);
    if (!route) {
      respond(stream, 404);
      return;
    }
    if (this.#plan.policies && !authorized(this.#plan, authority, this.#peerUris(stream.session))) {
      // Admitted to the gateway, but not to this route: another chain's authority (Envoy's RBAC 403).
      respond(stream, 403);
      this.#refuse(undefined, this.#peerUris(stream.session)[0] ?? "", `not authorised for ${authority}`);
      return;
    }
    const cluster = this.#deps.clusters.get(route.cluster);
    if (!cluster) {
      respond(stream, 503);
      return;
    }
    const socket = stream.session?.socket;
    const peer: ProxyEndpoint = { address: socket?.remoteAddress ?? "", port: socket?.remotePort ?? 0 };
    const source = downstreamOf(headers[DOWNSTREAM_HEADER]) ?? peer;
    const tlv = {
      chain: cluster.plan.chain ?? route.chain,
      hop: cluster.plan.hop ?? route.nextHop,
    };
    const preamble = cluster.proxyProtocol ? this.#preamble(tlv, source, authority, socket) : undefined;
    if (cluster.proxyProtocol && !preamble) {
      respond(stream, 400);
      return;
    }
    cluster.connect(source.address, undefined).then(
      (up) => {
        if (stream.destroyed || stream.closed) {
          up.destroy();
          return;
        }
        this.stats.streams++;
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
        const relay = new TcpRelay(stream, { upstream: up, preamble });
        const done = this.#deps.onStreamDone;
        if (done) void relay.done.then((r) => done(r.bytesUp, r.bytesDown, r.connected));
      },
      () => respond(stream, 503),
    );
  }

  #preamble(
    route: { chain: string | undefined; hop: number | undefined },
    source: ProxyEndpoint,
    authority: string,
    socket: Socket | undefined,
  ): Buffer | undefined {
    // The destination the client dialled: the chain's port is the authority's (A = "<service>:<port>").
    const port = parseHostPort(authority)?.port ?? socket?.localPort ?? 0;
    const destination: ProxyEndpoint = { address: socket?.localAddress ?? "", port };
    try {
      return proxyHeaderBuffer(
        tcpProxyHeader(source, destination, {
          ...(route.chain !== undefined ? { chain: route.chain } : {}),
          ...(route.hop !== undefined ? { hop: route.hop } : {}),
        }),
      );
    } catch {
      return undefined;
    }
  }
}

function respond(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: status }, { endStream: true });
  } catch {
    stream.destroy();
  }
}

function formatAddress(a: string): string {
  return a.includes(":") ? `[${a}]` : a;
}

/** "1.2.3.4:5" or "[::1]:5" → endpoint; undefined when absent or malformed. */
function downstreamOf(v: string | string[] | undefined): ProxyEndpoint | undefined {
  const text = Array.isArray(v) ? v[0] : v;
  if (!text) return undefined;
  const hp = parseHostPort(text);
  return hp && isIP(hp.host) !== 0 ? { address: hp.host, port: hp.port } : undefined;
}
