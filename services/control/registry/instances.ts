// Function instances that hold an xDS stream: addressable members of the mesh. An instance is
// registered while at least one of its streams is open (ADS opens one; per-type clients several).
// An instance about to stop can be marked draining first: it is then left out of `list`, so the
// compiler routes no new connections to it while it finishes the ones it has (the local runtime
// does this before SIGTERM on scale-down).
//
// With several control servers (`--store nats-kv`), `shared` publishes this server's instances and
// brings in those connected to the others (shared-instances.ts), so `list` is every server's and
// each compiles whole chains; `drain` still concerns instances connected here.
import type { NodeStatus, StatusReader } from "../../../xds/index.js";
import type { SharedInstances } from "./shared-instances.js";

export interface FunctionInstance {
  id: string;
  /** The ServiceFunction it runs (the xDS node's `cluster`). */
  function: string;
  type: string;
  /** Its own address (node metadata `address`), where its listeners bind. */
  address?: string;
  /** Its admin endpoint (node metadata `admin`), `host:port`. */
  admin?: string;
  /** Its certificate signing request (node metadata `csr`, PEM): the key the mesh CA certifies. */
  csr?: string;
  connectedAt: string;
}

export type InstanceChange = "connected" | "disconnected" | "draining";

export interface InstanceRegistryOptions {
  /**
   * Called after every change (registration or departure), with the instance concerned; `origin`
   * says whether it is connected here or to another control server (shared registries only).
   */
  onChange?: (instance: FunctionInstance, change: InstanceChange, origin: "local" | "remote") => void;
  /** What an instance holds (its ACKs and NACKs) changed, as the shared registry says (shared only). */
  onStatus?: (id: string) => void;
  /** Instances of every control server on the bucket (`--store nats-kv`). */
  shared?: SharedInstances;
  /** The local ADS server's status table, for what a shared registry publishes of each instance. */
  localStatus?: () => StatusReader | undefined;
}

export class InstanceRegistry {
  readonly #instances = new Map<string, { instance: FunctionInstance; streams: number; draining?: true }>();
  readonly #onChange: InstanceRegistryOptions["onChange"];
  readonly #shared: SharedInstances | undefined;
  /** list()'s answers since the last change, per function ("" for all). */
  readonly #listed = new Map<string, FunctionInstance[]>();

  constructor(options: InstanceRegistryOptions = {}) {
    this.#onChange = options.onChange;
    this.#shared = options.shared;
    this.#shared?.bind({
      local: (id) => {
        const entry = this.#instances.get(id);
        return entry && { instance: entry.instance, draining: entry.draining === true };
      },
      localIds: () => this.#instances.keys(),
      statusOf: (id): NodeStatus | undefined => options.localStatus?.()?.node(id),
      onRemote: (instance, change) => {
        this.#listed.clear();
        // An instance connected here too is this server's to report.
        if (!this.#instances.has(instance.id)) this.#onChange?.(instance, change, "remote");
      },
      onStatus: (id) => options.onStatus?.(id),
    });
  }

  streamOpened(instance: Omit<FunctionInstance, "connectedAt">): void {
    const entry = this.#instances.get(instance.id);
    if (entry) {
      entry.streams++;
      return;
    }
    const registered = { ...instance, connectedAt: new Date().toISOString() };
    this.#instances.set(instance.id, { instance: registered, streams: 1 });
    this.#listed.clear();
    this.#shared?.publish(instance.id, true);
    this.#onChange?.(registered, "connected", "local");
  }

  streamClosed(id: string): void {
    const entry = this.#instances.get(id);
    if (!entry) return;
    entry.streams--;
    if (entry.streams > 0) return;
    this.#instances.delete(id);
    this.#listed.clear();
    this.#shared?.withdraw(id);
    this.#onChange?.(entry.instance, "disconnected", "local");
  }

  /** Leaves the instance out of `list` until its streams close; false when it is not connected here. */
  drain(id: string): boolean {
    const entry = this.#instances.get(id);
    if (!entry) return false;
    if (entry.draining) return true;
    entry.draining = true;
    this.#listed.clear();
    this.#shared?.publish(id);
    this.#onChange?.(entry.instance, "draining", "local");
    return true;
  }

  /** What the instance holds changed (an ACK or NACK here): shared registries publish it. */
  xdsChanged(id: string): void {
    if (this.#instances.has(id)) this.#shared?.publish(id);
  }

  /**
   * Where the data path status reads what instances hold: the local ADS server's table, or, shared,
   * every instance as the bucket says (so every control server derives the same status).
   */
  statusReader(local: StatusReader): StatusReader {
    return this.#shared?.reader ?? local;
  }

  get(id: string): FunctionInstance | undefined {
    const local = this.#instances.get(id)?.instance;
    if (local || !this.#shared) return local;
    for (const r of this.#shared.remote()) if (r.instance.id === id) return r.instance;
    return undefined;
  }

  /** Instances of one ServiceFunction (or all), draining ones left out, ordered by id so compiled output is stable. */
  list(fn?: string): FunctionInstance[] {
    const cached = this.#listed.get(fn ?? "");
    if (cached) return cached.slice();
    const out: FunctionInstance[] = [];
    for (const { instance, draining } of this.#instances.values())
      if (!draining && (fn === undefined || instance.function === fn)) out.push(instance);
    if (this.#shared) {
      for (const { instance, draining } of this.#shared.remote())
        if (!draining && (fn === undefined || instance.function === fn) && !this.#instances.has(instance.id))
          out.push(instance);
    }
    out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#listed.set(fn ?? "", out);
    return out.slice();
  }
}
