// Address allocation in one Network that stays correct with several control servers: one KV key per
// address (`ipam.<network>.<address>`), taken with a create that fails when the key exists, so two
// replicas can never hand out the same address; no lock, no hot key. A replica picks candidates
// from its own cursor and learns what others took from its failed creates.
//
// The rules of the design's "Contracts: CNI": the network address and (IPv4) the broadcast address
// are never handed out, and the first usable address is the gateway. Building block for issue 7's
// IPAM; owner-to-address idempotency (a retried CNI ADD) is the caller's to add on top.
import type { KV } from "@nats-io/kv";
import { CatenaError, ErrorCode } from "../errors.js";
import { type Cidr, cidrContains, formatIp, type IpAddress, parseCidr, parseIp } from "../model/ip.js";
import { KvCas } from "../store/kv-cas.js";

export interface KvAllocatorOptions {
  /** The bucket the replicas share (a `<ROOT>_IPAM` bucket keeps this traffic off the state's watch). */
  kv: KV;
  /** The Network's name: a KV key token. */
  network: string;
  /** The Network's CIDR, `127.64.0.0/16`. */
  cidr: string;
}

export interface Lease {
  address: string;
  owner: string;
  /** KV revision of the lease: pass it to `release` to release only this very lease. */
  revision: number;
}

interface LeaseValue {
  owner: string;
  at: string;
}

const TOKEN = /^[-_=A-Za-z0-9]+$/;

/** The address as KV key tokens: IPv4 dots stay separators, IPv6 colons become dashes. */
function addressToken(address: IpAddress): string {
  return formatIp(address).replaceAll(":", "-");
}

export class KvAllocator {
  readonly network: string;
  readonly cidr: Cidr;
  readonly gateway: string;
  readonly #cas: KvCas<LeaseValue>;
  readonly #prefix: string;
  /** First and last address handed out. */
  readonly #low: bigint;
  readonly #high: bigint;
  /** Addresses known taken, by anyone (stale when another replica released one: see allocate). */
  #taken = new Set<bigint>();
  /** Addresses this replica is trying to take right now. */
  readonly #trying = new Set<bigint>();
  #cursor: bigint;
  #loaded: Promise<void> | undefined;

  constructor(options: KvAllocatorOptions) {
    if (!TOKEN.test(options.network)) {
      throw new CatenaError(
        ErrorCode.Invalid,
        `network name ${JSON.stringify(options.network)} is not a KV key token`,
        [{ path: "network", message: "letters, digits, - _ =" }],
      );
    }
    const parsed = parseCidr(options.cidr);
    if (!parsed.ok)
      throw new CatenaError(ErrorCode.Invalid, parsed.message, [{ path: "cidr", message: parsed.message }]);
    const cidr = parsed.value;
    const hostBits = (cidr.family === 4 ? 32 : 128) - cidr.prefix;
    if (hostBits < 2) {
      const message = `${options.cidr} is too small: no address left besides network, gateway and broadcast`;
      throw new CatenaError(ErrorCode.Invalid, message, [{ path: "cidr", message }]);
    }
    this.network = options.network;
    this.cidr = cidr;
    this.#cas = new KvCas<LeaseValue>(options.kv);
    this.#prefix = `ipam.${options.network}.`;
    this.gateway = formatIp({ family: cidr.family, value: cidr.first + 1n });
    this.#low = cidr.first + 2n;
    this.#high = cidr.family === 4 ? cidr.last - 1n : cidr.last;
    this.#cursor = this.#low;
  }

  /** The lowest address this replica does not know to be taken; fails with Unavailable when full. */
  async allocate(owner: string): Promise<Lease> {
    await this.#load();
    const size = this.#high - this.#low + 1n;
    let refreshed = false;
    for (let tried = 0n; ; tried++) {
      if (tried >= size) {
        // Every address looked taken from here; others may have released some since: look again once.
        if (refreshed) {
          const message = `network ${this.network} (${this.#cidrText()}) has no free address`;
          throw new CatenaError(ErrorCode.Unavailable, message, [{ path: "", message }]);
        }
        refreshed = true;
        tried = 0n;
        this.#loaded = undefined;
        await this.#load();
      }
      const candidate = this.#nextCandidate();
      if (candidate === undefined) continue;
      // Marked before the await: concurrent allocations on this replica never try the same address.
      this.#trying.add(candidate);
      const address = { family: this.cidr.family, value: candidate };
      let revision: number | undefined;
      try {
        revision = await this.#cas.create(this.#key(address), { owner, at: new Date().toISOString() });
      } finally {
        this.#trying.delete(candidate);
      }
      // Taken either way: by us, or by whoever got there first.
      this.#taken.add(candidate);
      if (revision !== undefined) return { address: formatIp(address), owner, revision };
    }
  }

