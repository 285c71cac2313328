// The function host: one process per function instance. It subscribes over ADS (Delta) to its
// Listeners, Clusters and ClusterLoadAssignments, validates each against what it can run (a resource
// it cannot apply is NACKed with the field path; the last accepted version stays in force), and builds
// listeners and upstream clusters from them. The admin server answers /healthz, /readyz, /metrics.
// While the control server is unreachable the last accepted config keeps serving. Every instance makes
// its own key pair at start and sends a CSR as node metadata `csr`; SDS Secrets (its certificate and
// the mesh roots) feed the VPN tunnels' mutual TLS, and a certificate for another key is NACKed.
import {
  AdsClient,
  clusterType,
  endpointType,
  listenerType,
  type Node,
  secretType,
  withValidation,
} from "../../xds/index.js";
import type { Logger } from "../../xds/logger.js";
import type { Endpoint } from "../loadbalancer/endpoint.js";
import { AdminServer } from "./admin-server.js";
import {
  FunctionRegistry,
  type HelperScope,
  type HostHelper,
  type MetricCounter,
  type PluginEvent,
} from "./define-function.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import type { EventSink } from "./events.js";
import { createIdentity, type Identity } from "./identity.js";
import { compileListener, type ListenerPlan } from "./listener-config.js";
import { ListenerManager } from "./listener-manager.js";
import { HostMetrics } from "./metrics.js";
import {
  adminHostPort,
  type FunctionHostInit,
  type FunctionHostOptions,
  functionHostOptions,
} from "./options.js";
import { loadHostProtos } from "./protos.js";
import { SecretStore, TlsMaterials } from "./secrets.js";
import { compileSecret, type SecretPlan } from "./tls-config.js";
import { DEFAULT_TUNNEL_OPTIONS, type TunnelEventSink, type TunnelOptions } from "./tunnel-client.js";
import { ClusterManager, type ClusterPlan, compileAssignment, compileCluster } from "./upstream-cluster.js";
import type { Validated } from "./validated.js";
import { formatFieldErrors } from "./validated.js";

type State = "starting" | "running" | "closing" | "closed";

export class FunctionHost {
  readonly options: FunctionHostOptions;
  readonly registry = new FunctionRegistry();
  readonly metrics: HostMetrics;
  readonly #log: Logger;
  readonly #events: EventSink | undefined;
  readonly #clusters: ClusterManager;
  readonly #listeners: ListenerManager;
  readonly #identity: Identity;
  readonly #secrets = new SecretStore();
  #admin: AdminServer | undefined;
  #ads: AdsClient | undefined;
  #state: State = "starting";
  #synced = false;
  readonly #loops: Promise<void>[] = [];
  #closing: Promise<void> | undefined;
  #connectedOnce = false;

