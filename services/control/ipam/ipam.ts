// The IPAM service: one NetworkAllocator per Network (rebuilt when its CIDR or exclusions change),
// owner-keyed and idempotent, with events for every address allocated or released. Owners name what
// holds an address: `workload/<name>` for a Workload's membership, `cni/<container id>/<ifname>`
// for an attachment made through the CNI plugin.
import type { Logger } from "pino";
import { CatenaError, ErrorCode } from "../errors.js";
import type { EventSink } from "../events/types.js";
import type { NetworkSpec } from "../model/schemas.js";
import type { StoreReader } from "../store/store.js";
import { type AllocateRequest, type Lease, type LeaseValue, NetworkAllocator } from "./allocator.js";
import type { LeaseStore } from "./lease-store.js";

export interface IpamOptions {
  store: StoreReader;
  leases: LeaseStore<LeaseValue>;
  events: EventSink;
  logger: Logger;
}

/** What a caller gets back: the address with what it needs to configure an interface. */
export interface AddressAssignment {
  network: string;
  address: string;
  prefixLength: number;
  cidr: string;
  gateway: string;
  owner: string;
  workload?: string;
  node?: string;
  /** False when the owner held it already. */
  created: boolean;
}

export interface NetworkUsage {
  network: string;
  cidr: string;
  gateway: string;
  /** Addresses that may be handed out (network, gateway, broadcast and exclusions left out). */
  size: string;
  allocated: number;
  free: string;
}

export function workloadOwner(name: string): string {
  return `workload/${name}`;
}

export function cniOwner(containerId: string, ifname: string): string {
  return `cni/${containerId}/${ifname}`;
}

export class Ipam {
  readonly #options: IpamOptions;
  readonly #allocators = new Map<string, { fingerprint: string; allocator: NetworkAllocator }>();

  constructor(options: IpamOptions) {
    this.#options = options;
  }

  /** The Network's allocator, from its stored spec; NotFound when there is no such Network. */
  async allocator(network: string): Promise<NetworkAllocator> {
    const object = await this.#options.store.get("Network", network);
    if (!object) {
      const message = `Network "${network}" not found`;
      throw new CatenaError(ErrorCode.NotFound, message, [{ path: "network", message }]);
    }
    const spec = object.spec as NetworkSpec;
    const fingerprint = JSON.stringify([spec.cidr, spec.exclude ?? []]);
    const known = this.#allocators.get(network);
    if (known?.fingerprint === fingerprint) return known.allocator;
    const allocator = new NetworkAllocator(network, spec, this.#options.leases);
    this.#allocators.set(network, { fingerprint, allocator });
    return allocator;
  }

  async allocate(network: string, request: AllocateRequest): Promise<AddressAssignment> {
    const allocator = await this.allocator(network);
    const { lease, created } = await allocator.allocate(request);
    if (created) this.#emit("allocated", lease);
    return this.#assignment(allocator, lease, created);
  }

  async release(network: string, owner: string): Promise<Lease | undefined> {
    const allocator = await this.allocator(network);
    const lease = await allocator.release(owner);
    if (lease) this.#emit("released", lease);
    return lease;
  }

  async lookup(network: string, owner: string): Promise<AddressAssignment | undefined> {
    const allocator = await this.allocator(network);
    const lease = await allocator.lookup(owner);
    return lease && this.#assignment(allocator, lease, false);
  }

  async leases(network: string): Promise<Lease[]> {
    return (await this.allocator(network)).leases();
  }

  async usage(network: string): Promise<NetworkUsage> {
    const allocator = await this.allocator(network);
    const allocated = (await allocator.leases()).length;
    const { pool } = allocator;
    const free = pool.size - BigInt(allocated);
    return {
      network,
      cidr: pool.cidrText,
      gateway: pool.gateway,
      size: pool.size.toString(),
      allocated,
      free: (free < 0n ? 0n : free).toString(),
    };
  }

  /**
   * Releases the leases `select` picks (GC of CNI attachments the runtime no longer knows, leases of
   * deleted Workloads); returns what was released.
   */
  async releaseWhere(network: string, select: (lease: Lease) => boolean): Promise<Lease[]> {
    const allocator = await this.allocator(network);
    const released: Lease[] = [];
    for (const lease of await allocator.leases()) {
      if (!select(lease)) continue;
      const gone = await allocator.release(lease.owner);
      if (gone) {
        this.#emit("released", gone);
        released.push(gone);
      }
    }
    return released;
  }

  /** A deleted Network: releases every lease it had (its last spec still knows their keys). */
  async purge(network: string, spec: NetworkSpec): Promise<Lease[]> {
    this.#allocators.delete(network);
    const allocator = new NetworkAllocator(network, spec, this.#options.leases);
    const released: Lease[] = [];
    for (const lease of await allocator.leases()) {
      const gone = await allocator.release(lease.owner);
      if (gone) {
        this.#emit("released", gone);
        released.push(gone);
      }
    }
    return released;
  }

  #assignment(allocator: NetworkAllocator, lease: Lease, created: boolean): AddressAssignment {
    return {
      network: allocator.network,
      address: lease.address,
      prefixLength: allocator.pool.prefixLength,
      cidr: allocator.pool.cidrText,
      gateway: allocator.pool.gateway,
      owner: lease.owner,
      ...(lease.workload !== undefined && { workload: lease.workload }),
      ...(lease.node !== undefined && { node: lease.node }),
      created,
    };
  }

  #emit(verb: "allocated" | "released", lease: Lease): void {
    this.#options.events.emit({
      kind: "ipam",
      name: lease.network,
      verb,
      data: {
        network: lease.network,
        address: lease.address,
        owner: lease.owner,
        ...(lease.workload !== undefined && { workload: lease.workload }),
        ...(lease.node !== undefined && { node: lease.node }),
      },
    });
  }
}
