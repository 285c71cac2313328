// The instance's admin endpoint: /healthz, /readyz (the first xDS answer is in the zone), /stats (JSON
// counters) and /metrics (Prometheus text). Its address goes into the xDS node metadata as `admin`.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { formatHostPort, type HostPort } from "./options.js";

export interface AdminSource {
  /** undefined when ready, else why not. */
  notReady(): string | undefined;
  stats(): Record<string, number>;
}

export class AdminServer {
  readonly #server: Server;
  readonly address: string;

  private constructor(server: Server, address: string) {
    this.#server = server;
    this.address = address;
  }

  static async start(at: HostPort, source: AdminSource): Promise<AdminServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const send = (code: number, type: string, body: string) => {
        res.writeHead(code, { "content-type": type });
        res.end(body);
      };
      const text = "text/plain; charset=utf-8";
      switch (path) {
        case "/healthz":
          return send(200, text, "ok\n");
        case "/readyz": {
          const why = source.notReady();
          return why === undefined ? send(200, text, "ready\n") : send(503, text, `${why}\n`);
        }
        case "/stats":
          return send(200, "application/json", JSON.stringify(source.stats()));
        case "/metrics": {
          const lines = Object.entries(source.stats()).map(
            ([k, v]) => `catena_discovery_${k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)} ${v}`,
          );
          return send(200, "text/plain; version=0.0.4", `${lines.join("\n")}\n`);
        }
        default:
          return send(404, text, "not found (try /healthz, /readyz, /stats, /metrics)\n");
      }
    });
    server.keepAliveTimeout = 5000;
    server.listen(at.port, at.host);
    await Promise.race([
      once(server, "listening"),
      once(server, "error").then(([err]) => {
        throw err;
      }),
    ]);
    const a = server.address() as AddressInfo;
    return new AdminServer(server, formatHostPort(a.address, a.port));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
