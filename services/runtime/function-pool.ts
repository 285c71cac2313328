// The instances of one ServiceFunction: `replicas` of them, ids `<function>-<index>` (the lowest free
// indexes, so ids and with them addresses stay stable across restarts and re-scaling). Scaling down
// takes the highest indexes out: first out of routing (withdraw), then SIGTERM, so the instance
// drains the connections it has while new ones already go elsewhere.
import type { Logger } from "../../xds/logger.js";
import { Mutex } from "../control/mutex.js";
import type { AddressPool } from "./address-pool.js";
import { type InstanceInfo, InstanceProcess, type InstanceProcessDeps } from "./instance-process.js";
import type { InstanceSpec } from "./launcher.js";

/** What the runtime reads of a ServiceFunction. */
export interface FunctionSpec {
  name: string;
  type: string;
  replicas: number;
  plugin?: string;
}

/** Takes an instance out of routing before it stops; resolves once upstream hops stopped using it. */
export interface Withdrawal {
  withdraw(instanceId: string): Promise<void>;
}

export interface FunctionPoolDeps {
  process: InstanceProcessDeps;
  addresses: AddressPool;
  withdrawal: Withdrawal | undefined;
  logger: Logger;
  /** Extra flags for one instance (the discovery function's DNS address). */
  extraArgs(fn: FunctionSpec, index: number, address: string): string[];
  onScaled(fn: string, from: number, to: number): void;
}

export class FunctionPool {
  readonly name: string;
  readonly #deps: FunctionPoolDeps;
  readonly #mutex = new Mutex();
  #spec: FunctionSpec | undefined;
  readonly #live = new Map<number, InstanceProcess>();
  /** Indexes on their way out: their id and address are not reused until the process is gone. */
  readonly #leaving = new Map<number, { process: InstanceProcess; gone: Promise<void> }>();
  #closed = false;

  constructor(name: string, deps: FunctionPoolDeps) {
    this.name = name;
    this.#deps = deps;
  }

  /** Reconciles to this spec; resolves once new instances are spawned (not once they are ready). */
  update(spec: FunctionSpec): Promise<void> {
    return this.#mutex.run(() => this.#reconcile(spec));
  }

  instances(): InstanceInfo[] {
    return [...this.#live.values()].map((p) => p.info());
  }

  /** Every process of this pool, leaving ones too. */
  processes(): InstanceProcess[] {
    return [...this.#live.values(), ...[...this.#leaving.values()].map((l) => l.process)];
  }

  async #reconcile(spec: FunctionSpec): Promise<void> {
    if (this.#closed) return;
    const previous = this.#spec;
    this.#spec = spec;
    if (previous && (previous.type !== spec.type || previous.plugin !== spec.plugin)) {
      // Another program under the same ids: the old instances must be gone before the new bind.
      this.#deps.logger.info("function type changed: replacing its instances", { function: this.name });
      await Promise.all([...this.#live.keys()].map((i) => this.#leave(i, false)));
      await this.#allGone();
    }
    const from = this.#live.size;
    while (this.#live.size < spec.replicas) {
      const index = this.#freeIndex();
      const started = await this.#start(spec, index);
      if (!started) break;
    }
    while (this.#live.size > spec.replicas) {
      const index = Math.max(...this.#live.keys());
      void this.#leave(index, true);
    }
    if (from !== this.#live.size || !previous) this.#deps.onScaled(this.name, from, this.#live.size);
  }

  #freeIndex(): number {
    let i = 0;
    while (this.#live.has(i) || this.#leaving.has(i)) i++;
    return i;
  }

  async #start(spec: FunctionSpec, index: number): Promise<boolean> {
    const id = `${spec.name}-${index}`;
    let address: string;
    try {
      address = await this.#deps.addresses.acquire(id, spec.name);
    } catch (err) {
      this.#deps.logger.error("no address for instance", { instance: id, error: (err as Error).message });
      return false;
    }
    if (this.#closed) return false;
    const instance: InstanceSpec = {
      id,
      function: spec.name,
      type: spec.type,
      address,
      ...(spec.plugin ? { plugin: spec.plugin } : {}),
      extraArgs: this.#deps.extraArgs(spec, index, address),
    };
    const process = new InstanceProcess(instance, this.#deps.process);
    this.#live.set(index, process);
    process.start();
    return true;
  }

  /** Withdraws (when asked), stops and releases one instance; tracked in #leaving until gone. */
  #leave(index: number, withdraw: boolean): Promise<void> {
    const process = this.#live.get(index);
    if (!process) return this.#leaving.get(index)?.gone ?? Promise.resolve();
    this.#live.delete(index);
    const gone = (async () => {
      if (withdraw && this.#deps.withdrawal) {
        await this.#deps.withdrawal.withdraw(process.spec.id).catch((err: unknown) => {
          this.#deps.logger.warn("withdraw failed; stopping anyway", {
            instance: process.spec.id,
            error: (err as Error).message,
          });
        });
      }
      await process.stop();
      if (this.#closed) return;
      await this.#deps.addresses.release(process.spec.id).catch((err: unknown) => {
        this.#deps.logger.warn("address not released", {
          instance: process.spec.id,
          error: (err as Error).message,
        });
      });
    })().finally(() => this.#leaving.delete(index));
    this.#leaving.set(index, { process, gone });
    return gone;
  }

  /** The ServiceFunction is gone: stop every instance (they drain) and give their addresses back. */
  delete(): Promise<void> {
    return this.#mutex.run(async () => {
      const from = this.#live.size;
      await Promise.all([...this.#live.keys()].map((i) => this.#leave(i, false)));
      await this.#allGone();
      this.#closed = true;
      if (from > 0) this.#deps.onScaled(this.name, from, 0);
    });
  }

  /** Stops every instance (they drain); addresses are kept so the next start reuses them. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.all([...this.#live.values()].map((p) => p.stop()))
      .then(() => this.#allGone())
      .then(() => undefined);
  }

  destroy(): void {
    this.#closed = true;
    for (const p of this.processes()) p.destroy();
  }

  async #allGone(): Promise<void> {
    await Promise.all([...this.#leaving.values()].map((l) => l.gone));
  }
}
