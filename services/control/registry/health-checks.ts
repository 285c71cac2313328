// Active health checks of the endpoints of Services that configure `healthCheck`, with the load
// balancer's checker (functions/loadbalancer: TCP connect, thresholds, jitter). An endpoint under
// check is healthy once a probe passed (Envoy's "unhealthy until the first check"); an endpoint of a
// Service without checks is not checked and counts as healthy.
import { ActiveHealthChecker } from "../../../functions/loadbalancer/health-checker.js";
import type { ServiceSpec } from "../model/index.js";

type HealthCheck = NonNullable<ServiceSpec["healthCheck"]>;

export interface CheckedEndpoint {
  address: string;
  port: number;
}

export interface HealthChecksOptions {
  /** A checked endpoint became healthy or unhealthy (the first verdict included). */
  onTransition: (service: string, endpoint: CheckedEndpoint, healthy: boolean) => void;
  /** Spread of each probe interval, so checks of many endpoints do not all fire together. */
  intervalJitterMs?: number;
}

interface ServiceChecks {
  config: string;
  checker: ActiveHealthChecker;
  endpoints: CheckedEndpoint[];
}

export function endpointKey(e: CheckedEndpoint): string {
  return e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export class ServiceHealthChecks {
  readonly #o: HealthChecksOptions;
  readonly #services = new Map<string, ServiceChecks>();
  /** The endpoints each service has, kept while it has no checks so that turning checks on has them. */
  readonly #endpoints = new Map<string, CheckedEndpoint[]>();
  readonly #configs = new Map<string, HealthCheck>();

  constructor(options: HealthChecksOptions) {
    this.#o = options;
  }

  /** Sets (or, with undefined, removes) a service's check configuration. */
  configure(service: string, config: HealthCheck | undefined): void {
    const key = config ? JSON.stringify(config) : undefined;
    const current = this.#services.get(service);
    if (current?.config === key) return;
    if (current) {
      void current.checker.close();
      this.#services.delete(service);
    }
    if (!config || !key) {
      this.#configs.delete(service);
      return;
    }
    this.#configs.set(service, config);
    const checker = new ActiveHealthChecker({
      intervalMs: config.intervalMs,
      timeoutMs: config.timeoutMs,
      unhealthyThreshold: config.unhealthyThreshold ?? 2,
      healthyThreshold: config.healthyThreshold ?? 1,
      intervalJitterMs: this.#o.intervalJitterMs ?? Math.min(1000, config.intervalMs / 10),
      onTransition: (e, healthy) => this.#o.onTransition(service, e, healthy),
    });
    const endpoints = this.#endpoints.get(service) ?? [];
    this.#services.set(service, { config: key, checker, endpoints });
    checker.setEndpoints(endpoints);
  }

  /** The endpoints a service has now (probing starts for new ones, stops for gone ones). */
  setEndpoints(service: string, endpoints: readonly CheckedEndpoint[] | undefined): void {
    if (!endpoints) {
      this.#endpoints.delete(service);
      this.configure(service, undefined);
      return;
    }
    const unique = new Map<string, CheckedEndpoint>();
    for (const e of endpoints) unique.set(endpointKey(e), { address: e.address, port: e.port });
    const list = [...unique.values()];
    this.#endpoints.set(service, list);
    const checks = this.#services.get(service);
    if (!checks) return;
    checks.endpoints = list;
    checks.checker.setEndpoints(list);
  }

  /** undefined when the service has no checks; else whether the endpoint passed its last verdict. */
  healthy(service: string, endpoint: CheckedEndpoint): boolean | undefined {
    const checks = this.#services.get(service);
    if (!checks) return undefined;
    return checks.checker.health(endpointKey(endpoint)) === "healthy";
  }

  checked(service: string): boolean {
    return this.#services.has(service);
  }

  async close(): Promise<void> {
    const all = [...this.#services.values()];
    this.#services.clear();
    await Promise.all(all.map((c) => c.checker.close()));
  }
}
