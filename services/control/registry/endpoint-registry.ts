// Self-registered endpoints (DESIGN.md "Self-registration"): a workload POSTs its address with a TTL
// and renews it with heartbeats; when the heartbeats stop, a sweep removes it within TTL plus one sweep
// interval. Renewals change nothing anyone compiles, so they cost no recompile and no xDS push. State
// lives in memory: after a control server restart a heartbeat gets 404 and the workload registers again.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { ServiceEndpoint } from "../compiler/service-endpoints.js";
import { CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";

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

export type RegistrationChange =
  | { type: "registered"; endpoint: RegisteredEndpoint }
  | { type: "deregistered"; endpoint: RegisteredEndpoint; reason: "deleted" | "expired" };

export interface EndpointRegistryOptions {
  /** How often expired registrations are removed. */
  sweepIntervalMs: number;
  now: () => number;
  /** After every registration and removal (not after renewals). */
  onChange: (change: RegistrationChange) => void;
}

export const MAX_TTL_SECONDS = 86_400;

export class EndpointRegistry {
  readonly #o: EndpointRegistryOptions;
  readonly #byService = new Map<string, Map<string, RegisteredEndpoint>>();
  /** What the compiler reads, per service; rebuilt only when a registration comes or goes. */
  readonly #compiled = new Map<string, readonly ServiceEndpoint[]>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(options: Partial<EndpointRegistryOptions> & Pick<EndpointRegistryOptions, "onChange">) {
    // Short sweeps spread expiries (and their events and recompiles) instead of bunching them once a second.
    this.#o = { sweepIntervalMs: 200, now: Date.now, ...options };
    this.#timer = setInterval(() => this.sweep(), this.#o.sweepIntervalMs);
    this.#timer.unref();
  }

  /**
   * Registers an endpoint; the same address and port for the same service is the same registration
   * (its fields are replaced and its TTL starts again), so a restarted workload does not duplicate.
   */
  register(service: string, input: RegistrationInput): { endpoint: RegisteredEndpoint; created: boolean } {
    if (this.#closed) throw new CatenaError(ErrorCode.Closed, "the registry is closed");
    let endpoints = this.#byService.get(service);
    if (!endpoints) {
      endpoints = new Map();
      this.#byService.set(service, endpoints);
    }
    const now = this.#o.now();
    const iso = new Date(now).toISOString();
    let existing: RegisteredEndpoint | undefined;
    for (const e of endpoints.values())
      if (e.address === input.address && e.port === input.port) existing = e;
    const endpoint: RegisteredEndpoint = {
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
    endpoints.set(endpoint.id, endpoint);
    const changed =
      !existing ||
      existing.weight !== endpoint.weight ||
      existing.portName !== endpoint.portName ||
      JSON.stringify(existing.labels) !== JSON.stringify(endpoint.labels);
    if (changed) this.#compiled.delete(service);
    if (!existing) this.#o.onChange({ type: "registered", endpoint });
    return { endpoint, created: !existing };
  }

  /** A heartbeat: the TTL starts again. undefined when there is no such registration (any more). */
  renew(service: string, id: string, ttlSeconds?: number): RegisteredEndpoint | undefined {
    const e = this.#byService.get(service)?.get(id);
    if (!e) return undefined;
    const now = this.#o.now();
    if (ttlSeconds !== undefined) e.ttlSeconds = ttlSeconds;
    e.renewedAt = new Date(now).toISOString();
    e.expiresAt = now + e.ttlSeconds * 1000;
    return e;
  }

  deregister(service: string, id: string): RegisteredEndpoint | undefined {
    const endpoints = this.#byService.get(service);
    const e = endpoints?.get(id);
    if (!endpoints || !e) return undefined;
    this.#remove(endpoints, e, "deleted");
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

  /** Removes every registration whose TTL ran out. */
  sweep(): void {
    const now = this.#o.now();
    for (const endpoints of this.#byService.values()) {
      for (const e of endpoints.values()) if (e.expiresAt <= now) this.#remove(endpoints, e, "expired");
    }
  }

  #remove(
    endpoints: Map<string, RegisteredEndpoint>,
    e: RegisteredEndpoint,
    reason: "deleted" | "expired",
  ): void {
    endpoints.delete(e.id);
    if (endpoints.size === 0) this.#byService.delete(e.service);
    this.#compiled.delete(e.service);
    this.#o.onChange({ type: "deregistered", endpoint: e, reason });
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
