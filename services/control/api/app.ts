// The control server's HTTP API: /v1 objects, apply and delete, events (SSE), health and metrics.
import Fastify, { type FastifyReply, type FastifyRequest, LogController } from "fastify";
import type { Logger } from "pino";
import type { StatusReader } from "../../../xds/index.js";
import { CatenaError, ErrorCode, isCatenaError } from "../errors.js";
import type { CloudEvent } from "../events/types.js";
import type { Metrics } from "../metrics.js";
import { type Kind, resolveKind } from "../model/resource.js";
import type { InstanceRegistry } from "../registry/instances.js";
import { parseLabelSelector } from "../store/index.js";
import type { LabelSelector, Store, Watch } from "../store/store.js";
import type { Applier, ObjectRef } from "./apply.js";
import { documentsFromBody, locateDetails } from "./documents.js";
import { sendError } from "./http-errors.js";
import { type IpamRouteDeps, registerIpamRoutes } from "./ipam-routes.js";
import { type RegistryRouteDeps, registerRegistryRoutes } from "./registry-routes.js";

export const BODY_LIMIT = 4 * 1024 * 1024;

export interface EventFilter {
  type?: string;
  kind?: string;
  name?: string;
}

/** What the API needs of the event publisher: the recent tail and a live feed. */
export interface EventFeed {
  recent(filter?: EventFilter, limit?: number): CloudEvent[];
  subscribe(filter?: EventFilter): Watch<CloudEvent>;
}

export interface ApiDeps {
  store: Store;
  applier: Applier;
  events: EventFeed;
  metrics: Metrics;
  logger: Logger;
  version: string;
  /** Per xDS node: versions sent, ACKed and NACKed (`catena status`). */
  xds: StatusReader;
  instances: InstanceRegistry;
  /** Readiness beyond the API itself (store open, xDS listening...); a reason when not ready. */
  notReadyReason(): string | undefined;
  /** Address allocation for the CNI plugin (`/v1/ipam/...`). */
  ipam?: IpamRouteDeps;
  /** Service discovery: self-registration and lookups (`/v1/services/<name>/endpoints`). */
  registry?: RegistryRouteDeps;
}

export function buildApi(deps: ApiDeps) {
  // Per-request log lines would dominate the log at apply rates; metrics count requests instead.
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
  });
  const { store, applier } = deps;

  const requests = deps.metrics.meter.createCounter("catena_api_requests", {
    description: "API requests by route and status code",
  });
  const applyDuration = deps.metrics.meter.createHistogram("catena_apply_duration_seconds", {
    description: "Time to validate and durably commit one apply request",
    unit: "s",
  });
  app.addHook("onResponse", async (request, reply) => {
    requests.add(1, { route: request.routeOptions.url ?? "unknown", code: reply.statusCode });
  });

  app.addContentTypeParser(
    ["application/yaml", "application/x-yaml", "text/yaml", "text/plain"],
    { parseAs: "string", bodyLimit: BODY_LIMIT },
    (_request, body, done) => done(null, body),
  );

  app.setErrorHandler((err, request, reply) => {
    if (isCatenaError(err)) return sendError(reply, err);
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const message =
        status === 413
          ? `request body exceeds ${BODY_LIMIT} bytes`
          : err instanceof Error
            ? err.message
            : String(err);
      return sendError(reply, new CatenaError(ErrorCode.Invalid, message), status);
    }
    request.log.error({ err }, "request failed");
    return sendError(reply, new CatenaError(ErrorCode.Internal, "internal error"));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new CatenaError(ErrorCode.NotFound, `no route ${request.method} ${request.url}`)),
  );

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const reason = deps.notReadyReason();
    return reason ? reply.code(503).send({ status: "not ready", reason }) : { status: "ready" };
  });
  app.get("/metrics", (request, reply) => {
    reply.hijack();
    deps.metrics.serve(request.raw, reply.raw);
  });
  app.get("/v1/version", async () => ({ version: deps.version }));

  app.post("/v1/apply", async (request, reply) => {
    const started = performance.now();
    const docs = documentsFromBody(request.body);
    try {
      const result = await applier.apply(docs.values, { dryRun: flag(request, "dryRun") });
      applyDuration.record((performance.now() - started) / 1000);
      return reply.send({
        revision: result.revision,
        dryRun: flag(request, "dryRun"),
        items: result.results.map((r) => ({ action: r.action, object: r.object })),
      });
    } catch (err) {
      if (isCatenaError(err, ErrorCode.Invalid)) {
        throw new CatenaError(err.code, err.message, locateDetails(err.details, docs), { cause: err });
      }
      throw err;
    }
  });

  app.post("/v1/delete", async (request, reply) => {
    const docs = documentsFromBody(request.body);
    const refs: ObjectRef[] = docs.values.map((value, index) => refOf(value, index));
    const result = await applier.remove(refs, {
      dryRun: flag(request, "dryRun"),
      ignoreNotFound: flag(request, "ignoreNotFound"),
    });
    return reply.send({
      revision: result.revision,
      items: result.results.map((r) => ({ action: r.action, object: r.object })),
    });
  });

  if (deps.registry) registerRegistryRoutes(app, deps.registry);
  if (deps.ipam) registerIpamRoutes(app, deps.ipam);
  app.get("/v1/xds/nodes", async () => ({ items: xdsNodes(deps.xds) }));
  app.get("/v1/instances", async () => ({ items: deps.instances.list() }));

  app.get("/v1/events", async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const filter: EventFilter = {
      ...(query.type ? { type: query.type } : {}),
      ...(query.kind ? { kind: query.kind } : {}),
      ...(query.name ? { name: query.name } : {}),
    };
    const follow = flag(request, "follow") || (request.headers.accept ?? "").includes("text/event-stream");
    if (!follow) {
      const limit = query.limit ? Number(query.limit) : 100;
      return reply.send({ items: deps.events.recent(filter, Number.isFinite(limit) ? limit : 100) });
    }
    streamEvents(request, reply, deps.events, filter);
  });

  app.get("/v1/:kind", async (request, reply) => {
    const kind = kindParam(request);
    const query = request.query as Record<string, string | undefined>;
    let selector: LabelSelector | undefined;
    if (query.labelSelector) {
      const parsed = parseLabelSelector(query.labelSelector);
      if (!parsed.ok) {
        throw new CatenaError(
          ErrorCode.Invalid,
          "bad label selector",
          parsed.errors.map((e) => ({ ...e, path: `labelSelector${e.path ? `.${e.path}` : ""}` })),
        );
      }
      selector = parsed.value;
    }
    return reply.send({ items: await store.list(kind, selector) });
  });

  app.get("/v1/:kind/:name", async (request, reply) => reply.send(await getOrThrow(store, request)));
  app.get("/v1/:kind/:name/status", async (request, reply) => {
    const object = await getOrThrow(store, request);
    return reply.send(object.status ?? {});
  });
  app.delete("/v1/:kind/:name", async (request, reply) => {
    const kind = kindParam(request);
    const { name } = request.params as { name: string };
    const result = await applier.remove([{ kind, name }], { dryRun: flag(request, "dryRun") });
    return reply.send({ revision: result.revision, items: result.results });
  });

  return app;
}

