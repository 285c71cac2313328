// A client's state for one type: what its watches want, what it accepted, and fan-out of events.
import type { ResourceType } from "../resource-types/resource-type.js";
import type { FieldError } from "../validated.js";
import { type WatchEvent, WatchQueue } from "./watch-queue.js";

export interface Accepted<T> {
  name: string;
  version: string;
  value: T;
}

interface Watch<T> {
  queue: WatchQueue<T>;
  names: "*" | ReadonlySet<string>;
}

export class TypeSubscription<T> {
  readonly type: ResourceType<T>;
  readonly accepted = new Map<string, Accepted<T>>();
  /** Names the server said do not exist, so new watches learn it too. */
  readonly #absent = new Set<string>();
  readonly #watches = new Set<Watch<T>>();
  /** SotW: the last version accepted, and the nonce of the last response on this stream. */
  sotwVersion = "";
  nonce = "";
  /** SotW: whether this stream has had a request for the type (a first empty list means wildcard). */
  sotwTold = false;
  /** Delta: the subscription the server has been told of on this stream. */
  toldWildcard = false;
  toldNames = new Set<string>();

  #synced = false;
  #syncWaiters: (() => void)[] = [];

  constructor(type: ResourceType<T>) {
    this.type = type;
  }

  /** Resolves once a response of this type was processed: "no resources" is then an answer. */
  whenSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  get typeUrl(): string {
    return this.type.typeUrl;
  }

  get wildcard(): boolean {
    for (const w of this.#watches) if (w.names === "*") return true;
    return false;
  }

  /** Explicitly named resources, over every watch. */
  names(): Set<string> {
    const out = new Set<string>();
    for (const w of this.#watches) if (w.names !== "*") for (const n of w.names) out.add(n);
    return out;
  }

  get watched(): boolean {
    return this.#watches.size > 0;
  }

  interested(name: string): boolean {
    for (const w of this.#watches) if (w.names === "*" || w.names.has(name)) return true;
    return false;
  }

  addWatch(names: "*" | string[], onClose: (queue: WatchQueue<T>) => void): WatchQueue<T> {
    const watch: Watch<T> = {
      names: names === "*" ? "*" : new Set(names),
      queue: new WatchQueue<T>(() => {
        this.#watches.delete(watch);
        this.#forgetUnwanted();
        onClose(watch.queue);
      }),
    };
    this.#watches.add(watch);
    const wants = (n: string) => watch.names === "*" || watch.names.has(n);
    for (const a of this.accepted.values()) {
      if (wants(a.name))
        watch.queue.push({ type: "changed", name: a.name, version: a.version, value: a.value });
    }
    for (const n of this.#absent) if (wants(n)) watch.queue.push({ type: "does-not-exist", name: n });
    return watch.queue;
  }

  accept(name: string, version: string, value: T): void {
    this.#absent.delete(name);
    if (this.accepted.get(name)?.version === version) return;
    this.accepted.set(name, { name, version, value });
    this.#emit({ type: "changed", name, version, value });
  }

  remove(name: string): void {
    const had = this.accepted.delete(name);
    if (!had && this.#absent.has(name)) return;
    this.#absent.add(name);
    this.#emit({ type: "does-not-exist", name });
  }

  reject(name: string, errors: FieldError[]): void {
    this.#emit({ type: "error", name, errors });
  }

  /** Closes every watch, ending their iterators. */
  closeAll(): void {
    for (const w of [...this.#watches]) w.queue.close();
  }

  #emit(event: WatchEvent<T>): void {
    for (const w of this.#watches) if (w.names === "*" || w.names.has(event.name)) w.queue.push(event);
  }

  /** A resource no watch wants any more is dropped, so a reconnect does not claim to hold it. */
  #forgetUnwanted(): void {
    for (const name of [...this.accepted.keys()]) if (!this.interested(name)) this.accepted.delete(name);
    for (const name of [...this.#absent]) if (!this.interested(name)) this.#absent.delete(name);
  }
}
