// Address allocation in one Network over any LeaseStore (lease-store.ts), so the same code is right
// on one control server (file store) and on several sharing a KV bucket. Two keys per lease:
//   ipam.<network>.addr.<address>  {owner, workload?, node?, at}   who holds an address
//   ipam.<network>.owner.<owner>   {address, at}                   what an owner holds
// Both are taken with create-if-absent, so no address goes to two owners and no owner gets two
// addresses, whatever runs concurrently. The address key is taken first: a crash between the two
// leaves an address key without its owner key, which the owner adopts on its next request.
import { CatenaError, ErrorCode } from "../errors.js";
import { parseIp } from "../model/ip.js";
import type { NetworkSpec } from "../model/schemas.js";
import { AddressPool } from "./address-pool.js";
import type { LeaseStore } from "./lease-store.js";

export interface AddressRecord {
  owner: string;
  /** The Workload the address is for, when known (a CNI lease names the Workload it will register). */
  workload?: string;
  /** The node that asked (CNI leases): GC releases only its own node's leases. */
  node?: string;
  at: string;
}

export interface OwnerRecord {
  address: string;
  at: string;
}

export type LeaseValue = AddressRecord | OwnerRecord;

export interface Lease extends AddressRecord {
  network: string;
  address: string;
}

export interface AllocateRequest {
  owner: string;
  /** A fixed address to claim; else the pool picks. */
  address?: string;
  workload?: string;
  node?: string;
}

export interface Allocation {
  lease: Lease;
  /** False when the owner held it already (a retried request). */
  created: boolean;
}

/** Key tokens: letters, digits, `-`, `_`, `=` (NATS KV key rules), so owners go as base64url. */
export function ownerToken(owner: string): string {
  return Buffer.from(owner, "utf8").toString("base64url");
}

function addressToken(address: string): string {
  return address.replaceAll(":", "-");
}

function isAddressRecord(v: LeaseValue): v is AddressRecord {
  return "owner" in v;
}

export class NetworkAllocator {
  readonly network: string;
  readonly pool: AddressPool;
  readonly #store: LeaseStore<LeaseValue>;
  readonly #prefix: string;
  /** Addresses known taken (stale when another replica released one: allocate looks again). */
  #taken = new Set<bigint>();
  /** Candidates being created right now by this process. */
  readonly #trying = new Set<bigint>();
  /** Address keys found without their owner key (a crash between the two creates). */
  #orphans = new Map<string, string>();
  #cursor: bigint;
  #loaded: Promise<void> | undefined;
  /** Per owner, the tail of its operations: one owner's requests run one at a time. */
  readonly #owners = new Map<string, Promise<unknown>>();

  constructor(network: string, spec: Pick<NetworkSpec, "cidr" | "exclude">, store: LeaseStore<LeaseValue>) {
    this.network = network;
    this.pool = new AddressPool(network, spec);
    this.#store = store;
    this.#prefix = `ipam.${network}.`;
    this.#cursor = this.pool.low;
  }

  /** The owner's address: the one it holds, else a new one. Idempotent per owner. */
  allocate(request: AllocateRequest): Promise<Allocation> {
    return this.#serial(request.owner, () => this.#allocate(request));
  }

  /** Frees the owner's address; undefined when it held none. */
  release(owner: string): Promise<Lease | undefined> {
    return this.#serial(owner, () => this.#release(owner));
  }

  async lookup(owner: string): Promise<Lease | undefined> {
    const held = await this.#store.read(this.#ownerKey(owner));
    if (!held || isAddressRecord(held.value)) return undefined;
    const record = await this.holder(held.value.address);
    return record?.owner === owner ? record : undefined;
  }

  /** Who holds an address, if anyone. */
  async holder(address: string): Promise<Lease | undefined> {
    const entry = await this.#store.read(this.#addressKey(address));
    if (!entry || !isAddressRecord(entry.value)) return undefined;
    return { network: this.network, address, ...entry.value };
  }