/** The status table as JSON: per node and type, the versions sent, ACKed and NACKed. */
export function xdsNodes(status: StatusReader) {
  return status.nodes().map((n) => ({
    id: n.node.id,
    cluster: n.node.cluster,
    connected: n.streams > 0,
    connectedAt: n.connectedAt.toISOString(),
    types: [...n.types.values()].map((t) => ({
      typeUrl: t.typeUrl,
      sent: t.sentVersion,
      acked: t.ackedVersion,
      nacked: t.nackedVersion,
      ...(t.errorDetail ? { error: t.errorDetail.message } : {}),
      resources: t.resources.size,
      lastUpdated: t.lastUpdated.toISOString(),
    })),
  }));
}

function flag(request: FastifyRequest, name: string): boolean {
  const value = (request.query as Record<string, string | undefined>)[name];
  return value !== undefined && value !== "false" && value !== "0";
}

function kindParam(request: FastifyRequest): Kind {
  const { kind } = request.params as { kind: string };
  const resolved = resolveKind(kind);
  if (!resolved) throw new CatenaError(ErrorCode.NotFound, `unknown kind "${kind}"`);
  return resolved;
}

async function getOrThrow(store: Store, request: FastifyRequest) {
  const kind = kindParam(request);
  const { name } = request.params as { name: string };
  const object = await store.get(kind, name);
  if (!object) throw new CatenaError(ErrorCode.NotFound, `${kind} "${name}" not found`);
  return object;
}

function refOf(value: unknown, index: number): ObjectRef {
  const doc = (typeof value === "object" && value !== null ? value : {}) as {
    kind?: unknown;
    metadata?: { name?: unknown };
  };
  const kind = typeof doc.kind === "string" ? resolveKind(doc.kind) : undefined;
  const name = doc.metadata?.name;
  const details = [];
  if (!kind)
    details.push({ document: index, path: "kind", message: `unknown kind ${JSON.stringify(doc.kind)}` });
  if (typeof name !== "string") details.push({ document: index, path: "metadata.name", message: "required" });
  if (!kind || typeof name !== "string")
    throw new CatenaError(ErrorCode.Invalid, "bad delete request", details);
  return { kind, name };
}

/** Server-Sent Events: one `data:` line of CloudEvent JSON per event; a comment line keeps proxies open. */
function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  feed: EventFeed,
  filter: EventFilter,
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.write(": catena events\n\n");
  const watch = feed.subscribe(filter);
  const heartbeat = setInterval(() => res.write(": keepalive\n\n"), 15_000);
  const stop = () => {
    clearInterval(heartbeat);
    watch.close();
  };
  request.raw.on("close", stop);
  void (async () => {
    try {
      for await (const event of watch) {
        res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      }
    } finally {
      stop();
      res.end();
    }
  })();
}
