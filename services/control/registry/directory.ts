// What lookups read: each Service's endpoints exactly as last compiled into EDS (so the HTTP API, NATS
// and DNS agree), with a Consul-style modify index for blocking queries. The index is opaque and only
// grows; it starts from the clock so that it keeps growing across control server restarts.
import type { ServiceEndpoint } from "../compiler/service-endpoints.js";

export interface ServiceEntry {
  service: string;
  /** The index of the last change of this service's endpoints. */
  index: number;
  endpoints: readonly ServiceEndpoint[];
}

export interface Lookup {
  service: string;
  index: number;
  endpoints: ServiceEndpoint[];
}

interface Waiter {
  service: string;
  wake: () => void;
}

export class ServiceDirectory {
  readonly #entries = new Map<string, ServiceEntry>();
  readonly #waiters = new Set<Waiter>();
  #index = Date.now();
  /** Services removed, kept by name with the index of removal, so a watcher learns of it. */
  readonly #removed = new Map<string, number>();

  /** The compiler's output: new endpoints per service, undefined for a service that is gone. */
  update(changes: ReadonlyMap<string, readonly ServiceEndpoint[] | undefined>): void {
    if (changes.size === 0) return;
    const index = ++this.#index;
    for (const [service, endpoints] of changes) {
      if (endpoints === undefined) {
        this.#entries.delete(service);
        this.#removed.set(service, index);
      } else {
        this.#entries.set(service, { service, index, endpoints });
        this.#removed.delete(service);
      }
    }
    for (const w of [...this.#waiters]) if (changes.has(w.service)) w.wake();
  }

  get index(): number {
    return this.#index;
  }

  get(service: string): ServiceEntry | undefined {
    return this.#entries.get(service);
  }

  /** The index a watch on the service compares against (also for a service that is absent). */
  indexOf(service: string): number {
    return this.#entries.get(service)?.index ?? this.#removed.get(service) ?? 0;
  }

  lookup(service: string, options: { healthyOnly?: boolean } = {}): Lookup | undefined {
    const entry = this.#entries.get(service);
    if (!entry) return undefined;
    const endpoints = options.healthyOnly
      ? entry.endpoints.filter((e) => e.healthy !== false)
      : [...entry.endpoints];
    return { service, index: entry.index, endpoints };
  }

  /**
   * Resolves when the service's index differs from `index`, or after `timeoutMs`, or when the signal
   * aborts; to the index then. An index from before a restart (larger than any now) waits too.
   */
  wait(service: string, index: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    const current = this.indexOf(service);
    if (current !== index && current > index) return Promise.resolve(current);
    return new Promise((resolve) => {
      const waiter: Waiter = { service, wake: () => finish() };
      const timer = setTimeout(() => finish(), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        signal?.removeEventListener("abort", finish);
        resolve(this.indexOf(service));
      };
      this.#waiters.add(waiter);
      signal?.addEventListener("abort", finish, { once: true });
      if (signal?.aborted) finish();
    });
  }

  /** Resolves once the service has been compiled (true), or after timeoutMs (false). */
  async known(service: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#entries.has(service)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.wait(service, this.indexOf(service), left);
    }
    return true;
  }
}
