// Forwarding of names outside the zone to one upstream resolver: the query goes out as it came (a new
// id over UDP, mapped back on the answer), over UDP for UDP clients and over TCP for TCP clients.
import { createSocket, type Socket } from "node:dgram";
import { connect } from "node:net";

export interface UpstreamOptions {
  host: string;
  port: number;
  timeoutMs: number;
}

interface Pending {
  id: number;
  timer: NodeJS.Timeout;
  done: (answer: Buffer | undefined) => void;
}

/** At most this many forwarded UDP queries in flight (the 16-bit id space, less a margin). */
const MAX_IN_FLIGHT = 60_000;

export class Upstream {
  readonly #o: UpstreamOptions;
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  #nextId = Math.floor(Math.random() * 65536);
  #closed = false;

  constructor(options: UpstreamOptions) {
    this.#o = options;
    this.#socket = createSocket(options.host.includes(":") ? "udp6" : "udp4");
    this.#socket.on("message", (msg) => this.#onAnswer(msg));
    // An ICMP error for one query must not end the forwarder.
    this.#socket.on("error", () => undefined);
    this.#socket.unref();
  }

  /** Resolves to the upstream's answer (with the client's id), or undefined on timeout or failure. */
  forwardUdp(query: Uint8Array): Promise<Buffer | undefined> {
    if (this.#closed || query.length < 12 || this.#pending.size >= MAX_IN_FLIGHT)
      return Promise.resolve(undefined);
    let id = this.#nextId;
    while (this.#pending.has(id)) id = (id + 1) & 0xffff;
    this.#nextId = (id + 1) & 0xffff;
    const clientId = (query[0] as number) * 256 + (query[1] as number);
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, this.#o.timeoutMs);
      this.#pending.set(id, {
        id: clientId,
        timer,
        done: resolve,
      });
      this.#socket.send(out, this.#o.port, this.#o.host);
    });
  }

  /** One TCP connection per query (TCP clients are rare and answers may be large). */
  forwardTcp(query: Uint8Array): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const socket = connect({ host: this.#o.host, port: this.#o.port });
      let buf = Buffer.alloc(0);
      const finish = (answer: Buffer | undefined) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(answer);
      };
      const timer = setTimeout(() => finish(undefined), this.#o.timeoutMs);
      socket.on("error", () => finish(undefined));
      socket.on("close", () => finish(undefined));
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length >= 2 + len) finish(buf.subarray(2, 2 + len));
      });
      const frame = Buffer.allocUnsafe(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      frame.set(query, 2);
      socket.end(frame);
    });
  }

  #onAnswer(msg: Buffer): void {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    msg.writeUInt16BE(p.id, 0);
    p.done(msg);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.done(undefined);
    }
    this.#pending.clear();
    this.#socket.close();
  }
}
