// Turns the stored model (and the registered function instances) into xDS snapshots.
// Services go to one shared snapshot, read by proxyless gRPC clients and discovery instances;
// each function instance has a snapshot of its own (its hops' listeners and clusters).
import type { Logger } from "pino";
import { type Node, type Resource, Snapshot, type SnapshotCache } from "../../../xds/index.js";
import type { ServiceFunctionSpec } from "../model/index.js";
import type { InstanceRegistry } from "../registry/instances.js";
import type { Change, Store, Watch } from "../store/store.js";
import { ModelState } from "./model-state.js";
import { serviceEndpoints } from "./service-endpoints.js";
import { serviceResources } from "./service-resources.js";

/** Snapshot key of everything a service reader may see. */
export const SERVICES_KEY = "services";

export type Admission = { ok: true } | { ok: false; reason: string };

export interface CompilerOptions {
  store: Store;
  cache: SnapshotCache;
  instances: InstanceRegistry;
  logger: Logger;
}

export class Compiler {
  readonly state = new ModelState();
  readonly #options: CompilerOptions;
  /** Per service: the endpoints it was last compiled from, and the resources that gave. */
  readonly #services = new Map<string, { fingerprint: string; resources: Resource[] }>();
  #servicesSnapshot = Snapshot.empty();
  readonly #instanceKeys = new Set<string>();
  #scheduled = false;
  #watch: Watch<Change> | undefined;

  constructor(options: CompilerOptions) {
    this.#options = options;
  }

  /** Which snapshot a node reads: its own if it runs a ServiceFunction's hops, else the services'. */
  nodeKey(node: Node): string {
    const fn = this.state.get("ServiceFunction", node.cluster);
    if (fn && (fn.spec as ServiceFunctionSpec).type !== "discovery") return instanceKey(node.id);
    return SERVICES_KEY;
  }

  /** Identity at stream open: a node naming a ServiceFunction must agree with its type. */
  admit(node: Node): Admission {
    const fn = this.state.get("ServiceFunction", node.cluster);
    if (!fn) return { ok: true }; // a service reader (proxyless client)
    const claimed = node.metadata.type;
    const type = (fn.spec as ServiceFunctionSpec).type;
    if (claimed !== undefined && claimed !== type) {
      return {
        ok: false,
        reason: `node ${node.id} says type ${String(claimed)}, but ServiceFunction ${node.cluster} has type ${type}`,
      };
    }
    return { ok: true };
  }

  /** Consumes the store until it closes or `close()` is called. */
  async run(): Promise<void> {
    this.#watch = this.#options.store.watch({ initial: true });
    for await (const change of this.#watch) {
      this.state.apply(change);
      this.schedule();
    }
  }

  close(): void {
    this.#watch?.close();
  }

  /** Coalesces everything that happens in one turn of the event loop into one compile. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.compile();
      } catch (err) {
        this.#options.logger.error({ err }, "compile failed");
      }
    });
  }

  compile(): void {
    const { cache, instances } = this.#options;
    const upserts: Resource[] = [];
    const removals: { typeUrl: string; name: string }[] = [];
    const seen = new Set<string>();
    for (const service of this.state.list("Service")) {
      const name = service.metadata.name;
      seen.add(name);
      const endpoints = serviceEndpoints(service, this.state, instances);
      const fingerprint = JSON.stringify(endpoints);
      if (this.#services.get(name)?.fingerprint === fingerprint) continue;
      const resources = serviceResources(name, endpoints);
      this.#services.set(name, { fingerprint, resources });
      upserts.push(...resources);
    }
    for (const [name, compiled] of this.#services) {
      if (seen.has(name)) continue;
      for (const r of compiled.resources) removals.push({ typeUrl: r.typeUrl, name: r.name });
      this.#services.delete(name);
    }
    if (upserts.length > 0 || removals.length > 0 || !cache.snapshot(SERVICES_KEY)) {
      this.#servicesSnapshot = this.#servicesSnapshot.update(upserts, removals);
      cache.setSnapshot(SERVICES_KEY, this.#servicesSnapshot);
    }
    // Function instances: their hops' listeners and clusters are compiled by the data-path
    // compiler; until then each connected instance gets an (empty) snapshot of its own.
    for (const instance of instances.list()) {
      const key = instanceKey(instance.id);
      if (this.#instanceKeys.has(key)) continue;
      this.#instanceKeys.add(key);
      if (!cache.snapshot(key)) cache.setSnapshot(key, Snapshot.empty());
    }
  }
}

export function instanceKey(id: string): string {
  return `instance/${id}`;
}