  /**
   * Takes a requested address. The same owner asking again gets its lease back; another owner's
   * address is Conflict; an address outside the allocatable range is Invalid.
   */
  async claim(addressText: string, owner: string): Promise<Lease> {
    const address = this.#checkAddress(addressText);
    const key = this.#key(address);
    for (;;) {
      const revision = await this.#cas.create(key, { owner, at: new Date().toISOString() });
      this.#taken.add(address.value);
      if (revision !== undefined) return { address: formatIp(address), owner, revision };
      const current = await this.#cas.read(key);
      if (current === undefined) continue; // released in between: try again
      if (current.value.owner === owner)
        return { address: formatIp(address), owner, revision: current.revision };
      const message = `${formatIp(address)} in network ${this.network} is taken by ${current.value.owner}`;
      throw new CatenaError(ErrorCode.Conflict, message, [{ path: "address", message }]);
    }
  }

  /** Frees an address; with `owner`, only when that owner holds it. False when it was not held so. */
  async release(addressText: string, owner?: string): Promise<boolean> {
    const address = this.#checkAddress(addressText);
    const key = this.#key(address);
    for (;;) {
      const current = await this.#cas.read(key);
      if (!current || (owner !== undefined && current.value.owner !== owner)) return false;
      if (await this.#cas.delete(key, current.revision)) {
        this.#taken.delete(address.value);
        return true;
      }
    }
  }

  /** Every lease in the network, by address order. */
  async leases(): Promise<Lease[]> {
    const out: Lease[] = [];
    for await (const key of await this.#cas.kv.keys(`${this.#prefix}>`)) {
      const entry = await this.#cas.read(key);
      if (entry)
        out.push({
          address: key.slice(this.#prefix.length).replaceAll("-", ":"),
          ...entry.value,
          revision: entry.revision,
        });
    }
    const value = (l: Lease) => (parseIp(l.address) as IpAddress).value;
    return out
      .sort((a, b) => (value(a) < value(b) ? -1 : value(a) > value(b) ? 1 : 0))
      .map(({ address, owner, revision }) => ({
        address,
        owner,
        revision,
      }));
  }

  #key(address: IpAddress): string {
    return `${this.#prefix}${addressToken(address)}`;
  }

  #cidrText(): string {
    return `${formatIp({ family: this.cidr.family, value: this.cidr.first })}/${this.cidr.prefix}`;
  }

  #checkAddress(text: string): IpAddress {
    const address = parseIp(text);
    if (
      !address ||
      !cidrContains(this.cidr, address) ||
      address.value < this.#low ||
      address.value > this.#high
    ) {
      const message = `${text} is not an allocatable address of network ${this.network} (${this.#cidrText()})`;
      throw new CatenaError(ErrorCode.Invalid, message, [{ path: "address", message }]);
    }
    return address;
  }

  #nextCandidate(): bigint | undefined {
    const candidate = this.#cursor;
    this.#cursor = candidate >= this.#high ? this.#low : candidate + 1n;
    return this.#taken.has(candidate) || this.#trying.has(candidate) ? undefined : candidate;
  }

  /** What is taken already, once (and again when the network looked full). */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      const taken = new Set<bigint>();
      for await (const key of await this.#cas.kv.keys(`${this.#prefix}>`)) {
        const address = parseIp(key.slice(this.#prefix.length).replaceAll("-", ":"));
        if (address) taken.add(address.value);
      }
      this.#taken = taken;
      this.#cursor = this.#low;
    })();
    return this.#loaded;
  }
}
