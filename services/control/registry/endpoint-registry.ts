// Self-registered endpoints (DESIGN.md "Self-registration"): a workload POSTs its address with a TTL
// and renews it with heartbeats; when the heartbeats stop, a sweep removes it within TTL plus one sweep
// interval. Renewals change nothing anyone compiles, so they cost no recompile and no xDS push. On one
// server, state lives in memory: after a restart a heartbeat gets 404 and the workload registers
// again. With `shared` (`--store nats-kv`) every registration, renewal and deregistration is a KV
// write made durable before the answer, and every server applies the bucket's entries as its watch
// brings them (shared-registrations.ts): a registration taken by one server is served by all, and
// outlives the server that took it.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { ServiceEndpoint } from "../compiler/service-endpoints.js";
import { CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";
import {
  registrationKey,
  type SharedRegistration,
  type SharedRegistrations,
} from "./shared-registrations.js";

export interface RegistrationInput {
  address: string;
  port: number;
  ttlSeconds: number;
  weight?: number;
  labels?: Record<string, string>;
  /** The Service port it serves; default: the port whose number it is, else the Service's first. */
  portName?: string;
}

export interface RegisteredEndpoint {
  id: string;
  service: string;
  address: string;
  port: number;
  weight: number;
  labels: Record<string, string>;
  portName?: string;
  ttlSeconds: number;
  registeredAt: string;
  renewedAt: string;
  /** When the sweep removes it without a heartbeat (ms since the epoch). */
  expiresAt: number;
}

/** `revision`: the KV revision of the registration's last put (shared registries), the same on every server. */
export type RegistrationChange =
  | {
      type: "registered";
      endpoint: RegisteredEndpoint;
      revision?: number;
      /** Shared: found in the bucket at start (not news). */
      initial?: true;
    }
  | { type: "deregistered"; endpoint: RegisteredEndpoint; reason: "deleted" | "expired"; revision?: number };

export interface EndpointRegistryOptions {
  /** How often expired registrations are removed. */
  sweepIntervalMs: number;
  now: () => number;
  /** After every registration and removal (not after renewals). */
  onChange: (change: RegistrationChange) => void;
  /** Registrations shared by every control server on the bucket (`--store nats-kv`). */
  shared?: SharedRegistrations;
}

export const MAX_TTL_SECONDS = 86_400;

export class EndpointRegistry {
  readonly #o: EndpointRegistryOptions;
  readonly #byService = new Map<string, Map<string, RegisteredEndpoint>>();
  /** What the compiler reads, per service; rebuilt only when a registration comes or goes. */
  readonly #compiled = new Map<string, readonly ServiceEndpoint[]>();
  readonly #timer: NodeJS.Timeout;
  /** Shared: the KV revision each registration was last put at, and which registration a key holds. */
  readonly #revisions = new Map<string, number>();
  readonly #byKey = new Map<string, RegisteredEndpoint>();
  #closed = false;

  constructor(options: Partial<EndpointRegistryOptions> & Pick<EndpointRegistryOptions, "onChange">) {
    // Short sweeps spread expiries (and their events and recompiles) instead of bunching them once a second.
    this.#o = { sweepIntervalMs: 200, now: Date.now, ...options };
    this.#timer = setInterval(() => this.sweep(), this.#o.sweepIntervalMs);
    this.#timer.unref();
    this.#o.shared?.bind({
      onPut: (r, initial) => this.#applyShared(r, initial),
      onDelete: (key, revision) => {
        const e = this.#byKey.get(key);
        const endpoints = e && this.#byService.get(e.service);
        // A put applied here already (this server's own, durable before its watch brought the delete) stays.
        if (e && endpoints?.get(e.id) === e && (this.#revisions.get(e.id) ?? 0) < revision)
          this.#remove(endpoints, e, e.expiresAt <= this.#o.now() ? "expired" : "deleted");
      },
    });
  }

  /**
   * Registers an endpoint; the same address and port for the same service is the same registration
   * (its fields are replaced and its TTL starts again), so a restarted workload does not duplicate.
   */
  async register(
    service: string,
    input: RegistrationInput,
  ): Promise<{ endpoint: RegisteredEndpoint; created: boolean }> {
    if (this.#closed) throw new CatenaError(ErrorCode.Closed, "the registry is closed");
    if (this.#o.shared) {
      const existing = this.#byKey.get(registrationKey(service, input.address, input.port));
      const endpoint = this.#registration(service, input, existing);
      const revision = await this.#o.shared.put(endpoint);
      this.#applyShared({ endpoint, revision });
      return { endpoint: this.get(service, endpoint.id) ?? endpoint, created: !existing };
    }
    let endpoints = this.#byService.get(service);
    if (!endpoints) {
      endpoints = new Map();
      this.#byService.set(service, endpoints);
    }
    let existing: RegisteredEndpoint | undefined;
    for (const e of endpoints.values())
      if (e.address === input.address && e.port === input.port) existing = e;
    const endpoint = this.#registration(service, input, existing);
    endpoints.set(endpoint.id, endpoint);
    if (this.#changed(existing, endpoint)) this.#compiled.delete(service);
    if (!existing) this.#o.onChange({ type: "registered", endpoint });
    return { endpoint, created: !existing };
  }

  /** A heartbeat: the TTL starts again. undefined when there is no such registration (any more). */
  async renew(service: string, id: string, ttlSeconds?: number): Promise<RegisteredEndpoint | undefined> {
    const e = this.#byService.get(service)?.get(id);
    if (!e) return undefined;
    const now = this.#o.now();
    const ttl = ttlSeconds ?? e.ttlSeconds;
    const renewed = { renewedAt: new Date(now).toISOString(), expiresAt: now + ttl * 1000, ttlSeconds: ttl };
    if (this.#o.shared) {
      const next = { ...e, ...renewed };
      const revision = await this.#o.shared.put(next);
      this.#applyShared({ endpoint: next, revision });
      return this.get(service, id) ?? next;
    }
    Object.assign(e, renewed);
    return e;
  }

  async deregister(service: string, id: string): Promise<RegisteredEndpoint | undefined> {
    const endpoints = this.#byService.get(service);
    const e = endpoints?.get(id);
    if (!endpoints || !e) return undefined;
    if (this.#o.shared) await this.#o.shared.remove(e);
    // The watch may have removed it meanwhile (the delete came back first).
    if (endpoints.get(id) === e) this.#remove(endpoints, e, "deleted");
    return e;
  }

  get(service: string, id: string): RegisteredEndpoint | undefined {
    return this.#byService.get(service)?.get(id);
  }

  list(service?: string): RegisteredEndpoint[] {
    if (service !== undefined) return [...(this.#byService.get(service)?.values() ?? [])];
    return [...this.#byService.values()].flatMap((m) => [...m.values()]);
  }

  /** The service's registrations as compiler input (the same array until one comes or goes). */
  endpoints(service: string, portNameOf: (port: number) => string | undefined): readonly ServiceEndpoint[] {
    const cached = this.#compiled.get(service);
    if (cached) return cached;
    const out: ServiceEndpoint[] = [];
    for (const e of this.#byService.get(service)?.values() ?? []) {
      const portName = e.portName ?? portNameOf(e.port);
      out.push({
        address: e.address,
        port: e.port,
        weight: e.weight,
        source: "registered",
        owner: e.id,
        ...(portName ? { portName } : {}),
      });
    }
    // Stable order: compiled output (and so xDS versions) must not depend on registration order.
    out.sort((a, b) => (a.owner as string).localeCompare(b.owner as string));
    this.#compiled.set(service, out);
    return out;
  }

  /** Forgets the compiled form of a service (its ports changed, so port names may have). */
  invalidate(service: string): void {
    this.#compiled.delete(service);
  }

  /** Removes every registration whose TTL ran out (shared: here at once, from the bucket by whoever is first). */
  sweep(): void {
    const now = this.#o.now();
    for (const endpoints of this.#byService.values()) {
      for (const e of endpoints.values()) {
        if (e.expiresAt > now) continue;
        const revision = this.#revisions.get(e.id);
        this.#remove(endpoints, e, "expired");
        if (this.#o.shared && revision !== undefined)
          void this.#o.shared.delete(e, revision).catch(() => false);
      }
    }
  }

  #registration(
    service: string,
    input: RegistrationInput,
    existing: RegisteredEndpoint | undefined,
  ): RegisteredEndpoint {
    const now = this.#o.now();
    const iso = new Date(now).toISOString();
    return {
      id: existing?.id ?? `${service}-${randomBytes(6).toString("hex")}`,
      service,
      address: input.address,
      port: input.port,
      weight: input.weight ?? 1,
      labels: input.labels ?? {},
      ...(input.portName ? { portName: input.portName } : {}),
      ttlSeconds: input.ttlSeconds,
      registeredAt: existing?.registeredAt ?? iso,
      renewedAt: iso,
      expiresAt: now + input.ttlSeconds * 1000,
    };
  }

  #changed(existing: RegisteredEndpoint | undefined, endpoint: RegisteredEndpoint): boolean {
    return (
      !existing ||
      existing.weight !== endpoint.weight ||
      existing.portName !== endpoint.portName ||
      JSON.stringify(existing.labels) !== JSON.stringify(endpoint.labels)
    );
  }

  /** A put from the bucket (or this server's own, once durable); an older revision than held is ignored. */
  #applyShared({ endpoint, revision }: SharedRegistration, initial = false): void {
    if (this.#closed) return;
    if ((this.#revisions.get(endpoint.id) ?? 0) >= revision) return;
    const key = registrationKey(endpoint.service, endpoint.address, endpoint.port);
    const previous = this.#byKey.get(key);
    let endpoints = this.#byService.get(endpoint.service);
    // Another registration held the key (taken on two servers at once): the later put wins.
    if (previous && previous.id !== endpoint.id && endpoints?.get(previous.id) === previous)
      this.#remove(endpoints, previous, "deleted");
    if (endpoint.expiresAt <= this.#o.now()) return; // expired on its way
    endpoints = this.#byService.get(endpoint.service);
    if (!endpoints) {
      endpoints = new Map();
      this.#byService.set(endpoint.service, endpoints);
    }
    const existing = endpoints.get(endpoint.id);
    endpoints.set(endpoint.id, endpoint);
    this.#byKey.set(key, endpoint);
    this.#revisions.set(endpoint.id, revision);
    if (this.#changed(existing, endpoint)) this.#compiled.delete(endpoint.service);
    if (!existing)
      this.#o.onChange({
        type: "registered",
        endpoint,
        revision,
        ...(initial && { initial: true as const }),
      });
  }

  #remove(
    endpoints: Map<string, RegisteredEndpoint>,
    e: RegisteredEndpoint,
    reason: "deleted" | "expired",
  ): void {
    endpoints.delete(e.id);
    if (endpoints.size === 0) this.#byService.delete(e.service);
    this.#compiled.delete(e.service);
    const revision = this.#revisions.get(e.id);
    this.#revisions.delete(e.id);
    const key = registrationKey(e.service, e.address, e.port);
    if (this.#byKey.get(key) === e) this.#byKey.delete(key);
    this.#o.onChange({
      type: "deregistered",
      endpoint: e,
      reason,
      ...(revision !== undefined && { revision }),
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

/**
 * Checks a registration body; every problem with its field path, as the rest of the API reports.
 * `ports` are the Service's port names (portName must be one of them).
 */
export function parseRegistration(body: unknown, ports: readonly string[]): RegistrationInput {
  const details: ErrorDetail[] = [];
  const bad = (path: string, message: string) => details.push({ path, message });
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new CatenaError(ErrorCode.Invalid, "bad registration", [
      { path: "", message: "must be a JSON object" },
    ]);
  }
  const b = body as Record<string, unknown>;
  const known = new Set(["address", "port", "ttlSeconds", "weight", "labels", "portName"]);
  for (const k of Object.keys(b)) if (!known.has(k)) bad(k, "unknown field");
  if (typeof b.address !== "string" || isIP(b.address) === 0)
    bad("address", `must be an IPv4 or IPv6 address, got ${JSON.stringify(b.address)}`);
  if (!Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535)
    bad("port", `must be an integer from 1 to 65535, got ${JSON.stringify(b.port)}`);
  if (
    !Number.isInteger(b.ttlSeconds) ||
    (b.ttlSeconds as number) < 1 ||
    (b.ttlSeconds as number) > MAX_TTL_SECONDS
  )
    bad("ttlSeconds", `must be an integer from 1 to ${MAX_TTL_SECONDS}, got ${JSON.stringify(b.ttlSeconds)}`);
  if (
    b.weight !== undefined &&
    (!Number.isInteger(b.weight) || (b.weight as number) < 1 || (b.weight as number) > 128)
  )
    bad("weight", `must be an integer from 1 to 128, got ${JSON.stringify(b.weight)}`);
  if (b.labels !== undefined) {
    if (typeof b.labels !== "object" || b.labels === null || Array.isArray(b.labels))
      bad("labels", "must be an object");
    else
      for (const [k, v] of Object.entries(b.labels))
        if (typeof v !== "string") bad(`labels.${k}`, "must be a string");
  }
  if (b.portName !== undefined && (typeof b.portName !== "string" || !ports.includes(b.portName)))
    bad("portName", `must name one of the Service's ports (${ports.join(", ")})`);
  if (details.length > 0) throw new CatenaError(ErrorCode.Invalid, "bad registration", details);
  return {
    address: b.address as string,
    port: b.port as number,
    ttlSeconds: b.ttlSeconds as number,
    ...(b.weight !== undefined ? { weight: b.weight as number } : {}),
    ...(b.labels !== undefined ? { labels: b.labels as Record<string, string> } : {}),
    ...(b.portName !== undefined ? { portName: b.portName as string } : {}),
  };
}
