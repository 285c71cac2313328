// DESIGN.md "Embedded default": NATS at natsUrl when one answers, else a nats-server of our own (when
// the binary is on PATH), else the in-process bus. The caller prints `description`.
import { join } from "node:path";
import type { EventBus } from "./bus.js";
import { type EventsLogger, silentLogger } from "./logger.js";
import { createMemoryBus } from "./memory-bus.js";
import { createNatsBus, type NatsBusOptions } from "./nats-bus.js";
import {
  findExecutable,
  type NatsServerProcess,
  probeNats,
  startNatsServerProcess,
} from "./nats-server-process.js";
import { checkRoot, streamName } from "./subject.js";

export type EventBusMode = "nats" | "embedded-nats" | "in-process";

export interface ConnectEventBusOptions {
  natsUrl: string;
  root: string;
  /** The embedded nats-server keeps its JetStream store in `<dataDir>/nats`. */
  dataDir: string;
  /** Start a nats-server when none answers at natsUrl (`catena up`). */
  startNatsServer: boolean;
  /**
   * Fall back to the in-process bus when neither works (default true). When false (`catena control`),
   * the NATS bus is used anyway: it connects when the server comes up, and events wait until then.
   */
  allowInProcess?: boolean;
  logger?: EventsLogger;
  /** How long natsUrl gets to answer (ms, default 500). */
  probeTimeoutMs?: number;
  /** PATH-style list searched for `nats-server` (default: this process's PATH). */
  searchPath?: string;
  /** Use this binary rather than searching. */
  natsServerBinary?: string;
  /** Tuning of the NATS bus (window, timeouts, stream limits). */
  nats?: Partial<Omit<NatsBusOptions, "servers" | "root" | "logger">>;
}

export interface EventBusConnection {
  bus: EventBus;
  mode: EventBusMode;
  /** One line for the operator: where events go. */
  description: string;
  /** The NATS server(s) the bus talks to; undefined for the in-process bus. */
  natsUrl?: string;
  /** Closes the bus (bounded wait for pending events) and stops the embedded server, if any. Idempotent. */
  stop(): Promise<void>;
}

export async function connectEventBus(options: ConnectEventBusOptions): Promise<EventBusConnection> {
  const root = checkRoot(options.root);
  const logger = options.logger ?? silentLogger;
  const stream = streamName(root);
  const natsBus = (servers: string) =>
    createNatsBus({ ...options.nats, servers: natsServers(servers), root, logger });

  if (await probeNats(options.natsUrl, options.probeTimeoutMs ?? 500)) {
    const bus = natsBus(options.natsUrl);
    return connection(bus, "nats", `NATS at ${redact(options.natsUrl)}, stream ${stream}`, options.natsUrl);
  }

  if (options.startNatsServer) {
    const binary =
      options.natsServerBinary ?? findExecutable("nats-server", options.searchPath ?? process.env.PATH ?? "");
    if (binary !== undefined) {
      const storeDir = join(options.dataDir, "nats");
      try {
        const server = await startNatsServerProcess({
          binary,
          host: "127.0.0.1",
          port: 0,
          jetstream: true,
          storeDir,
          readyTimeoutMs: 10_000,
        });
        // Don't leave the server behind when this process exits without calling stop().
        const killOnExit = () => void server.stop("SIGTERM");
        process.once("exit", killOnExit);
        const bus = natsBus(server.url);
        return connection(
          bus,
          "embedded-nats",
          `embedded nats-server at ${server.url} (pid ${server.pid}), JetStream store in ${storeDir}, stream ${stream}`,
          server.url,
          server,
          () => process.removeListener("exit", killOnExit),
        );
      } catch (err) {
        logger.warn(
          { binary, error: err instanceof Error ? err.message : String(err) },
          "cannot start nats-server",
        );
      }
    }
  }

  if (options.allowInProcess ?? true) {
    return connection(
      createMemoryBus(),
      "in-process",
      `in-process event bus (no NATS at ${redact(options.natsUrl)}${
        options.startNatsServer ? " and no nats-server could be started" : ""
      }): events reach local subscribers only and are not kept`,
    );
  }

  const bus = natsBus(options.natsUrl);
  return connection(
    bus,
    "nats",
    `NATS at ${redact(options.natsUrl)}, stream ${stream} (not answering yet: events wait in a buffer)`,
    options.natsUrl,
  );
}

function connection(
  bus: EventBus,
  mode: EventBusMode,
  description: string,
  natsUrl?: string,
  server?: NatsServerProcess,
  cleanup?: () => void,
): EventBusConnection {
  let stopping: Promise<void> | undefined;
  return {
    bus,
    mode,
    description,
    ...(natsUrl ? { natsUrl } : {}),
    stop() {
      stopping ??= (async () => {
        await bus.close(2_000);
        cleanup?.();
        await server?.stop();
      })();
      return stopping;
    },
  };
}

/**
 * The servers of a NATS URL list as nats.js wants them: `nats://a:4222,nats://b:4222` (what
 * CATENA_NATS_URL may hold, one node or several of a cluster) becomes an array; nats.js takes a
 * single string as one URL.
 */
export function natsServers(urls: string | readonly string[]): string[] {
  return (typeof urls === "string" ? urls.split(",") : urls).map((u) => u.trim()).filter((u) => u !== "");
}

/** A URL fit for logs: no credentials. */
function redact(urls: string): string {
  return urls
    .split(",")
    .map((u) => u.trim().replace(/\/\/[^@/]*@/, "//"))
    .join(",");
}
