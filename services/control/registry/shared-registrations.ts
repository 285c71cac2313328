// Self-registrations shared by several control servers (`--store nats-kv`), in the bucket
// `<ROOT>_ENDPOINTS`: key `<service>.<address>.<port>` (one registration per address and port of a
// Service, as on one server), value the registration with its absolute expiry. A registration,
// renewal or deregistration is answered once its put or delete is durable; every server applies
// what its watch brings (the one that took the request too, so all apply the same sequence), and
// each sweeps expiries itself (the key is then deleted by whoever gets there first).
// Expiry times are absolute, set by the server that took the heartbeat: control servers' clocks
// must agree (NTP) to well within a TTL.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { StoreLogger } from "../store/embedded-store.js";
import { KvCas } from "../store/kv-cas.js";
import { type BucketEntry, BucketWatch } from "../store/kv-watch.js";
import type { RegisteredEndpoint } from "./endpoint-registry.js";

export interface SharedRegistrationsOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  kv: KV;
  bucket: string;
  logger: StoreLogger;
}

/** A registration as the bucket has it: the endpoint and the revision of its key. */
export interface SharedRegistration {
  endpoint: RegisteredEndpoint;
  revision: number;
}

export interface SharedRegistrationsBinding {
  /**
   * A registration was put (new, renewed or changed): by this server or another. `initial`: it was
   * in the bucket when this server started (not news: no event).
   */
  onPut(registration: SharedRegistration, initial: boolean): void;
  /** A registration's key was deleted (deregistered, or expired and swept). */
  onDelete(key: string, revision: number): void;
}

const decoder = new TextDecoder();

export function registrationKey(service: string, address: string, port: number): string {
  // IPv6 colons are no key tokens; dots stay separators.
  return `${service}.${address.replaceAll(":", "-")}.${port}`;
}

export class SharedRegistrations {
  readonly #o: SharedRegistrationsOptions;
  readonly #cas: KvCas<RegisteredEndpoint>;
  readonly #watch: BucketWatch;
  #binding: SharedRegistrationsBinding | undefined;
  /** Entries that arrived before the binding (the initial load), replayed on bind. */
  #early: BucketEntry[] | undefined = [];
  #applied = 0;
  #markReady: () => void = () => {};
  readonly #ready = new Promise<void>((r) => {
    this.#markReady = r;
  });

  constructor(options: SharedRegistrationsOptions) {
    this.#o = options;
    this.#cas = new KvCas<RegisteredEndpoint>(options.kv);
    this.#watch = new BucketWatch({
      nc: options.nc,
      jsm: options.jsm,
      bucket: options.bucket,
      logger: options.logger,
      applied: () => this.#applied,
      onEntry: (entry, pending) => {
        this.#applied = entry.revision;
        if (this.#early) this.#early.push(entry);
        else this.#deliver(entry);
        if (pending === 0) this.#markReady();
      },
    });
  }

  /** Loads what the bucket holds (bounded wait): registrations outlive the server that took them. */
  async start(timeoutMs = 10_000): Promise<void> {
    const info = await this.#o.jsm.streams.info(`KV_${this.#o.bucket}`);
    await this.#watch.start(Date.now() + timeoutMs);
    if (info.state.messages === 0) this.#markReady();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#ready, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  bind(binding: SharedRegistrationsBinding): void {
    this.#binding = binding;
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const entry of early) this.#deliver(entry, true);
  }

  /** Puts the registration; resolves with its revision once durable. */
  async put(endpoint: RegisteredEndpoint): Promise<number> {
    const key = registrationKey(endpoint.service, endpoint.address, endpoint.port);
    return this.#o.kv.put(key, JSON.stringify(endpoint));
  }

  /** Deletes it, whatever happened to it meanwhile (a deregistration). */
  async remove(endpoint: RegisteredEndpoint): Promise<void> {
    await this.#o.kv.delete(registrationKey(endpoint.service, endpoint.address, endpoint.port));
  }

  /** Deletes it unless it moved past `revision` (renewed or replaced meanwhile); false then (a sweep). */
  delete(endpoint: RegisteredEndpoint, revision: number): Promise<boolean> {
    return this.#cas.delete(registrationKey(endpoint.service, endpoint.address, endpoint.port), revision);
  }

  async close(): Promise<void> {
    await this.#watch.close();
  }

  #deliver(entry: BucketEntry, initial = false): void {
    if (entry.op !== "PUT") {
      this.#binding?.onDelete(entry.key, entry.revision);
      return;
    }
    try {
      const endpoint = JSON.parse(decoder.decode(entry.data)) as RegisteredEndpoint;
      this.#binding?.onPut({ endpoint, revision: entry.revision }, initial);
    } catch {
      this.#o.logger.warn("shared registrations: unreadable entry", { key: entry.key });
    }
  }
}
