// Lookups over NATS request/reply: the service `catena-discovery` (NATS services framework, so
// `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` answer) with the endpoint `lookup` on `<root>.discovery.lookup`.
// Request: `{"service": "web", "healthy": true}` or just the service's name; reply: the same body as
// `GET /v1/services/<name>/endpoints`. Errors travel as the framework's error headers (400, 404).
// The only file of the registry that imports @nats-io/*.
import { type ServiceMsg, Svcm } from "@nats-io/services";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { lookupBody } from "../api/registry-routes.js";
import { natsServers } from "../events/connect.js";
import type { ServiceDirectory } from "./directory.js";

export interface NatsLookupOptions {
  servers: string | string[];
  root: string;
  directory: ServiceDirectory;
  version: string;
  logger: Logger;
}

export const LOOKUP_SERVICE_NAME = "catena-discovery";

export function lookupSubject(root: string): string {
  return `${root}.discovery.lookup`;
}

export interface NatsLookup {
  /** Resolves once the service is listening (it waits for NATS to come up). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** Starts in the background: a NATS that is not up yet delays lookups over NATS, nothing else. */
export function startNatsLookup(options: NatsLookupOptions): NatsLookup {
  const { directory, logger } = options;
  let nc: NatsConnection | undefined;
  let closed = false;
  const encoder = new TextEncoder();
  const handle = (msg: ServiceMsg) => {
    const request = parseRequest(msg.data);
    if (!request) {
      msg.respondError(400, 'expected {"service": NAME, "healthy"?: boolean} or a service name');
      return;
    }
    const found = directory.lookup(request.service, { healthyOnly: request.healthy });
    if (!found) {
      msg.respondError(404, `Service "${request.service}" not found`);
      return;
    }
    msg.respond(encoder.encode(JSON.stringify(lookupBody(found))));
  };
  const ready = (async () => {
    nc = await connect({
      servers: natsServers(options.servers),
      name: "catena-discovery-lookup",
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
    });
    if (closed) {
      await nc.close();
      return;
    }
    // @nats-io/services (3.0.0-25, the newest) types its connection with its own pinned nats-core;
    // the connection object is the same at run time.
    const service = await new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
      name: LOOKUP_SERVICE_NAME,
      version: options.version,
      description: "Catena service discovery: endpoints of a Service",
      queue: LOOKUP_SERVICE_NAME,
    });
    service.addEndpoint("lookup", {
      subject: lookupSubject(options.root),
      handler: (err, msg) => {
        if (err) {
          logger.warn({ err }, "discovery lookup endpoint stopped");
          return;
        }
        handle(msg);
      },
      metadata: { request: '{"service": NAME, "healthy"?: boolean}' },
    });
  })();
  ready.catch((err: unknown) => logger.warn({ err }, "NATS lookup service did not start"));
  return {
    ready,
    async close() {
      closed = true;
      await nc?.drain().catch(() => undefined);
    },
  };
}

function parseRequest(data: Uint8Array): { service: string; healthy: boolean } | undefined {
  const text = new TextDecoder().decode(data).trim();
  if (text === "") return undefined;
  if (!text.startsWith("{")) return { service: text, healthy: false };
  try {
    const body = JSON.parse(text) as { service?: unknown; healthy?: unknown };
    if (typeof body.service !== "string" || body.service === "") return undefined;
    return { service: body.service, healthy: body.healthy === true };
  } catch {
    return undefined;
  }
}
