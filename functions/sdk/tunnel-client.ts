// The initiating side of a VPN tunnel (DESIGN.md "VPN hops, tunnels and secrets"): a tcp_proxy with
// tunneling_config turns each accepted connection into an HTTP/2 CONNECT stream on one mutual-TLS 1.3
// session per upstream endpoint. A session is opened on demand from the instance's own address, checked
// against the context's SAN matchers, kept alive with PINGs (closed when one goes unanswered) and
// re-established with jittered backoff after failures. A new certificate or new roots make a new
// session for new streams while the old one drains: it is closed (GOAWAY) and ends once its streams
// have, so a rotation drops nothing. Per stream nothing is logged or allocated beyond the request.
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants as h2,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import { isIP, connect as netConnect } from "node:net";
import { type PeerCertificate, connect as tlsConnect } from "node:tls";
import type { Logger } from "../../xds/logger.js";
import type { Endpoint } from "../loadbalancer/endpoint.js";
import { endpointKey } from "../loadbalancer/endpoint.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import { EventRateLimiter } from "./events.js";
import { formatHostPort } from "./options.js";
import type { TlsMaterial, TlsMaterials } from "./secrets.js";
import { matchedSan, type TlsContextPlan, uriSans } from "./tls-config.js";

export interface TunnelOptions {
  /** HTTP/2 PING interval on every tunnel session; a PING unanswered by the next one closes it. */
  keepaliveMs: number;
  /** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowBytes: number;
  /** Per-session receive window. */
  sessionWindowBytes: number;
  /** Largest DATA frame we accept (SETTINGS_MAX_FRAME_SIZE): fewer, larger frames cost less per byte. */
  maxFrameBytes: number;
  /** Reconnect backoff after a failed session: first delay and cap (jittered ±50%). */
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_TUNNEL_OPTIONS: TunnelOptions = Object.freeze({
  keepaliveMs: 10_000,
  streamWindowBytes: 4 * 1024 * 1024,
  sessionWindowBytes: 64 * 1024 * 1024,
  // 16 KiB (HTTP/2's default): larger frames measured no faster (bench/datapath-vpn.ts).
  maxFrameBytes: 16_384,
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
});

/** nghttp2's memory cap per session, in MB: windows this large must fit. */
export const TUNNEL_SESSION_MEMORY_MB = 256;

/** vpn events: a tunnel connection established or closed, a peer refused (not the host's own `connected`). */
export type TunnelEventSink = (
  verb: "established" | "closed" | "refused",
  data: Record<string, unknown>,
) => void;

export interface TunnelRequest {
  /** :authority (tunneling_config.hostname). */
  authority: string;
  /** Extra request headers (headers_to_add, already formatted for this connection). */
  headers: OutgoingHttpHeaders | undefined;
}

export interface TunnelPoolDeps {
  cluster: string;
  localAddress: string | undefined;
  materials: TlsMaterials;
  options: TunnelOptions;
  events: TunnelEventSink;
  logger: Logger;
}

interface PeerState {
  session: ClientHttp2Session | undefined;
  connecting: Promise<ClientHttp2Session> | undefined;
  failures: number;
  retryAt: number;
}

const usable = new WeakSet<ClientHttp2Session>();

const swallow = (): void => {};

function jitter(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}

export class TunnelPool {
  readonly #deps: TunnelPoolDeps;
  #plan: TlsContextPlan;
  #materialKey: string | undefined;
  readonly #peers = new Map<string, PeerState>();
  /** Sessions still open, current or draining. */
  readonly #open = new Set<ClientHttp2Session>();
  readonly #waiters = new Set<() => void>();
  readonly #unsubscribe: () => void;
  readonly #refused = new EventRateLimiter({ perSecond: 10 });
  #closed = false;
  /** Sessions established since start (for tests and metrics). */
  sessionsOpened = 0;

  constructor(plan: TlsContextPlan, deps: TunnelPoolDeps) {
    this.#plan = plan;
    this.#deps = deps;
    this.#materialKey = deps.materials.material(plan)?.key;
    this.#unsubscribe = deps.materials.store.onChange(() => this.#secretsChanged());
  }

  /** Sessions open now (draining ones included). */
  get openSessions(): number {
    return this.#open.size;
  }

  /** The cluster's TLS context changed: new streams get sessions made with the new one. */
  setPlan(plan: TlsContextPlan): void {
    this.#plan = plan;
    this.#secretsChanged(true);
  }

  /** A CONNECT stream to `e` that the peer answered 200; rejects on any failure within timeoutMs. */
  async open(e: Endpoint, req: TunnelRequest, timeoutMs: number): Promise<ClientHttp2Stream> {
    const deadline = performance.now() + timeoutMs;
    const session = await this.#session(e, deadline);
    return this.#request(session, e, req, deadline);
  }

  /** Endpoints that left the cluster: their sessions drain. */
  retainEndpoints(keys: ReadonlySet<string>): void {
    for (const [k, p] of this.#peers) {
      if (keys.has(k)) continue;
      this.#peers.delete(k);
      if (p.session) this.#drain(p.session);
    }
  }