  private constructor(options: FunctionHostOptions, identity: Identity) {
    this.options = options;
    this.#log = options.logger;
    this.#events = options.events;
    this.#identity = identity;
    for (const f of options.functions) this.registry.register(f);
    const materials = new TlsMaterials(this.#secrets, identity.privateKeyPem);
    const tunnelOptions: TunnelOptions = {
      ...DEFAULT_TUNNEL_OPTIONS,
      keepaliveMs: options.tunnelKeepaliveMs,
    };
    const tunnelEvents: TunnelEventSink = (verb, data) =>
      this.#events?.emit({ kind: "vpn", name: this.options.nodeId, verb, data });
    this.#clusters = new ClusterManager({
      localAddress: options.address,
      logger: this.#log,
      onHealthChange: (cluster, endpoint, healthy) =>
        this.#log.info("endpoint health changed", { cluster, endpoint, healthy }),
      materials,
      tunnelOptions,
      tunnelEvents,
    });
    this.metrics = new HostMetrics({
      endpointHealth: () => this.#clusters.endpointHealth(),
      eventsDropped: () => {
        const c = (this.#events as { counters?: { dropped: number } } | undefined)?.counters;
        return c?.dropped ?? 0;
      },
      listeners: () => this.#listeners.stats(),
    });
    this.#listeners = new ListenerManager({
      clusters: this.#clusters,
      logger: this.#log,
      emit: (verb, data) => this.#emit(verb, data),
      helperFor: (scope) => this.#helper(scope),
      drainTimeoutMs: options.drainTimeoutMs,
      proxyHeaderTimeoutMs: options.proxyHeaderTimeoutMs,
      materials,
      tunnelOptions,
      tunnelEvents,
    });
  }

  /** Starts the admin server, then the xDS subscription; resolves once both are up (not once ready). */
  static async start(init: FunctionHostInit): Promise<FunctionHost> {
    const options = functionHostOptions(init);
    // The key pair is made here and never leaves the process; the mesh CA certifies it from the CSR.
    const host = new FunctionHost(options, await createIdentity(options.nodeId));
    try {
      await host.#start();
    } catch (err) {
      host.destroy();
      throw err;
    }
    return host;
  }

  /** host:port of the admin server. */
  get adminAddress(): string {
    return this.#admin?.address ?? "";
  }

  /** Whether the first config has been applied (what /readyz says). */
  get ready(): boolean {
    return this.#notReady() === undefined;
  }

  /** Connections open now, across all listeners (draining ones too). */
  get activeConnections(): number {
    return this.#listeners.activeConnections;
  }

  /** The CSR this instance sent as node metadata `csr` (PEM). */
  get csrPem(): string {
    return this.#identity.csrPem;
  }

  /** Tunnel counters of a tunnel listener (TLS sessions, CONNECT streams, refusals). */
  tunnelStats(listener: string): { sessions: number; streams: number; refused: number } | undefined {
    return this.#listeners.tunnelStats(listener);
  }

  /** Tunnel sessions a tunnel cluster has opened since start, and how many are open now. */
  tunnelSessions(cluster: string): { opened: number; open: number } | undefined {
    const pool = this.#clusters.get(cluster)?.tunnelPool;
    return pool ? { opened: pool.sessionsOpened, open: pool.openSessions } : undefined;
  }

  /** The address a listener is bound on, once bound. */
  listenerAddress(name: string): { address: string; port: number } | undefined {
    return this.#listeners.address(name);
  }

  /** Resolves once ready; rejects after timeoutMs. */
  async whenReady(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms: ${this.#notReady()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async #start(): Promise<void> {
    loadHostProtos();
    const o = this.options;
    this.#admin = await AdminServer.start(
      adminHostPort(o),
      {
        healthy: () => this.#state === "starting" || this.#state === "running",
        notReady: () => this.#notReady(),
      },
      this.metrics,
    );
    const node: Node = {
      id: o.nodeId,
      cluster: o.functionName,
      metadata: {
        type: o.type,
        address: o.address ?? "",
        admin: this.#admin.address,
        csr: this.#identity.csrPem,
      },
      userAgentName: "catena-function",
    };
    this.#ads = new AdsClient({
      servers: o.xdsServers,
      node,
      mode: "delta",
      logger: this.#log,
      ...(o.xdsBackoff ? { backoff: o.xdsBackoff } : {}),
      onStateChange: (s) => {
        if (s.state === "connected") {
          this.#log.info("xDS connected", { server: s.server });
          this.#emit("connected", { server: s.server, reconnect: this.#connectedOnce });
          this.#connectedOnce = true;
        } else if (s.state === "backoff")
          this.#log.warn("xDS disconnected; keeping the last config", { error: s.error });
      },
    });
    const ads = this.#ads;
    const clusters = ads.watch(
      withValidation(clusterType, (c) => compileCluster(c)),
      "*",
    );
    const endpoints = ads.watch(
      withValidation(endpointType, (a) => compileAssignment(a)),
      "*",
    );
    const listeners = ads.watch(
      withValidation(listenerType, (l): Validated<ListenerPlan> => compileListener(l, this.registry)),
      "*",
    );
    const secrets = ads.watch(
      withValidation(
        secretType,
        (s): Validated<SecretPlan> => compileSecret(s, (pem) => this.#identity.matches(pem)),
      ),
      "*",
    );
    this.#loops.push(
      this.#loop(
        "Cluster",
        clusters,
        (_name, plan: ClusterPlan) => this.#clusters.applyCluster(plan),
        (name) => this.#clusters.removeCluster(name),
      ),
      this.#loop(
        "ClusterLoadAssignment",
        endpoints,
        (name, eps: Endpoint[]) => this.#clusters.applyAssignment(name, eps),
        (name) => this.#clusters.removeAssignment(name),
      ),
      this.#loop(
        "Secret",
        secrets,
        (_name, plan: SecretPlan) => this.#secrets.set(plan),
        (name) => this.#secrets.delete(name),
      ),
      this.#loop(
        "Listener",
        listeners,
        (_name, plan: ListenerPlan) => this.#listeners.apply(plan),
        (name) => this.#listeners.remove(name),
      ),
    );
    void Promise.all([
      ads.synced(clusterType),
      ads.synced(endpointType),
      ads.synced(listenerType),
      ads.synced(secretType),
    ]).then(() => {
      this.#synced = true;
    });
    this.#state = "running";
  }

  async #loop<T>(
    kind: string,
    watch: AsyncIterable<
      | { type: "changed"; name: string; version: string; value: T }
      | { type: "does-not-exist"; name: string }
      | { type: "error"; name: string; errors: { path: string; message: string }[] }
    >,
    apply: (name: string, value: T) => void | Promise<void>,
    remove: (name: string) => void,
  ): Promise<void> {
    for await (const e of watch) {
      try {
        switch (e.type) {
          case "changed":
            await apply(e.name, e.value);
            this.#log.info("config applied", { kind, name: e.name, version: e.version });
            this.#emit("applied", { kind, resource: e.name, version: e.version });
            break;
          case "does-not-exist":
            remove(e.name);
            this.#log.info("config removed", { kind, name: e.name });
            break;
          case "error": {
            const detail = formatFieldErrors(e.errors);
            this.metrics.configRejected.add(1, { kind });
            this.#log.warn("config rejected", { kind, name: e.name, errors: detail });
            this.#emit("rejected", { kind, resource: e.name, errors: e.errors });
            break;
          }
        }
      } catch (err) {
        // A bug applying one resource must not stop the subscription.
        this.#log.error("applying config failed", { kind, name: e.name, error: String(err) });
      }
    }
  }

  #notReady(): string | undefined {
    if (this.#state !== "running") return this.#state;
    if (!this.#synced) return "waiting for the first config from the xDS server";
    const unbound = this.#listeners.unbound();
    if (unbound.length > 0) return unbound.map((u) => `${u.name}: ${u.error}`).join("; ");
    return undefined;
  }

  #emit(verb: string, data: Record<string, unknown>): void {
    this.#events?.emit({ kind: this.options.type, name: this.options.nodeId, verb, data });
  }

  /** A plugin's view of the host, scoped to one filter (a child helper per hop in fused chains). */
  #helper(scope: Omit<HelperScope, "nodeId">): HostHelper {
    const full: HelperScope = Object.freeze({ ...scope, nodeId: this.options.nodeId });
    const base = this.#log;
    const fields = { function: scope.function, listener: scope.listener, hop: scope.hop };
    const log: Logger = {
      debug: (m, f) => base.debug(m, { ...fields, ...f }),
      info: (m, f) => base.info(m, { ...fields, ...f }),
      warn: (m, f) => base.warn(m, { ...fields, ...f }),
      error: (m, f) => base.error(m, { ...fields, ...f }),
    };
    const attrs = {
      listener: scope.listener ?? "",
      chain: scope.chain ?? "",
      hop: String(scope.hop ?? ""),
    };
    const counters = new Map<string, MetricCounter>();
    return {
      log,
      scope: full,
      emit: (event: PluginEvent) =>
        this.#events?.emit({
          kind: scope.function,
          name: this.options.nodeId,
          verb: event.verb,
          data: event.data,
        }),
      metrics: {
        counter: (name, description) => {
          let c = counters.get(name);
          if (!c) {
            c = this.metrics.pluginCounter(scope.function, name, description, attrs);
            counters.set(name, c);
          }
          return c;
        },
      },
    };
  }

  /** Stops accepting, drains connections (up to the drain timeout), then stops xDS and the admin server. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = "closing";
      await this.#listeners.close();
      await this.#shutdown();
    })();
    return this.#closing;
  }

  /** Aborts every connection and stops at once. Idempotent. */
  destroy(err?: Error): void {
    if (this.#state === "closed") return;
    this.#state = "closing";
    this.#listeners.destroy();
    this.#closing ??= this.#shutdown(err);
  }

  async #shutdown(err?: Error): Promise<void> {
    if (err) this.#ads?.destroy(err);
    await this.#ads?.close();
    await Promise.all(this.#loops);
    await this.#clusters.close();
    await this.#admin?.close();
    await this.#events?.close();
    await this.metrics.shutdown();
    this.#state = "closed";
  }
}

/** Starts a function host; see FunctionHostOptions. */
export function startFunctionHost(init: FunctionHostInit): Promise<FunctionHost> {
  if (!init || typeof init !== "object")
    throw new SdkError(SDK_ERROR.invalidArgument, "options must be an object");
  return FunctionHost.start(init);
}
