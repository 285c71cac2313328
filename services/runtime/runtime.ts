// The local runtime (`catena up`): for each ServiceFunction it keeps `replicas` instances running as
// child processes (`catena function TYPE`), each with its own loopback address and a stable node id;
// restarts crashed ones with backoff; scales on apply; on close drains and stops everything. What it
// does is published as events (`dev.catena.runtime.*`) and the instances' logs come out as one stream.
import type { BackoffOptions } from "../../xds/client/backoff.js";
import { type Logger, silentLogger } from "../../xds/logger.js";
import { ErrorCode, isCatenaError } from "../control/errors.js";
import type { EventSink } from "../control/events/types.js";
import type { ServiceFunctionSpec } from "../control/model/index.js";
import type { Change, Store, Watch } from "../control/store/store.js";
import type { AddressPool } from "./address-pool.js";
import { RUNTIME_ERROR, RuntimeError } from "./errors.js";
import { FunctionPool, type FunctionSpec, type Withdrawal } from "./function-pool.js";
import type { InstanceEventVerb, InstanceInfo, LogSink } from "./instance-process.js";
import type { InstanceSpec, Launcher } from "./launcher.js";

export interface RuntimeOptions {
  launcher: Launcher;
  addresses: AddressPool;
  /** Takes an instance out of routing before scale-down stops it; none: SIGTERM straight away. */
  withdrawal: Withdrawal | undefined;
  logs: LogSink;
  events: EventSink | undefined;
  logger: Logger;
  backoff: BackoffOptions;
  /** An instance that ran this long and then crashed restarts after the initial delay again. */
  stableMs: number;
  /** SIGTERM → SIGKILL: longer than the host's drain timeout (10 s), so draining is not cut short. */
  stopGraceMs: number;
  /** Extra flags per instance (the discovery function's DNS address). */
  extraArgs(fn: FunctionSpec, index: number, address: string): string[];
}

export type RuntimeInit = Partial<RuntimeOptions> & Pick<RuntimeOptions, "launcher" | "addresses" | "logs">;

export function defaultRuntimeOptions(): Omit<RuntimeOptions, "launcher" | "addresses" | "logs"> {
  return {
    withdrawal: undefined,
    events: undefined,
    logger: silentLogger,
    backoff: { initialMs: 250, maxMs: 15_000, multiplier: 2, jitter: 0.2 },
    stableMs: 10_000,
    stopGraceMs: 12_000,
    extraArgs: () => [],
  };
}

