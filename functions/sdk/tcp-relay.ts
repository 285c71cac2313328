// Relays one accepted connection to its upstream. The upstream connection is opened as soon as the
// client is accepted, before it sends anything, so protocols where the server speaks first work; an
// optional PROXY v2 header goes out ahead of any client byte. Bytes flow both ways through Pumps
// (back-pressure, optional throttles), a FIN in one direction is passed on as a half-close, and an
// error on either socket destroys exactly this pair and nothing else. Either side may also be an HTTP/2
// stream (a VPN tunnel's CONNECT): an abort is then RST_STREAM CANCEL instead of a TCP reset.
import { constants as h2 } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Pump, type Throttle } from "./pump.js";

/** What a relay moves bytes between: a TCP socket, or an HTTP/2 stream. */
export type RelayStream = Duplex & { setTimeout?(ms: number, cb: () => void): unknown };

export interface UpstreamAddress {
  host: string;
  port: number;
  /** Source address to bind: each instance sends from its own address. */
  localAddress?: string;
  /** Fail the connect after this long; default 10 s. */
  timeoutMs?: number;
}

/** Connects with half-close enabled; resolves once connected, rejects on error or timeout. */
export function connectUpstream(address: UpstreamAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({
      host: address.host,
      port: address.port,
      localAddress: address.localAddress,
      allowHalfOpen: true,
    });
    const timer = setTimeout(
      () => s.destroy(new Error(`connect to ${address.host}:${address.port} timed out`)),
      address.timeoutMs ?? 10_000,
    );
    s.once("connect", () => {
      clearTimeout(timer);
      s.off("error", onError);
      resolve(s);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    };
    s.once("error", onError);
  });
}

export interface RelayOptions {
  /** A socket (connecting or connected, allowHalfOpen) or a promise of a connected one (or a stream). */
  upstream: RelayStream | Promise<RelayStream>;
  /** Written to the upstream before anything else (an encoded PROXY v2 header). */
  preamble?: Uint8Array;
  /** client → upstream */
  up?: Throttle;
  /** upstream → client */
  down?: Throttle;
  /** Destroy the pair after this long without bytes either way; default none. */
  idleTimeoutMs?: number;
}

export interface RelayStats {
  bytesUp: number;
  bytesDown: number;
  /** Whether an upstream connection was ever established. */
  connected: boolean;
  /** The first error that ended the relay, if one did. */
  error?: Error;
}

export class TcpRelay {
  /** Resolves (never rejects) once both sockets are closed. */
  readonly done: Promise<RelayStats>;
  private upstream: RelayStream | undefined;
  private upPump: Pump | undefined;
  private downPump: Pump | undefined;
  private error: Error | undefined;
  private connected = false;
  private finished = false;
  private resolveDone!: (s: RelayStats) => void;

  /** The client must have been accepted with allowHalfOpen: true for half-closes to pass through. */
  constructor(
    private readonly client: RelayStream,
    private readonly options: RelayOptions,
  ) {
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
    client.on("error", this.onError);
    client.on("close", this.onClose);
    if (options.idleTimeoutMs) {
      client.setTimeout?.(options.idleTimeoutMs, () => this.destroy(new Error("relay idle timeout")));
    }
    const u = options.upstream;
    if (u instanceof Promise) {
      u.then(
        (s) => this.attach(s),
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    } else {
      this.attach(u);
    }
  }

  /** Half-closes both directions and waits for the peers to finish. */
  async close(): Promise<RelayStats> {
    if (!this.client.writableEnded) this.client.end();
    if (this.upstream && !this.upstream.writableEnded) this.upstream.end();
    return this.done;
  }

  /**
   * Aborts both sockets. Idempotent. With an error, the peers get a TCP reset rather than a FIN: a
   * FIN would tell them the stream ended cleanly, and a truncated request could pass for a whole one.
   */
  destroy(err?: Error): void {
    if (err && !this.error) this.error = err;
    this.abort(this.client);
    if (this.upstream) this.abort(this.upstream);
    else this.settle();
  }

  private abort(s: RelayStream): void {
    if (s.destroyed) return;
    if (!this.error) {
      s.destroy();
      return;
    }
    const sock = s as Partial<Socket>;
    const stream = s as Duplex & { close?(code?: number): void; rstCode?: number };
    if (typeof sock.resetAndDestroy === "function") {
      if (!sock.connecting && sock.readyState !== "closed") sock.resetAndDestroy();
      else s.destroy();
    } else if (typeof stream.close === "function" && "rstCode" in stream) {
      stream.close(h2.NGHTTP2_CANCEL);
    } else s.destroy();
  }

  private attach(s: RelayStream): void {
    this.upstream = s;
    s.on("error", this.onError);
    s.on("close", this.onClose);
    if (this.client.destroyed || this.finished) {
      s.destroy();
      return;
    }
    if (this.options.preamble) s.write(this.options.preamble);
    const start = () => {
      this.connected = true;
      if (this.options.idleTimeoutMs)
        s.setTimeout?.(this.options.idleTimeoutMs, () => this.destroy(new Error("relay idle timeout")));
    };
    if ((s as Partial<Socket>).connecting === true) s.once("connect", start);
    else start();
    // Pumping may start before the connect completes: writes queue in the socket, bounded by its
    // high-water mark, and the client is paused beyond that.
    this.upPump = new Pump(this.client, s, { throttle: this.options.up });
    this.downPump = new Pump(s, this.client, { throttle: this.options.down });
  }

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  private readonly onClose = (): void => {
    // One side closed: a close without a prior end is an abort, which the other side must see too.
    const c = this.client;
    const u = this.upstream;
    if (
      (c.destroyed && !c.readableEnded && u && !u.destroyed) ||
      (u?.destroyed && !u.readableEnded && !c.destroyed)
    ) {
      this.destroy(new Error("peer closed without end"));
    }
    if (c.destroyed && (!u || u.destroyed)) this.settle();
  };

  private settle(): void {
    if (this.finished) return;
    if (!this.client.destroyed || (this.upstream && !this.upstream.destroyed)) return;
    this.finished = true;
    this.upPump?.stop();
    this.downPump?.stop();
    const stats: RelayStats = {
      bytesUp: this.upPump?.bytes ?? 0,
      bytesDown: this.downPump?.bytes ?? 0,
      connected: this.connected,
    };
    if (this.error) stats.error = this.error;
    this.resolveDone(stats);
  }
}

export function relay(client: RelayStream, options: RelayOptions): TcpRelay {
  return new TcpRelay(client, options);
}
