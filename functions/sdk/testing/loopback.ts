// Test support: real TCP listeners and clients on 127.0.0.1, closed reliably after each test.
import { once } from "node:events";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";

export interface Listener {
  server: Server;
  port: number;
  /** Every socket the server accepted, so close() can destroy them. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

export async function listen(onSocket: (s: Socket) => void, host = "127.0.0.1", port = 0): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    onSocket(s);
  });
  server.listen(port, host);
  await once(server, "listening");
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no TCP address");
  return {
    server,
    port: addr.port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function connect(port: number, host = "127.0.0.1"): Promise<Socket> {
  const s = netConnect({ port, host, allowHalfOpen: true });
  await once(s, "connect");
  return s;
}

/** Resolves with everything the socket sends until it ends. */
export function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  // A socket paused earlier (by a header reader) does not resume just because a listener was added.
  s.resume();
  return new Promise((resolve, reject) => {
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
