// The primary's side of `--dns-workers N`: forks the workers (node:cluster, so they share one UDP socket
// and one TCP port), keeps each one's zone in step, replaces a worker that dies, and sums their counters.
import cluster, { type Worker } from "node:cluster";
import { fileURLToPath } from "node:url";
import type { FromWorker, ToWorker, WorkerInit } from "./dns-worker.js";
import { emptyStats, type ResponderStats } from "./responder.js";
import type { ZoneEndpoint } from "./zone.js";

export interface DnsWorkerPoolOptions {
  count: number;
  init: Omit<WorkerInit, "t" | "services">;
  /** Every service's endpoints now, for a worker that starts (or starts again). */
  services: () => [string, ZoneEndpoint[]][];
  onWorkerExit?: (code: number | null) => void;
}

const READY_TIMEOUT_MS = 30_000;

export class DnsWorkerPool {
  readonly #o: DnsWorkerPoolOptions;
  readonly #workers = new Map<Worker, ResponderStats>();
  readonly #statsTimer: NodeJS.Timeout;
  #closing = false;

  private constructor(o: DnsWorkerPoolOptions) {
    this.#o = o;
    this.#statsTimer = setInterval(() => this.#broadcast({ t: "stats" }), 1000);
    this.#statsTimer.unref();
  }

  static async start(o: DnsWorkerPoolOptions): Promise<DnsWorkerPool> {
    // The worker entry is this package's dns-worker module, as source under tsx or as built JavaScript.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    cluster.setupPrimary({
      exec: fileURLToPath(new URL(`./dns-worker${ext}`, import.meta.url)),
      execArgv: process.execArgv,
      silent: false,
    });
    const pool = new DnsWorkerPool(o);
    try {
      await Promise.all(Array.from({ length: o.count }, () => pool.#fork()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  #fork(): Promise<void> {
    const worker = cluster.fork({ CATENA_DNS_WORKER: "1" });
    this.#workers.set(worker, emptyStats());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("DNS worker did not start")), READY_TIMEOUT_MS);
      worker.on("message", (m: FromWorker) => {
        if (m.t === "hello") {
          worker.send({ t: "init", ...this.#o.init, services: this.#o.services() } satisfies ToWorker);
        } else if (m.t === "ready") {
          clearTimeout(timer);
          resolve();
        } else if (m.t === "error") {
          clearTimeout(timer);
          reject(new Error(`DNS worker: ${m.message}`));
        } else if (m.t === "stats") this.#workers.set(worker, m.stats);
      });
      worker.once("exit", (code) => {
        clearTimeout(timer);
        this.#workers.delete(worker);
        if (this.#closing) return;
        this.#o.onWorkerExit?.(code);
        // One worker's crash must not take DNS down for its share of queries.
        void this.#fork().catch(() => undefined);
      });
    });
  }

  setService(name: string, endpoints: ZoneEndpoint[] | undefined): void {
    this.#broadcast({ t: "set", name, endpoints: endpoints ?? null });
  }

  /** The workers' counters, summed (as of their last report, at most a second old). */
  stats(): ResponderStats {
    const sum = emptyStats();
    for (const s of this.#workers.values())
      for (const k of Object.keys(sum) as (keyof ResponderStats)[]) sum[k] += s[k];
    return sum;
  }

  get size(): number {
    return this.#workers.size;
  }

  #broadcast(m: ToWorker): void {
    for (const w of this.#workers.keys()) if (w.isConnected()) w.send(m);
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#statsTimer);
    const exits = [...this.#workers.keys()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const kill = setTimeout(() => w.process.kill("SIGKILL"), 3000);
          w.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          if (w.isConnected()) w.send({ t: "close" } satisfies ToWorker);
          else w.process.kill("SIGTERM");
        }),
    );
    await Promise.all(exits);
  }
}
