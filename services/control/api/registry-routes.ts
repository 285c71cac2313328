// Service discovery over HTTP: self-registration with a TTL (DESIGN.md "Self-registration") and lookups
// with a Consul-style blocking watch: `GET /v1/services/<name>/endpoints?healthy=true&index=N&wait=30s`
// answers at once when the service's index differs from N, else when it changes or `wait` runs out;
// the index comes back in `X-Catena-Index` and the body.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RawServerDefault } from "fastify";
import type { ServiceEndpoint } from "../compiler/service-endpoints.js";
import { parseWait } from "../duration.js";
import { CatenaError, ErrorCode } from "../errors.js";
import type { ServiceSpec } from "../model/index.js";
import type { Lookup } from "../registry/directory.js";
import { MAX_TTL_SECONDS, parseRegistration } from "../registry/endpoint-registry.js";
import { publicRegistration, type ServiceRegistry } from "../registry/service-registry.js";
import type { Store } from "../store/store.js";

export interface RegistryRouteDeps {
  store: Store;
  registry: ServiceRegistry;
}

export const INDEX_HEADER = "x-catena-index";
/** Longest blocking wait (Consul's cap), and the wait when only `index` is given. */
const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;
/** How long a lookup waits for a Service that exists but was not compiled yet (just applied). */
const COMPILE_GRACE_MS = 2000;

export function registerRegistryRoutes<L extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L>,
  deps: RegistryRouteDeps,
): void {
  const { store, registry } = deps;

  const serviceSpec = async (request: FastifyRequest): Promise<{ name: string; spec: ServiceSpec }> => {
    const { name } = request.params as { name: string };
    // The registry follows Services already; the store is asked only for one it has not seen yet.
    const known = registry.serviceSpec(name);
    if (known) return { name, spec: known };
    const service = await store.get("Service", name);
    if (!service) throw new CatenaError(ErrorCode.NotFound, `Service "${name}" not found`);
    return { name, spec: service.spec as ServiceSpec };
  };

  app.get("/v1/services/:name/endpoints", async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const details = [];
    const index = query.index === undefined ? undefined : Number(query.index);
    if (index !== undefined && !(Number.isSafeInteger(index) && index >= 0))
      details.push({
        path: "index",
        message: `must be a non-negative integer, got ${JSON.stringify(query.index)}`,
      });
    const wait = query.wait === undefined ? DEFAULT_WAIT_MS : parseWait(query.wait);
    if (wait === undefined)
      details.push({
        path: "wait",
        message: `must be a duration like 30s, 500ms or 5m, got ${JSON.stringify(query.wait)}`,
      });
    if (details.length > 0) throw new CatenaError(ErrorCode.Invalid, "bad lookup", details);
    const { name } = await serviceSpec(request);
    const healthyOnly = query.healthy !== undefined && query.healthy !== "false" && query.healthy !== "0";
    await registry.directory.known(name, COMPILE_GRACE_MS);
    if (index !== undefined) {
      const abort = new AbortController();
      const onClose = () => abort.abort();
      reply.raw.once("close", onClose);
      try {
        await registry.directory.wait(name, index, Math.min(wait as number, MAX_WAIT_MS), abort.signal);
      } finally {
        reply.raw.off("close", onClose);
      }
    }
    const found = registry.directory.lookup(name, { healthyOnly });
    // Deleted while waiting: the watcher learns it is gone.
    if (!found) throw new CatenaError(ErrorCode.NotFound, `Service "${name}" not found`);
    return reply.header(INDEX_HEADER, String(found.index)).send(lookupBody(found));
  });

  app.post("/v1/services/:name/endpoints", async (request, reply) => {
    const { name, spec } = await serviceSpec(request);
    const input = parseRegistration(
      request.body,
      spec.ports.map((p) => p.name),
    );
    const { endpoint, created } = await registry.registrations.register(name, input);
    return reply.code(created ? 201 : 200).send(publicRegistration(endpoint));
  });

  app.put("/v1/services/:name/endpoints/:id", async (request, reply) => {
    const { name, id } = request.params as { name: string; id: string };
    const body = (request.body ?? {}) as { ttlSeconds?: unknown };
    const ttl = typeof body === "object" && body !== null ? body.ttlSeconds : undefined;
    if (
      ttl !== undefined &&
      (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > MAX_TTL_SECONDS)
    )
      throw new CatenaError(ErrorCode.Invalid, "bad renewal", [
        { path: "ttlSeconds", message: `must be an integer from 1 to ${MAX_TTL_SECONDS}` },
      ]);
    const endpoint = await registry.registrations.renew(name, id, ttl as number | undefined);
    if (!endpoint)
      throw new CatenaError(
        ErrorCode.NotFound,
        `no registration ${id} for Service "${name}" (expired? register again)`,
      );
    return reply.send(publicRegistration(endpoint));
  });

  // Deleting what is not there succeeds: a workload may deregister twice (or after its TTL ran out).
  app.delete("/v1/services/:name/endpoints/:id", async (request, reply) => {
    const { name, id } = request.params as { name: string; id: string };
    const endpoint = await registry.registrations.deregister(name, id);
    return reply.send({ id, removed: endpoint !== undefined });
  });
}

/** An endpoint as lookups show it: where, how much, which port, from where, healthy or not. */
export function endpointJson(e: ServiceEndpoint) {
  return {
    address: e.address,
    port: e.port,
    weight: e.weight,
    ...(e.portName ? { portName: e.portName } : {}),
    source: e.source,
    ...(e.owner ? { [e.source === "registered" ? "id" : "owner"]: e.owner } : {}),
    ...(e.region ? { region: e.region } : {}),
    ...(e.zone ? { zone: e.zone } : {}),
    healthy: e.healthy !== false,
  };
}

export function lookupBody(found: Lookup) {
  return { service: found.service, index: found.index, endpoints: found.endpoints.map(endpointJson) };
}