  /** Every lease, in address order. */
  async leases(): Promise<Lease[]> {
    const addrPrefix = `${this.#prefix}addr.`;
    const out: { value: bigint; lease: Lease }[] = [];
    for (const { key, entry } of await this.#store.list(addrPrefix)) {
      if (!isAddressRecord(entry.value)) continue;
      const address = key.slice(addrPrefix.length).replaceAll("-", ":");
      const parsed = this.#parse(address);
      if (parsed !== undefined)
        out.push({ value: parsed, lease: { network: this.network, address, ...entry.value } });
    }
    return out.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)).map((x) => x.lease);
  }

  async #allocate(request: AllocateRequest): Promise<Allocation> {
    const { owner } = request;
    for (let attempt = 0; attempt < 10; attempt++) {
      const held = await this.#held(owner);
      if (held) {
        if (request.address !== undefined && held.address !== request.address) {
          const message = `${owner} already holds ${held.address} in network ${this.network}; release it first`;
          throw new CatenaError(ErrorCode.Conflict, message, [{ path: "address", message }]);
        }
        return { lease: held, created: false };
      }
      const record: AddressRecord = {
        owner,
        ...(request.workload !== undefined && { workload: request.workload }),
        ...(request.node !== undefined && { node: request.node }),
        at: new Date().toISOString(),
      };
      const address =
        request.address !== undefined ? await this.#claim(request.address, record) : await this.#pick(record);
      if (await this.#store.create(this.#ownerKey(owner), { address, at: record.at })) {
        return { lease: { network: this.network, address, ...record }, created: true };
      }
      // Another replica allocated for this owner at the same time: keep theirs, give ours back.
      await this.#dropAddress(address, owner);
    }
    throw new CatenaError(ErrorCode.Conflict, `${owner}: allocation kept racing; try again`);
  }

  /** What the owner holds now, repairing a half-made lease on the way. */
  async #held(owner: string): Promise<Lease | undefined> {
    const key = this.#ownerKey(owner);
    const entry = await this.#store.read(key);
    if (entry && !isAddressRecord(entry.value)) {
      const holder = await this.holder(entry.value.address);
      if (holder?.owner === owner) return holder;
      // The owner key points at an address it does not hold: drop it and start again.
      await this.#store.delete(key, entry.revision);
      return undefined;
    }
    await this.#load();
    const orphan = this.#orphans.get(owner);
    if (orphan === undefined) return undefined;
    this.#orphans.delete(owner);
    const holder = await this.holder(orphan);
    if (holder?.owner !== owner) return undefined;
    if (await this.#store.create(key, { address: orphan, at: holder.at })) return holder;
    return undefined;
  }

  async #claim(text: string, record: AddressRecord): Promise<string> {
    const address = this.pool.check(text);
    const formatted = this.pool.format(address.value);
    for (;;) {
      if (await this.#store.create(this.#addressKey(formatted), record)) {
        this.#taken.add(address.value);
        return formatted;
      }
      const holder = await this.holder(formatted);
      if (!holder) continue; // released in between
      if (holder.owner === record.owner) return formatted; // its own orphan
      const by = holder.workload ? `Workload ${holder.workload} (${holder.owner})` : holder.owner;
      const message = `${formatted} in network ${this.network} is held by ${by}`;
      throw new CatenaError(ErrorCode.Conflict, message, [{ path: "address", message }]);
    }
  }

  async #pick(record: AddressRecord): Promise<string> {
    await this.#load();
    for (let pass = 0; pass < 2; pass++) {
      for (const candidate of this.pool.candidates(this.#cursor)) {
        if (this.#taken.has(candidate) || this.#trying.has(candidate)) continue;
        // Marked before the await: concurrent allocations here never try the same address.
        this.#trying.add(candidate);
        let won: number | undefined;
        const address = this.pool.format(candidate);
        try {
          won = await this.#store.create(this.#addressKey(address), record);
        } finally {
          this.#trying.delete(candidate);
        }
        this.#taken.add(candidate);
        if (won !== undefined) {
          this.#cursor = candidate + 1n;
          return address;
        }
      }
      // Everything looked taken: others may have released since; look at the store once more.
      this.#loaded = undefined;
      await this.#load();
    }
    const used = this.#taken.size;
    const message = `network ${this.network} (${this.pool.cidrText}) is exhausted: all ${this.pool.size} allocatable addresses are in use (${used} leases)`;
    throw new CatenaError(ErrorCode.Unavailable, message, [
      { path: "network", message: `exhausted: ${message}` },
    ]);
  }

  async #release(owner: string): Promise<Lease | undefined> {
    const key = this.#ownerKey(owner);
    const entry = await this.#store.read(key);
    let lease: Lease | undefined;
    if (entry && !isAddressRecord(entry.value)) {
      lease = await this.holder(entry.value.address);
      if (lease?.owner === owner) await this.#dropAddress(lease.address, owner);
      else lease = undefined;
      await this.#store.delete(key, entry.revision);
    } else {
      await this.#load();
      const orphan = this.#orphans.get(owner);
      if (orphan !== undefined) {
        this.#orphans.delete(owner);
        lease = await this.holder(orphan);
        if (lease?.owner === owner) await this.#dropAddress(orphan, owner);
        else lease = undefined;
      }
    }
    return lease;
  }

  async #dropAddress(address: string, owner: string): Promise<void> {
    const key = this.#addressKey(address);
    for (;;) {
      const entry = await this.#store.read(key);
      if (!entry || !isAddressRecord(entry.value) || entry.value.owner !== owner) return;
      if (await this.#store.delete(key, entry.revision)) {
        const value = this.#parse(address);
        if (value !== undefined) this.#taken.delete(value);
        return;
      }
    }
  }

  #serial<T>(owner: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#owners.get(owner) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.#owners.set(owner, tail);
    void tail.then(() => {
      if (this.#owners.get(owner) === tail) this.#owners.delete(owner);
    });
    return run;
  }

  #parse(address: string): bigint | undefined {
    return parseIp(address)?.value;
  }

  #addressKey(address: string): string {
    return `${this.#prefix}addr.${addressToken(address)}`;
  }

  #ownerKey(owner: string): string {
    return `${this.#prefix}owner.${ownerToken(owner)}`;
  }

  /** What is taken, and which address keys lack their owner key; once, and again when full. */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      const taken = new Set<bigint>();
      const holders = new Map<string, string>();
      for (const lease of await this.leases()) {
        const value = this.#parse(lease.address);
        if (value !== undefined) taken.add(value);
        holders.set(lease.owner, lease.address);
      }
      const ownerPrefix = `${this.#prefix}owner.`;
      for (const { key, entry } of await this.#store.list(ownerPrefix)) {
        if (isAddressRecord(entry.value)) continue;
        const owner = Buffer.from(key.slice(ownerPrefix.length), "base64url").toString("utf8");
        if (holders.get(owner) === entry.value.address) holders.delete(owner);
      }
      this.#taken = taken;
      this.#orphans = holders;
    })();
    return this.#loaded;
  }
}
