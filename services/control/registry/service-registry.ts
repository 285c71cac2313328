// The service registry: every Service's endpoints, wherever they come from (static, selected Workloads,
// self-registration, the fronting chain's ingress instances), with health from heartbeats and active
// checks. The compiler reads it as an EndpointRegistryView and hands back what it compiled, which
// lookups (HTTP, NATS) then serve; DNS reads the same through EDS. Endpoint events are published here.
import type { Logger } from "pino";
import {
  type EndpointRegistryView,
  portNameFor,
  type ServiceEndpoint,
} from "../compiler/service-endpoints.js";
import type { EventSink } from "../events/types.js";
import type { ServiceSpec } from "../model/index.js";
import type { Change, Store, Watch } from "../store/store.js";
import { ServiceDirectory } from "./directory.js";
import { EndpointRegistry, type RegisteredEndpoint, type RegistrationChange } from "./endpoint-registry.js";
import { ServiceHealthChecks } from "./health-checks.js";
import type { SharedRegistrations } from "./shared-registrations.js";

export interface ServiceRegistryOptions {
  store: Store;
  events: EventSink;
  logger: Logger;
  /** How often expired self-registrations are removed (ms). */
  sweepIntervalMs?: number;
  /** Self-registrations shared by every control server on the bucket (`--store nats-kv`). */
  sharedRegistrations?: SharedRegistrations;
  /**
   * Whether this server announces health transitions. Every replica probes (each compiles from its
   * own view), but one speaks, or integrators would see a health-changed per replica.
   */
  speaksForHealth?: () => boolean;
}

/** Event kind of endpoint events: `<root>.events.endpoint.<service>.<verb>`. */
export const ENDPOINT_EVENT_KIND = "endpoint";

export class ServiceRegistry implements EndpointRegistryView {
  readonly directory = new ServiceDirectory();
  readonly registrations: EndpointRegistry;
  readonly #checks: ServiceHealthChecks;
  readonly #o: ServiceRegistryOptions;
  readonly #specs = new Map<string, ServiceSpec>();
  /** Asks the compiler to recompute these services' endpoints. */
  #recompile: (services: Iterable<string>) => void = () => {};
  #watch: Watch<Change> | undefined;
  #running: Promise<void> | undefined;

  constructor(options: ServiceRegistryOptions) {
    this.#o = options;
    this.registrations = new EndpointRegistry({
      ...(options.sweepIntervalMs ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
      ...(options.sharedRegistrations ? { shared: options.sharedRegistrations } : {}),
      onChange: (change) => this.#onRegistration(change),
    });
    this.#checks = new ServiceHealthChecks({
      onTransition: (service, endpoint, healthy) => {
        if (this.#o.speaksForHealth?.() ?? true)
          this.#o.events.emit({
            kind: ENDPOINT_EVENT_KIND,
            name: service,
            verb: "health-changed",
            data: { service, address: endpoint.address, port: endpoint.port, healthy },
          });
        this.#recompile([service]);
      },
    });
  }

  /** Connects the registry to the compiler: changes here ask for a compile of the services concerned. */
  bind(recompile: (services: Iterable<string>) => void): void {
    this.#recompile = recompile;
  }

  /** Follows Services in the store (ports for port names, health check configuration). */
  start(): void {
    this.#watch = this.#o.store.watch({ kinds: ["Service"], initial: true });
    const watch = this.#watch;
    this.#running = (async () => {
      for await (const change of watch) {
        const name = change.object.metadata.name;
        if (change.type === "deleted") {
          this.#specs.delete(name);
          this.#checks.configure(name, undefined);
          for (const e of this.registrations.list(name))
            await this.registrations
              .deregister(name, e.id)
              .catch((err: unknown) => this.#o.logger.warn({ err, service: name }, "deregistration failed"));
          continue;
        }
        const spec = change.object.spec as ServiceSpec;
        const before = this.#specs.get(name);
        this.#specs.set(name, spec);
        if (JSON.stringify(before?.ports) !== JSON.stringify(spec.ports)) this.registrations.invalidate(name);
        this.#checks.configure(name, spec.healthCheck);
        this.#recompile([name]);
      }
    })().catch((err: unknown) => this.#o.logger.error({ err }, "service registry: store watch ended"));
  }

  /** The Service's spec as the registry last saw it (undefined: not known here yet, or gone). */
  serviceSpec(name: string): ServiceSpec | undefined {
    return this.#specs.get(name);
  }

  // --- EndpointRegistryView (read by the compiler) ----------------------------------------------

  registered(service: string): readonly ServiceEndpoint[] {
    const spec = this.#specs.get(service);
    return this.registrations.endpoints(service, (port) => (spec ? portNameFor(spec, port) : undefined));
  }

  healthy(service: string, endpoint: ServiceEndpoint): boolean | undefined {
    return this.#checks.healthy(service, endpoint);
  }

  /** The compiler's output for the services whose endpoints changed (undefined: the service is gone). */
  compiled(changes: ReadonlyMap<string, readonly ServiceEndpoint[] | undefined>): void {
    this.directory.update(changes);
    for (const [service, endpoints] of changes) {
      // A chain's ingress instances are function instances, present while connected; the chain's own
      // load balancer checks the backends.
      const backends = endpoints?.every((e) => e.source !== "chain") ? endpoints : [];
      this.#checks.setEndpoints(service, endpoints === undefined ? undefined : backends);
    }
  }

  async close(): Promise<void> {
    this.#watch?.close();
    this.registrations.close();
    await this.#checks.close();
    await this.#running;
  }

  #onRegistration(change: RegistrationChange): void {
    const e = change.endpoint;
    if (change.type === "registered" && change.initial) {
      this.#recompile([e.service]);
      return;
    }
    this.#o.events.emit({
      kind: ENDPOINT_EVENT_KIND,
      name: e.service,
      verb: change.type,
      // Shared: every server sees the change; one id (from the KV revision) keeps one in the stream.
      ...(change.revision !== undefined && {
        id: `endpoint/${e.service}/${e.id}/${change.revision}/${change.type}`,
      }),
      data: {
        ...publicRegistration(e),
        ...(change.type === "deregistered" ? { reason: change.reason } : {}),
      },
    });
    this.#recompile([e.service]);
  }
}

/** A registration as the API shows it (expiresAt as a timestamp). */
export function publicRegistration(e: RegisteredEndpoint) {
  return {
    id: e.id,
    service: e.service,
    address: e.address,
    port: e.port,
    weight: e.weight,
    labels: e.labels,
    ...(e.portName ? { portName: e.portName } : {}),
    ttlSeconds: e.ttlSeconds,
    registeredAt: e.registeredAt,
    renewedAt: e.renewedAt,
    expiresAt: new Date(e.expiresAt).toISOString(),
  };
}
