// The instance's admin endpoint: /healthz (the process serves), /readyz (the first config is applied),
// /metrics (Prometheus text). Its address goes into the xDS node metadata as `admin`.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { HostMetrics } from "./metrics.js";
import { formatHostPort, type HostPort } from "./options.js";

export interface AdminProbe {
  healthy(): boolean;
  /** undefined when ready, else why not. */
  notReady(): string | undefined;
}

export class AdminServer {
  readonly #server: Server;
  #address = "";
  #closed = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(at: HostPort, probe: AdminProbe, metrics: HostMetrics): Promise<AdminServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const text = (code: number, body: string) => {
        res.writeHead(code, { "content-type": "text/plain; charset=utf-8" });
        res.end(`${body}\n`);
      };
      if (req.method !== "GET" && req.method !== "HEAD") return text(405, "method not allowed");
      switch (path) {
        case "/healthz":
          return probe.healthy() ? text(200, "ok") : text(503, "shutting down");
        case "/readyz": {
          const why = probe.notReady();
          return why === undefined ? text(200, "ready") : text(503, why);
        }
        case "/metrics":
          return metrics.serve(req, res);
        default:
          return text(404, "not found (try /healthz, /readyz, /metrics)");
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
    const admin = new AdminServer(server);
    const a = server.address() as AddressInfo;
    admin.#address = formatHostPort(a.address, a.port);
    return admin;
  }

  /** host:port actually bound. */
  get address(): string {
    return this.#address;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