  /** Drains every session (each ends once its streams have). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (const p of this.#peers.values()) if (p.session) this.#drain(p.session);
    this.#peers.clear();
    for (const w of [...this.#waiters]) w();
  }

  /** Aborts every session and stream at once. */
  destroy(): void {
    this.close();
    for (const s of [...this.#open]) s.destroy();
  }

  #secretsChanged(force = false): void {
    const m = this.#deps.materials.material(this.#plan);
    if (m && (force || m.key !== this.#materialKey)) {
      const rotated = this.#materialKey !== undefined;
      this.#materialKey = m.key;
      // New certificate or roots: new streams go to new sessions, the old ones drain.
      if (rotated) for (const p of this.#peers.values()) if (p.session) this.#drain(p.session);
    }
    if (m) for (const w of [...this.#waiters]) w();
  }

  #drain(s: ClientHttp2Session): void {
    usable.delete(s);
    for (const p of this.#peers.values()) if (p.session === s) p.session = undefined;
    if (!s.closed && !s.destroyed) s.close();
  }

  async #session(e: Endpoint, deadline: number): Promise<ClientHttp2Session> {
    if (this.#closed) throw new SdkError(SDK_ERROR.closed, `cluster ${this.#deps.cluster} is closed`);
    const key = endpointKey(e);
    let p = this.#peers.get(key);
    if (!p) {
      p = { session: undefined, connecting: undefined, failures: 0, retryAt: 0 };
      this.#peers.set(key, p);
    }
    if (p.session && usable.has(p.session)) return p.session;
    if (p.connecting) return withDeadline(p.connecting, deadline, `tunnel to ${key}`);
    const peer = p;
    const connecting = (async () => {
      const m = await this.#material(deadline);
      const wait = peer.retryAt - performance.now();
      if (wait > 0) {
        if (performance.now() + wait > deadline)
          throw new SdkError(SDK_ERROR.upstreamUnavailable, `tunnel to ${key}: backing off after failures`);
        await new Promise((r) => setTimeout(r, wait));
      }
      return this.#connect(e, m, deadline);
    })();
    peer.connecting = connecting;
    try {
      const s = await connecting;
      peer.failures = 0;
      peer.retryAt = 0;
      if (this.#peers.get(key) === peer && !this.#closed) peer.session = s;
      else this.#drain(s);
      return s;
    } catch (err) {
      peer.failures++;
      const d = Math.min(
        this.#deps.options.backoffMaxMs,
        this.#deps.options.backoffInitialMs * 2 ** Math.min(peer.failures - 1, 16),
      );
      peer.retryAt = performance.now() + jitter(d);
      throw err;
    } finally {
      peer.connecting = undefined;
    }
  }

  /** Our material, waiting (until the deadline) for secrets that have not arrived. */
  async #material(deadline: number): Promise<TlsMaterial> {
    for (;;) {
      if (this.#closed) throw new SdkError(SDK_ERROR.closed, `cluster ${this.#deps.cluster} is closed`);
      const m = this.#deps.materials.material(this.#plan);
      if (m) return m;
      const left = deadline - performance.now();
      if (left <= 0) {
        const missing = this.#deps.materials.missing(this.#plan).join(", ");
        throw new SdkError(
          SDK_ERROR.upstreamUnavailable,
          `${this.#deps.cluster}: waiting for secrets ${missing}`,
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.#waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  #connect(e: Endpoint, m: TlsMaterial, deadline: number): Promise<ClientHttp2Session> {
    const o = this.#deps.options;
    const local = this.#deps.localAddress;
    const sameFamily = local !== undefined && isIP(local) === isIP(e.address);
    const peerAddress = formatHostPort(e.address, e.port);
    const matchers = this.#plan.sanMatchers;
    const sni = this.#plan.sni;
    let spiffeId = "";
    let refusedWhy: string | undefined;
    return new Promise((resolve, reject) => {
      const session = h2connect(`https://${peerAddress}`, {
        settings: {
          initialWindowSize: o.streamWindowBytes,
          maxFrameSize: o.maxFrameBytes,
          enablePush: false,
        },
        maxSessionMemory: TUNNEL_SESSION_MEMORY_MB,
        createConnection: () =>
          tlsConnect({
            // TCP from our own address (the peer's firewall and the next hop see who we are).
            socket: netConnect({
              host: e.address,
              port: e.port,
              localAddress: sameFamily ? local : undefined,
              noDelay: true,
            }),
            secureContext: m.context,
            ALPNProtocols: ["h2"],
            ...(sni ? { servername: sni } : {}),
            checkServerIdentity: (_host: string, cert: PeerCertificate) => {
              const uris = uriSans(cert.subjectaltname);
              const ok = matchedSan(uris, matchers);
              if (ok === undefined) {
                refusedWhy = `peer identity ${uris.join(" ") || "(none)"} matches no SAN matcher`;
                spiffeId = uris[0] ?? "";
                return new Error(refusedWhy);
              }
              spiffeId = ok;
              return undefined;
            },
          }),
      });
      let settled = false;
      const timer = setTimeout(
        () => session.destroy(new Error(`tunnel to ${peerAddress}: connect timed out`)),
        Math.max(1, deadline - performance.now()),
      );
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        const reason = refusedWhy ?? err.message;
        if (this.#refused.admit())
          this.#deps.events("refused", {
            role: "client",
            cluster: this.#deps.cluster,
            peer: peerAddress,
            spiffeId,
            reason,
            suppressed: this.#refused.takeSuppressed(),
          });
        reject(
          new SdkError(SDK_ERROR.upstreamUnavailable, `tunnel to ${peerAddress}: ${reason}`, { cause: err }),
        );
      };
      session.on("error", fail);
      session.once("close", () => fail(new Error("the peer closed the connection during setup")));
      // Resolved on the peer's SETTINGS, not on the TLS handshake: with TLS 1.3 a server that refuses
      // our certificate says so only after our side of the handshake has finished.
      session.once("remoteSettings", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.off("error", fail);
        this.#established(session, peerAddress, spiffeId);
        resolve(session);
      });
    });
  }

  #established(session: ClientHttp2Session, peer: string, spiffeId: string): void {
    const o = this.#deps.options;
    this.sessionsOpened++;
    this.#open.add(session);
    usable.add(session);
    session.setLocalWindowSize(o.sessionWindowBytes);
    let awaitingPong = false;
    const ping = setInterval(() => {
      if (session.destroyed) return;
      if (awaitingPong) {
        session.destroy(new Error("keepalive PING unanswered"));
        return;
      }
      awaitingPong = true;
      try {
        session.ping((err) => {
          awaitingPong = false;
          // A PING cancelled by our own close() (a drain) is no sign of a dead peer.
          if (err && !session.closed && (err as { code?: string }).code !== "ERR_HTTP2_PING_CANCEL")
            session.destroy(err);
        });
      } catch {
        // Closing: nothing left to keep alive.
      }
    }, o.keepaliveMs);
    ping.unref();
    let reason = "closed";
    session.on("error", (err) => {
      reason = err.message;
    });
    session.on("goaway", (code: number) => {
      usable.delete(session);
      for (const p of this.#peers.values()) if (p.session === session) p.session = undefined;
      if (code !== h2.NGHTTP2_NO_ERROR) reason = `GOAWAY ${code}`;
      else reason = "GOAWAY";
    });
    session.once("close", () => {
      clearInterval(ping);
      usable.delete(session);
      this.#open.delete(session);
      for (const p of this.#peers.values()) if (p.session === session) p.session = undefined;
      this.#deps.events("closed", {
        role: "client",
        cluster: this.#deps.cluster,
        peer,
        spiffeId,
        reason,
      });
    });
    this.#deps.events("established", { role: "client", cluster: this.#deps.cluster, peer, spiffeId });
  }

  #request(
    session: ClientHttp2Session,
    e: Endpoint,
    req: TunnelRequest,
    deadline: number,
  ): Promise<ClientHttp2Stream> {
    return new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = {
        ...req.headers,
        [h2.HTTP2_HEADER_METHOD]: h2.HTTP2_METHOD_CONNECT,
        [h2.HTTP2_HEADER_AUTHORITY]: req.authority,
      };
      let stream: ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: false });
      } catch (err) {
        reject(
          new SdkError(
            SDK_ERROR.upstreamUnavailable,
            `tunnel to ${endpointKey(e)}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
        return;
      }
      let settled = false;
      const timer = setTimeout(
        () => fail(new Error("no response to CONNECT in time")),
        Math.max(1, deadline - performance.now()),
      );
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.off("response", onResponse);
        if (!stream.destroyed) stream.close(h2.NGHTTP2_CANCEL);
        reject(
          new SdkError(SDK_ERROR.upstreamUnavailable, `tunnel to ${endpointKey(e)}: ${err.message}`, {
            cause: err,
          }),
        );
      };
      const onResponse = (h: IncomingHttpHeaders) => {
        const status = Number(h[h2.HTTP2_HEADER_STATUS]);
        if (status !== 200) {
          fail(new Error(`CONNECT ${req.authority} answered ${status}`));
          return;
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.off("error", fail);
        stream.off("close", onClose);
        // The relay attaches its own handlers; until then an error must not go unhandled.
        stream.on("error", swallow);
        resolve(stream);
      };
      const onClose = () => fail(new Error(`CONNECT stream closed (code ${stream.rstCode ?? 0})`));
      stream.once("response", onResponse);
      stream.on("error", fail);
      stream.once("close", onClose);
    });
  }
}

function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const left = deadline - performance.now();
  if (left <= 0) return Promise.reject(new SdkError(SDK_ERROR.upstreamUnavailable, `${what}: timed out`));
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new SdkError(SDK_ERROR.upstreamUnavailable, `${what}: timed out`)),
      left,
    );
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}
