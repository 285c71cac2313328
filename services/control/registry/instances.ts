// Function instances that hold an xDS stream: addressable members of the mesh. An instance is
// registered while at least one of its streams is open (ADS opens one; per-type clients several).
export interface FunctionInstance {
  id: string;
  /** The ServiceFunction it runs (the xDS node's `cluster`). */
  function: string;
  type: string;
  /** Its own address (node metadata `address`), where its listeners bind. */
  address?: string;
  /** Its admin endpoint (node metadata `admin`), `host:port`. */
  admin?: string;
  connectedAt: string;
}

export interface InstanceRegistryOptions {
  /** Called after every change (registration or departure), with the instance concerned. */
  onChange?: (instance: FunctionInstance, change: "connected" | "disconnected") => void;
}

export class InstanceRegistry {
  readonly #instances = new Map<string, { instance: FunctionInstance; streams: number }>();
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

  get(id: string): FunctionInstance | undefined {
    return this.#instances.get(id)?.instance;
  }

  /** Instances of one ServiceFunction (or all), ordered by id so compiled output is stable. */
  list(fn?: string): FunctionInstance[] {
    const out: FunctionInstance[] = [];
    for (const { instance } of this.#instances.values())
      if (fn === undefined || instance.function === fn) out.push(instance);
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
