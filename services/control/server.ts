// Composes the control server: store, event bus and publisher, status reconciler, service registry,
// HTTP API, NATS lookups.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { buildApi } from "./api/app.js";
import { createApplier } from "./api/apply.js";
import { DEFAULT_CERT_LIFETIME_MS, InstanceCertificates, MeshCa } from "./ca/index.js";
import { openSharedMeshCa } from "./ca/shared-root.js";
import { startPolicyStatus } from "./compiler/policy-status.js";
import { DEFAULT_TRUST_DOMAIN } from "./compiler/vpn-resources.js";
import { parseHostPort } from "./environment.js";
import { connectEventBus, createEventPublisher, type EventPublisher } from "./events/index.js";
import { publishStoreChanges } from "./events/store-events.js";
import { startIpamService } from "./ipam/index.js";
import { createMetrics } from "./metrics.js";
import { startNatsLookup } from "./registry/nats-lookup.js";
import { ServiceRegistry } from "./registry/service-registry.js";
import { openSharedState } from "./registry/shared-state.js";
import { runStatusReconciler } from "./status/reconciler.js";
import { createStatusWriter } from "./status/status-writer.js";
import { openEmbeddedStore, openKvStore } from "./store/index.js";
import type { Store } from "./store/store.js";
import { VERSION } from "./version.js";
import { createXdsControl, type XdsControl } from "./xds-server.js";

export interface ControlServerOptions {
  apiAddr: string;
  xdsAddr: string;
  dataDir: string;
  natsUrl: string;
  natsRoot: string;
  /** `catena up`: start a nats-server when none answers, else fall back to the in-process bus. */
  embeddedNats: boolean;
  /** Where state lives: the data directory (default), or a JetStream KV bucket shared by replicas. */
  store?: "embedded" | "nats-kv";
  /** The mesh CA: trust domain, an operator's root instead of `<dataDir>/ca`, certificate lifetime. */
  ca?: { trustDomain?: string; certFile?: string; keyFile?: string; lifetimeMs?: number };
  logger: Logger;
}

export interface ControlServer {
  apiUrl: string;
  /** Where the xDS gRPC server listens, `host:port` (the port the OS chose for port 0). */
  xdsAddr: string;
  xds: XdsControl;
  /** How events travel, in words (NATS at ..., embedded nats-server, in-process bus). */
  eventsDescription: string;
  /** The NATS server events go to (an embedded nats-server's own URL); undefined for the in-process bus. */
  natsUrl?: string;
  store: Store;
  events: EventPublisher;
  /** Every Service's endpoints (self-registered ones included) and their health. */
  registry: ServiceRegistry;
  close(): Promise<void>;
}

export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { logger } = options;
  const api = parseHostPort(options.apiAddr, "--api-addr");
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const store =
    options.store === "nats-kv"
      ? await openKvStore({ servers: options.natsUrl, root: options.natsRoot, logger })
      : await openEmbeddedStore({ dataDir: join(options.dataDir, "store"), logger });
  // nats-kv: leases, instances and registrations are shared through buckets next to the state's.
  const shared =
    options.store === "nats-kv"
      ? await openSharedState({ servers: options.natsUrl, root: options.natsRoot, logger })
      : undefined;
  const connection = await connectEventBus({
    natsUrl: options.natsUrl,
    root: options.natsRoot,
    dataDir: options.dataDir,
    startNatsServer: options.embeddedNats,
    allowInProcess: options.embeddedNats,
    logger,
  });
  const events = createEventPublisher({
    bus: connection.bus,
    root: options.natsRoot,
    source: "catena/control",
    logger,
  });
  const status = createStatusWriter(store);
  const tasks = [publishStoreChanges(store, events, logger), runStatusReconciler(store, status, logger)];
  const xds = createXdsControl({
    store,
    events,
    status,
    logger,
    ...(shared && { sharedInstances: shared.instances }),
  });
  const ipam = await startIpamService({
    store,
    status,
    events,
    logger,
    dataDir: options.dataDir,
    ...(shared && { leases: shared.leases }),
  });
  const policyStatus = startPolicyStatus({ store, status, events, logger });
  const registry = new ServiceRegistry({
    store,
    events,
    logger,
    ...(shared && {
      sharedRegistrations: shared.registrations,
      speaksForHealth: () => shared.instances.isLeader(),
    }),
  });
  registry.bind((services) => xds.compiler.scheduleServices(services));
  xds.compiler.attachRegistry(registry);
  registry.start();
  const caOptions = {
    dataDir: options.dataDir,
    trustDomain: options.ca?.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    ...(options.ca?.certFile && { certFile: options.ca.certFile }),
    ...(options.ca?.keyFile && { keyFile: options.ca.keyFile }),
  };
  // Replicas sign with one root, or an instance that fails over would hold a certificate its peers reject.
  const ca = shared ? await openSharedMeshCa(shared.caBucket, caOptions) : await MeshCa.open(caOptions);
  const certificates = new InstanceCertificates({
    ca,
    lifetimeMs: options.ca?.lifetimeMs ?? DEFAULT_CERT_LIFETIME_MS,
    onChange: () => xds.compiler.schedule(),
    onError: (id, err) => logger.warn({ instance: id, err }, "certificate not issued"),
  });
  xds.compiler.attachCertificates({
    trustDomain: ca.trustDomain,
    rootPem: ca.rootPem,
    get: (id) => certificates.get(id),
    sync: (instances) => certificates.sync(instances),
  });
  const xdsPort = await xds.listen(options.xdsAddr);

  const metrics = createMetrics("catena-control");
  const app = buildApi({
    store,
    applier: createApplier(store),
    events,
    metrics,
    logger,
    version: VERSION,
    xds: xds.status,
    instances: xds.instances,
    notReadyReason: () => undefined,
    ipam: { ipam: ipam.ipam },
    registry: { store, registry },
  });
  await app.listen({ host: api.host, port: api.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : api.port;
  const apiUrl = `http://${api.host.includes(":") ? `[${api.host}]` : api.host}:${port}`;
  const xdsAddr = `${parseHostPort(options.xdsAddr, "--xds-addr").host}:${xdsPort}`;
  // Lookups over NATS need NATS itself (not the in-process bus).
  const natsLookup = connection.natsUrl
    ? startNatsLookup({
        servers: connection.natsUrl,
        root: options.natsRoot,
        directory: registry.directory,
        version: VERSION,
        logger,
      })
    : undefined;
  logger.info({ apiUrl, xdsAddr, events: connection.description }, "control server ready");

  let closing: Promise<void> | undefined;
  return {
    apiUrl,
    xdsAddr,
    xds,
    eventsDescription: connection.description,
    ...(connection.natsUrl ? { natsUrl: connection.natsUrl } : {}),
    store,
    events,
    registry,
    close() {
      closing ??= (async () => {
        await app.close();
        await natsLookup?.close();
        await registry.close();
        await xds.close();
        certificates.close();
        await ipam.close();
        await policyStatus.close();
        await shared?.close();
        await store.close();
        await Promise.allSettled(tasks);
        await events.close();
        await connection.stop();
        await metrics.shutdown();
      })();
      return closing;
    },
  };
}
