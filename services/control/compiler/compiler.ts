// Turns the stored model (and the registered function instances) into xDS snapshots.
// Services go to one shared snapshot, read by proxyless gRPC clients and discovery instances;
// each function instance has a snapshot of its own (its hops' listeners and clusters).
import type { Logger } from "pino";
import {
  type ConnectRoute,
  type Node,
  type Resource,
  Snapshot,
  type SnapshotCache,
  VersionedResource,
} from "../../../xds/index.js";
import type { ServiceChainSpec, ServiceFunctionSpec } from "../model/index.js";
import type { FunctionInstance, InstanceRegistry } from "../registry/instances.js";
import type { Change, Store, Watch } from "../store/store.js";
import {
  type ChainProblem,
  type ChainStage,
  chainResources,
  resolveChain,
  type TunnelExit,
} from "./chain-resources.js";
import { ModelState } from "./model-state.js";
import { compileServicePolicy } from "./policy.js";
import type { ServiceEndpoint } from "./service-endpoints.js";
import { backendEndpoints, type EndpointRegistryView, serviceEndpoints } from "./service-endpoints.js";
import { serviceResources } from "./service-resources.js";
import {
  DEFAULT_TRUST_DOMAIN,
  instanceSecrets,
  tunnelListenerName,
  tunnelTerminatorListener,
} from "./vpn-resources.js";

/** How long registry changes gather before a compile. */
const REGISTRY_BATCH_MS = 5;

/** Snapshot key of everything a service reader may see. */
export const SERVICES_KEY = "services";

export type Admission = { ok: true } | { ok: false; reason: string };

/** The service registry as the compiler sees it: endpoints and health in, compiled endpoints out. */
export interface CompilerRegistry extends EndpointRegistryView {
  /** After a compile, the services whose endpoints changed (undefined: the Service is gone). */
  compiled(changes: ReadonlyMap<string, readonly ServiceEndpoint[] | undefined>): void;
}

export interface CompilerOptions {
  store: Store;
  cache: SnapshotCache;
  instances: InstanceRegistry;
  logger: Logger;
  /** Self-registered endpoints and active-check health, added to the Services' own. */
  registry?: EndpointRegistryView;
  /** Called after every compile (status follows what was compiled). */
  onCompiled?: () => void;
  /** The mesh CA's certificates for instances (SDS); without it no instance gets secrets. */
  certificates?: CompilerCertificates;
}

/** What the compiler needs of the mesh CA: the trust domain, its root, each instance's current certificate. */
export interface CompilerCertificates {
  readonly trustDomain: string;
  readonly rootPem: string;
  /** Issued for the current renewal window, or undefined while issuing. */
  get(instanceId: string): { certPem: string } | undefined;
  /** The instances that may hold certificates (issuing is asynchronous; it schedules a compile when done). */
  sync(instances: readonly FunctionInstance[]): void;
}

/** A resource an instance must hold, at the version the compiler made. */
export interface ExpectedResource {
  typeUrl: string;
  name: string;
  version: string;
}

/** What one chain compiled to, for its status: where it runs and what each instance must ACK. */
export interface ChainProgress {
  name: string;
  port: number;
  /** Why it cannot run as specified (a missing reference, a port conflict), when it cannot. */
  problem?: ChainProblem;
  stages: ChainStage[];
  /** Per instance id, the chain's resources it must hold. */
  expected: ReadonlyMap<string, readonly ExpectedResource[]>;
  /** The instances of the first stage, with their addresses: the chain's ingress. */
  ingress: { id: string; address: string }[];
}

type CompiledChain =
  | {
      ok: true;
      port: number;
      stages: ChainStage[];
      problems: ChainProblem[];
      byInstance: Map<string, VersionedResource[]>;
      ingress: { id: string; address: string }[];
      tunnels: (Omit<TunnelExit, "resources"> & { resources: VersionedResource[] })[];
    }
  | ({ ok: false; port: number } & ChainProblem);

export class Compiler {
  readonly state = new ModelState();
  readonly #options: CompilerOptions;
  /** Per service: the endpoints it was last compiled from, and the resources that gave. */
  readonly #services = new Map<string, { fingerprint: string; resources: Resource[] }>();
  #servicesSnapshot = Snapshot.empty();
  /** Per chain: the inputs it was last compiled from, and what that gave. */
  readonly #chains = new Map<string, { fingerprint: string; compiled: CompiledChain }>();
  /** Per connected instance: the (type, name, version) list of its last snapshot. */
  readonly #instanceFingerprints = new Map<string, string>();
  #progress: ChainProgress[] = [];
  #scheduled = false;
  #registry: CompilerRegistry | undefined;
  #certificates: CompilerCertificates | undefined;
  /** Tunnel listeners and secrets, merged or looked up per compile, encoded only when they change. */
  readonly #memo = new ResourceMemo();
  /** Services the next compile recomputes: "all" after any change that is not a registry one. */
  #dirty: Set<string> | "all" = "all";
  #watch: Watch<Change> | undefined;

