// Function instances that hold an xDS stream: addressable members of the mesh. An instance is
// registered while at least one of its streams is open (ADS opens one; per-type clients several).
// An instance about to stop can be marked draining first: it is then left out of `list`, so the
// compiler routes no new connections to it while it finishes the ones it has (the local runtime
// does this before SIGTERM on scale-down).
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

export interface InstanceRegistryOptions {
  /** Called after every change (registration or departure), with the instance concerned. */
  onChange?: (instance: FunctionInstance, change: "connected" | "disconnected" | "draining") => void;
}

export class InstanceRegistry {
  readonly #instances = new Map<string, { instance: FunctionInstance; streams: number; draining?: true }>();
  readonly #onChange: InstanceRegistryOptions["onChange"];

  constructor(options: InstanceRegistryOptions = {}) {
    this.#onChange = options.onChange;
  }

  streamOpened(instance: Omit<FunctionInstance, "connectedAt">): void {
    const entry = this.#instances.get(instance.id);
    if (entry) {
      entry.streams++;
      return;
    }
    const registered = { ...instance, connectedAt: new Date().toISOString() };
    this.#instances.set(instance.id, { instance: registered, streams: 1 });
    this.#onChange?.(registered, "connected");
  }

  streamClosed(id: string): void {
    const entry = this.#instances.get(id);
    if (!entry) return;
    entry.streams--;
    if (entry.streams > 0) return;
    this.#instances.delete(id);
    this.#onChange?.(entry.instance, "disconnected");
  }

  /** Leaves the instance out of `list` until its streams close; false when it is not registered. */
  drain(id: string): boolean {
    const entry = this.#instances.get(id);
    if (!entry) return false;
    if (entry.draining) return true;
    entry.draining = true;
    this.#onChange?.(entry.instance, "draining");
    return true;
  }

  get(id: string): FunctionInstance | undefined {
    return this.#instances.get(id)?.instance;
  }

  /** Instances of one ServiceFunction (or all), draining ones left out, ordered by id so compiled output is stable. */
  list(fn?: string): FunctionInstance[] {
    const out: FunctionInstance[] = [];
    for (const { instance, draining } of this.#instances.values())
      if (!draining && (fn === undefined || instance.function === fn)) out.push(instance);
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