function runtimeOptions(init: RuntimeInit): RuntimeOptions {
  const o: RuntimeOptions = { ...defaultRuntimeOptions(), ...definedOnly(init) } as RuntimeOptions;
  const bad = (field: string, why: string) =>
    new RuntimeError(RUNTIME_ERROR.invalidArgument, `${field}: ${why}`);
  if (!(o.backoff.initialMs > 0 && o.backoff.maxMs >= o.backoff.initialMs && o.backoff.multiplier >= 1))
    throw bad("backoff", "needs initialMs > 0, maxMs >= initialMs, multiplier >= 1");
  for (const f of ["stableMs", "stopGraceMs"] as const)
    if (!(o[f] >= 0 && Number.isFinite(o[f]))) throw bad(f, "must be a number >= 0");
  return o;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export class Runtime {
  readonly options: RuntimeOptions;
  readonly #pools = new Map<string, FunctionPool>();
  #closing: Promise<void> | undefined;
  readonly #killOnExit = () => this.destroy();

  constructor(init: RuntimeInit) {
    this.options = runtimeOptions(init);
    // A runtime that dies without close() must not leave instances serving a stale config.
    process.once("exit", this.#killOnExit);
  }

  /** Creates or updates a function's pool; resolves once its instances are spawned. */
  apply(spec: FunctionSpec): Promise<void> {
    if (this.#closing) return Promise.reject(new RuntimeError(RUNTIME_ERROR.closed, "runtime is closed"));
    let pool = this.#pools.get(spec.name);
    if (!pool) {
      pool = new FunctionPool(spec.name, this.#poolDeps());
      this.#pools.set(spec.name, pool);
    }
    return pool.update(spec);
  }

  /** The ServiceFunction was deleted: its instances drain and stop. */
  async remove(name: string): Promise<void> {
    const pool = this.#pools.get(name);
    if (!pool) return;
    this.#pools.delete(name);
    await pool.delete();
  }

  /** Every running instance, ordered by id. */
  instances(): InstanceInfo[] {
    return [...this.#pools.values()]
      .flatMap((p) => p.instances())
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Process ids of every child, leaving ones too. */
  pids(): number[] {
    return [...this.#pools.values()].flatMap((p) => p.processes().flatMap((x) => (x.pid ? [x.pid] : [])));
  }

  /** Drains and stops every instance. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#pools.values()].map((p) => p.close()));
      process.removeListener("exit", this.#killOnExit);
    })();
    return this.#closing;
  }

  /** Kills every instance at once. Idempotent. */
  destroy(): void {
    this.#closing ??= Promise.resolve();
    for (const p of this.#pools.values()) p.destroy();
    process.removeListener("exit", this.#killOnExit);
  }

  #poolDeps() {
    const o = this.options;
    const emit = (name: string, verb: string, data: Record<string, unknown>) =>
      o.events?.emit({ kind: "runtime", name, verb, data });
    return {
      addresses: o.addresses,
      withdrawal: o.withdrawal,
      logger: o.logger,
      extraArgs: o.extraArgs,
      onScaled: (fn: string, from: number, to: number) => {
        if (from !== to) o.logger.info("scaled", { function: fn, from, to });
        emit(fn, "scaled", { function: fn, from, to });
      },
      process: {
        launcher: o.launcher,
        logs: o.logs,
        backoff: o.backoff,
        stableMs: o.stableMs,
        stopGraceMs: o.stopGraceMs,
        onEvent: (verb: InstanceEventVerb, spec: InstanceSpec, data: Record<string, unknown>) => {
          // `pid` would read as the runtime's own in its log lines.
          const { pid, ...rest } = data;
          const fields = { instance: spec.id, function: spec.function, childPid: pid, ...rest };
          if (verb === "exited") o.logger.warn("instance exited; restarting", fields);
          else o.logger.info(`instance ${verb}`, fields);
          emit(spec.id, verb, {
            function: spec.function,
            type: spec.type,
            address: spec.address,
            ...data,
          });
        },
      },
    };
  }
}

export function startRuntime(init: RuntimeInit): Runtime {
  return new Runtime(init);
}

/** A ServiceFunction as the runtime runs it. */
export function functionSpec(name: string, spec: ServiceFunctionSpec): FunctionSpec {
  return {
    name,
    type: spec.type,
    replicas: spec.replicas ?? 1,
    ...(spec.plugin ? { plugin: spec.plugin } : {}),
  };
}

/**
 * Feeds the runtime from the store's ServiceFunctions until the store closes or `stop()` is called.
 * A watch that fell behind is opened again with the current state (apply is idempotent).
 */
export function followStore(runtime: Runtime, store: Store): { done: Promise<void>; stop(): void } {
  let watch: Watch<Change> | undefined;
  let stopped = false;
  const follow = async () => {
    watch = store.watch({ kinds: ["ServiceFunction"], initial: true });
    for await (const change of watch) {
      const { kind } = change.object;
      const { name } = change.object.metadata;
      if (kind !== "ServiceFunction" || change.type === "status") continue;
      const applied =
        change.type === "deleted"
          ? runtime.remove(name)
          : runtime.apply(functionSpec(name, change.object.spec as ServiceFunctionSpec));
      // Not awaited: one function's slow drain must not hold up the others' scaling.
      applied.catch((err: unknown) =>
        runtime.options.logger.error("runtime could not apply", {
          function: name,
          error: (err as Error).message,
        }),
      );
    }
  };
  const done = (async () => {
    while (!stopped) {
      try {
        await follow();
        return;
      } catch (err) {
        if (stopped || isCatenaError(err, ErrorCode.Closed)) return;
        runtime.options.logger.warn("ServiceFunction watch failed; watching again", {
          error: (err as Error).message,
        });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  return {
    done,
    stop: () => {
      stopped = true;
      watch?.close();
    },
  };
}
