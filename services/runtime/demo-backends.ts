// The demo's backends (`catena up --demo`): one TCP server per endpoint of the example's Service.
// An HTTP request gets a one-line answer naming the backend; any other bytes are echoed back, so
// both `curl` and a raw TCP client show a connection crossing the chain.
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";

export interface DemoBackend {
  name: string;
  address: string;
  port: number;
}

export interface DemoBackends {
  backends: DemoBackend[];
  /** The peer address of every connection open now (the last hop of a chain, or a client). */
  clients(): string[];
  close(): Promise<void>;
}

const HTTP_REQUEST = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) \S+ HTTP\/1\.[01]\r?\n/;
const METHODS = ["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH "];

/** Whether the bytes so far may still become an HTTP request line (else: echo at once). */
function mayBeHttp(text: string): boolean {
  return METHODS.some((m) => m.startsWith(text) || text.startsWith(m));
}

function serve(name: string, socket: Socket): void {
  let head = Buffer.alloc(0);
  let decided = false;
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: Buffer) => {
    if (decided) return;
    head = Buffer.concat([head, chunk]);
    const text = head.toString("latin1");
    if (mayBeHttp(text) && !text.includes("\n") && head.length < 1024) return;
    decided = true;
    if (!HTTP_REQUEST.test(text)) {
      socket.write(head);
      socket.pipe(socket);
      return;
    }
    const local = `${socket.localAddress}:${socket.localPort}`;
    const body = `hello from ${name} (${local}), client ${socket.remoteAddress}\n`;
    socket.end(
      `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  // An echo client that half-closes gets its last bytes back, then the end.
  socket.on("end", () => {
    if (!decided && head.length > 0) socket.write(head);
    socket.end();
  });
}

async function listenOn(server: Server, address: string, port: number): Promise<number> {
  server.listen({ host: address, port });
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([err]) => {
      throw err;
    }),
  ]);
  return (server.address() as { port: number }).port;
}

/**
 * Starts a backend at each wanted address and port; a port already taken moves to one the OS
 * picks (the caller then points the Service at where the backend really is).
 */
export async function startDemoBackends(wanted: { address: string; port: number }[]): Promise<DemoBackends> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const backends: DemoBackend[] = [];
  try {
    for (const [i, w] of wanted.entries()) {
      const name = `web-backend-${i + 1}`;
      const make = () =>
        createServer({ allowHalfOpen: true }, (s) => {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          serve(name, s);
        });
      let server = make();
      let port: number;
      try {
        port = await listenOn(server, w.address, w.port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
        server = make();
        port = await listenOn(server, w.address, 0);
      }
      servers.push(server);
      backends.push({ name, address: w.address, port });
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  return {
    backends,
    clients: () => [...sockets].flatMap((s) => (s.remoteAddress ? [s.remoteAddress] : [])),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
