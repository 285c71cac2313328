// The DNS listeners: one UDP socket and one TCP server on the same address and port. TCP carries
// 2-byte length-prefixed messages, several per connection, answered in order.
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { createServer, type Server, type Socket as TcpSocket } from "node:net";
import type { Responder } from "./responder.js";

export interface DnsServerOptions {
  host: string;
  /** 0: the OS picks a port free for both UDP and TCP. */
  port: number;
  responder: Responder;
  /** A TCP connection idle this long is closed. */
  tcpIdleTimeoutMs: number;
  /** TCP connections open at once, at most; more are closed at accept. */
  maxTcpConnections: number;
  /** false in a cluster worker: the UDP socket and TCP port are the primary's, shared by all workers. */
  exclusive?: boolean;
}

export class DnsServer {
  readonly #o: DnsServerOptions;
  readonly #udp: Socket;
  readonly #tcp: Server;
  readonly #conns = new Set<TcpSocket>();
  #port = 0;
  #closed = false;

  private constructor(o: DnsServerOptions, udp: Socket, tcp: Server) {
    this.#o = o;
    this.#udp = udp;
    this.#tcp = tcp;
  }

  static async start(o: DnsServerOptions): Promise<DnsServer> {
    const family = o.host.includes(":") ? "udp6" : "udp4";
    // Port 0: take UDP's port for TCP too; another process may hold it for TCP, so try again.
    for (let attempt = 0; ; attempt++) {
      const exclusive = o.exclusive ?? true;
      const udp = createSocket({ type: family, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      await bind(udp, o.host, o.port, exclusive);
      const port = udp.address().port;
      const tcp = createServer({ noDelay: true });
      try {
        tcp.listen({ host: o.host, port, exclusive });
        await Promise.race([
          once(tcp, "listening"),
          once(tcp, "error").then(([err]) => {
            throw err;
          }),
        ]);
      } catch (err) {
        udp.close();
        if (o.port !== 0 || attempt >= 10) throw err;
        continue;
      }
      const server = new DnsServer(o, udp, tcp);
      server.#port = port;
      server.#wire();
      return server;
    }
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    const h = this.#o.host;
    return h.includes(":") ? `[${h}]:${this.#port}` : `${h}:${this.#port}`;
  }

  #wire(): void {
    const { responder } = this.#o;
    const udp = this.#udp;
    udp.on("message", (msg, rinfo) => {
      const answer = responder.respond(msg, "udp");
      if (answer === undefined) return;
      if (answer instanceof Promise) {
        void answer.then((a) => {
          if (a && !this.#closed) udp.send(a, rinfo.port, rinfo.address);
        });
        return;
      }
      udp.send(answer, rinfo.port, rinfo.address);
    });
    // A send to a vanished client reports an error on the socket; it concerns that client only.
    udp.on("error", () => undefined);
    this.#tcp.on("connection", (socket) => this.#onTcp(socket));
    this.#tcp.on("error", () => undefined);
  }

  #onTcp(socket: TcpSocket): void {
    if (this.#closed || this.#conns.size >= this.#o.maxTcpConnections) {
      socket.destroy();
      return;
    }
    this.#conns.add(socket);
    socket.setTimeout(this.#o.tcpIdleTimeoutMs, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.#conns.delete(socket));
    let buffered: Buffer = Buffer.alloc(0);
    // Answers go out in query order even when one is forwarded and slower.
    let chain: Promise<void> = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) break;
        const message = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        const answer = this.#o.responder.respond(message, "tcp");
        chain = chain.then(async () => {
          const a = await answer;
          if (!a || socket.destroyed) return;
          const frame = Buffer.allocUnsafe(2 + a.length);
          frame.writeUInt16BE(a.length, 0);
          frame.set(a, 2);
          socket.write(frame);
        });
      }
    });
  }

  /** Stops both listeners and closes open TCP connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#conns) s.destroy();
    await Promise.all([
      new Promise<void>((r) => this.#udp.close(() => r())),
      new Promise<void>((r) => this.#tcp.close(() => r())),
    ]);
  }
}

/** A port free for both UDP and TCP on host (for workers that must all bind the same one). */
export async function freeDnsPort(host: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const udp = createSocket(host.includes(":") ? "udp6" : "udp4");
    await bind(udp, host, 0, true);
    const port = udp.address().port;
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen({ host, port, exclusive: true }, () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (ok) await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) return port;
    if (attempt >= 10) throw new Error(`no port free for both UDP and TCP on ${host}`);
  }
}

function bind(socket: Socket, host: string, port: number, exclusive: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once("error", onError);
    socket.bind({ address: host, port, exclusive }, () => {
      socket.off("error", onError);
      resolve();
    });
  });
}