  constructor(options: CompilerOptions) {
    this.#options = options;
    this.#certificates = options.certificates;
  }

  /** The mesh CA's certificates, when the server has a CA (instances of type vpn get SDS secrets). */
  attachCertificates(certificates: CompilerCertificates): void {
    this.#certificates = certificates;
    this.#chains.clear(); // compiled with the default trust domain
    this.schedule();
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
      // Nothing compiled reads status: a status write (one follows every apply) needs no pass.
      if (change.type !== "status") this.schedule();
    }
  }

  close(): void {
    this.#watch?.close();
  }

  /** Adds self-registered endpoints and active-check health to every Service's endpoints. */
  attachRegistry(registry: CompilerRegistry): void {
    this.#registry = registry;
    this.schedule();
  }

  /** Coalesces everything that happens in one turn of the event loop into one compile. */
  schedule(): void {
    this.#dirty = "all";
    this.#kick();
  }

  /**
   * Only these services' endpoints changed (a registration came or went, a health verdict): the next
   * compile recomputes just them, so registry churn does not cost a pass over every Service.
   */
  scheduleServices(names: Iterable<string>): void {
    if (this.#dirty !== "all") for (const name of names) this.#dirty.add(name);
    // A few ms gather the registrations of many requests into one compile (and one snapshot copy);
    // the push that follows is debounced far longer anyway.
    this.#kick(REGISTRY_BATCH_MS);
  }

  #kick(delayMs = 0): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      try {
        this.compile();
      } catch (err) {
        this.#options.logger.error({ err }, "compile failed");
      }
    };
    if (delayMs > 0) setTimeout(run, delayMs);
    else setImmediate(run);
  }

  compile(): void {
    const { cache, instances } = this.#options;
    const upserts: Resource[] = [];
    const removals: { typeUrl: string; name: string }[] = [];
    const seen = new Set<string>();
    const changed = new Map<string, readonly ServiceEndpoint[] | undefined>();
    const registry = this.#registry ?? this.#options.registry;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    const services =
      dirty === "all"
        ? this.state.list("Service")
        : [...dirty].flatMap((name) => this.state.get("Service", name) ?? []);
    for (const service of services) {
      const name = service.metadata.name;
      seen.add(name);
      const endpoints = serviceEndpoints(service, this.state, instances, registry);
      const fingerprint = JSON.stringify(endpoints);
      if (this.#services.get(name)?.fingerprint === fingerprint) continue;
      const previous = this.#services.get(name)?.resources;
      const resources = serviceResources(name, endpoints, previous);
      this.#services.set(name, { fingerprint, resources });
      // Reused resources are in the snapshot already.
      for (let i = 0; i < resources.length; i++)
        if (resources[i] !== previous?.[i]) upserts.push(resources[i] as Resource);
      changed.set(name, endpoints);
    }
    for (const [name, compiled] of this.#services) {
      if (seen.has(name) || (dirty !== "all" && (!dirty.has(name) || this.state.get("Service", name))))
        continue;
      for (const r of compiled.resources) removals.push({ typeUrl: r.typeUrl, name: r.name });
      this.#services.delete(name);
      changed.set(name, undefined);
    }
    if (upserts.length > 0 || removals.length > 0 || !cache.snapshot(SERVICES_KEY)) {
      this.#servicesSnapshot = this.#servicesSnapshot.update(upserts, removals);
      cache.setSnapshot(SERVICES_KEY, this.#servicesSnapshot);
    }
    if (changed.size > 0) this.#registry?.compiled(changed);
    this.#compileDataPath();
    this.#options.onCompiled?.();
  }

  /** Each chain's compiled state, as of the last compile, ordered by name. */
  chains(): readonly ChainProgress[] {
    return this.#progress;
  }

  /** Whether the instance reads a snapshot of its own (it runs hops), rather than the services'. */
  #runsHops(instance: FunctionInstance): boolean {
    const fn = this.state.get("ServiceFunction", instance.function);
    return fn !== undefined && (fn.spec as ServiceFunctionSpec).type !== "discovery";
  }

  /** Chains → per-instance snapshots; an instance whose resources did not change is not republished. */
  #compileDataPath(): void {
    const { cache, instances } = this.#options;
    const get = this.state.get.bind(this.state);
    const chains = [...this.state.list("ServiceChain")].sort((a, b) =>
      a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
    );
    const live = new Set<string>();
    for (const chain of chains) {
      const name = chain.metadata.name;
      live.add(name);
      const port = (chain.spec as ServiceChainSpec).ingress.port;
      const resolved = resolveChain(
        chain,
        get,
        (service) => backendEndpoints(service, this.state, this.#registry ?? this.#options.registry),
        (fn) => instances.list(fn),
        (service, port, destinations) => compileServicePolicy(service, port, destinations, this.state),
      );
      const fingerprint = JSON.stringify(resolved);
      if (this.#chains.get(name)?.fingerprint === fingerprint) continue;
      let compiled: CompiledChain;
      if (!resolved.ok) {
        compiled = { ok: false, port, reason: resolved.reason, message: resolved.message };
      } else {
        const trustDomain = this.#certificates?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
        const out = chainResources({ ...resolved.input, trustDomain });
        const byInstance = new Map<string, VersionedResource[]>();
        // Versioned once here, so every snapshot that carries a resource reuses its hash.
        for (const [id, list] of out.byInstance)
          byInstance.set(
            id,
            list.map((r) => new VersionedResource(r)),
          );
        const first = out.stages[0];
        const ingress = (resolved.input.instances[first?.function ?? ""] ?? []).filter((i) =>
          first?.instances.includes(i.id),
        );
        const tunnels = out.tunnels.map((t) => ({
          ...t,
          resources: t.resources.map((r) => new VersionedResource(r)),
        }));
        compiled = {
          ok: true,
          port,
          stages: out.stages,
          problems: out.problems,
          byInstance,
          ingress,
          tunnels,
        };
      }
      this.#chains.set(name, { fingerprint, compiled });
    }
    for (const name of this.#chains.keys()) if (!live.has(name)) this.#chains.delete(name);

    // One instance binds a port once: across chains, the first by name keeps it.
    const perInstance = new Map<string, VersionedResource[]>();
    const ports = new Map<string, Map<number, string>>();
    const tunnels = new TunnelExits();
    const progress: ChainProgress[] = [];
    for (const chain of chains) {
      const name = chain.metadata.name;
      const entry = this.#chains.get(name);
      if (!entry) continue;
      const c = entry.compiled;
      if (!c.ok) {
        progress.push({
          name,
          port: c.port,
          problem: { reason: c.reason, message: c.message },
          stages: [],
          expected: new Map(),
          ingress: [],
        });
        continue;
      }
      const problems = [...c.problems];
      const expected = new Map<string, ExpectedResource[]>();
      for (const [id, list] of c.byInstance) {
        let taken = ports.get(id);
        if (!taken) {
          taken = new Map();
          ports.set(id, taken);
        }
        const holder = taken.get(c.port);
        if (holder !== undefined) {
          problems.push({
            reason: "PortConflict",
            message: `instance ${id} already listens on port ${c.port} for chain ${holder}`,
          });
          continue;
        }
        taken.set(c.port, name);
        const held = perInstance.get(id) ?? [];
        held.push(...list);
        perInstance.set(id, held);
        expected.set(
          id,
          list.map((r) => ({ typeUrl: r.typeUrl, name: r.name, version: r.version })),
        );
      }
      for (const tunnel of c.tunnels) {
        const holder = tunnels.add(name, tunnel, expected);
        if (holder) {
          problems.push({
            reason: "AuthorityConflict",
            message: `chain ${holder} already tunnels authority ${tunnel.route.domains[0]} to ${tunnel.peer} on port ${tunnel.port}`,
          });
          continue;
        }
        for (const inst of tunnel.instances) {
          const held = perInstance.get(inst.id) ?? [];
          held.push(...tunnel.resources);
          perInstance.set(inst.id, held);
        }
      }
      const problem = problems[0];
      progress.push({
        name,
        port: c.port,
        ...(problem
          ? {
              problem:
                problems.length > 1
                  ? { ...problem, message: `${problem.message} (and ${problems.length - 1} more)` }
                  : problem,
            }
          : {}),
        stages: c.stages,
        expected,
        ingress: c.ingress.filter((i) => expected.has(i.id)),
      });
    }
    this.#progress = progress;
    const certificates = this.#certificates;
    const trustDomain = certificates?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const memo = this.#memo;
    for (const [id, listener] of tunnels.listeners(trustDomain, memo)) {
      const held = perInstance.get(id) ?? [];
      held.push(listener);
      perInstance.set(id, held);
    }
    if (certificates) {
      const vpns = instances.list().filter((i) => i.type === "vpn");
      certificates.sync(vpns);
      for (const inst of vpns) {
        const cert = certificates.get(inst.id);
        if (!cert) continue;
        const held = perInstance.get(inst.id) ?? [];
        const input = {
          trustDomain,
          fn: inst.function,
          instance: inst.id,
          certificatePem: cert.certPem,
          rootPem: certificates.rootPem,
        };
        held.push(...memo.get(`secrets ${inst.id}`, JSON.stringify(input), () => instanceSecrets(input)));
        perInstance.set(inst.id, held);
      }
    }
    memo.sweep();

    const connected = new Set<string>();
    for (const instance of instances.list()) {
      if (!this.#runsHops(instance)) continue;
      connected.add(instance.id);
      const list = perInstance.get(instance.id) ?? [];
      const fingerprint = list.map((r) => `${r.typeUrl} ${r.name} ${r.version}`).join("\n");
      const key = instanceKey(instance.id);
      if (this.#instanceFingerprints.get(instance.id) === fingerprint && cache.latestSnapshot(key)) continue;
      this.#instanceFingerprints.set(instance.id, fingerprint);
      cache.setSnapshot(key, Snapshot.from(list));
    }
    for (const id of [...this.#instanceFingerprints.keys()]) {
      if (connected.has(id)) continue;
      this.#instanceFingerprints.delete(id);
      cache.deleteSnapshot(instanceKey(id));
    }
  }
}

export function instanceKey(id: string): string {
  return `instance/${id}`;
}

/**
 * The tunnel exits of all chains, merged per peer instance and port into one terminating
 * listener; an authority goes to the first chain (by name) that claims it on a peer and port.
 */
class TunnelExits {
  readonly #authorities = new Map<string, string>();
  readonly #byInstance = new Map<
    string,
    Map<
      number,
      {
        instance: { id: string; address: string };
        fn: string;
        routes: ConnectRoute[];
        from: Set<string>;
        expected: Map<string, ExpectedResource[]>[];
      }
    >
  >();

  /** Adds a chain's exit; returns the chain already holding its authority, if any. */
  add(
    chain: string,
    tunnel: Omit<TunnelExit, "resources"> & { resources: VersionedResource[] },
    expected: Map<string, ExpectedResource[]>,
  ): string | undefined {
    const key = `${tunnel.peer} ${tunnel.port} ${tunnel.route.domains[0]}`;
    const holder = this.#authorities.get(key);
    if (holder !== undefined && holder !== chain) return holder;
    this.#authorities.set(key, chain);
    for (const inst of tunnel.instances) {
      let ports = this.#byInstance.get(inst.id);
      if (!ports) {
        ports = new Map();
        this.#byInstance.set(inst.id, ports);
      }
      let exit = ports.get(tunnel.port);
      if (!exit) {
        exit = { instance: inst, fn: tunnel.peer, routes: [], from: new Set(), expected: [] };
        ports.set(tunnel.port, exit);
      }
      exit.routes.push(tunnel.route);
      exit.from.add(tunnel.from);
      exit.expected.push(expected);
      const list = expected.get(inst.id) ?? [];
      list.push(...tunnel.resources.map((r) => ({ typeUrl: r.typeUrl, name: r.name, version: r.version })));
      expected.set(inst.id, list);
    }
    return undefined;
  }

  /** Each peer instance's terminating listeners; each chain using one expects it too. */
  *listeners(trustDomain: string, memo: ResourceMemo): Generator<[string, VersionedResource]> {
    for (const [id, ports] of this.#byInstance) {
      for (const [port, exit] of ports) {
        const input = {
          trustDomain,
          fn: exit.fn,
          instance: exit.instance,
          port,
          routes: exit.routes,
          from: [...exit.from].sort(),
        };
        const [listener] = memo.get(`listener ${id} ${port}`, JSON.stringify(input), () => [
          tunnelTerminatorListener(input),
        ]);
        if (!listener) continue;
        for (const expected of exit.expected) {
          const list = expected.get(id) ?? [];
          list.push({ typeUrl: listener.typeUrl, name: tunnelListenerName(port), version: listener.version });
          expected.set(id, list);
        }
        yield [id, listener];
      }
    }
  }
}

/**
 * Resources the compiler assembles on every pass from inputs that rarely change: encoded and hashed
 * again only when their inputs did (a compile follows every registry batch).
 */
class ResourceMemo {
  readonly #last = new Map<string, { inputs: string; resources: VersionedResource[] }>();
  readonly #used = new Set<string>();

  get(slot: string, inputs: string, build: () => Resource[]): VersionedResource[] {
    this.#used.add(slot);
    const last = this.#last.get(slot);
    if (last?.inputs === inputs) return last.resources;
    const resources = build().map((r) => new VersionedResource(r));
    this.#last.set(slot, { inputs, resources });
    return resources;
  }

  /** Forgets the slots this pass did not ask for. */
  sweep(): void {
    for (const slot of this.#last.keys()) if (!this.#used.has(slot)) this.#last.delete(slot);
    this.#used.clear();
  }
}
