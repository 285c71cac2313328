// Where a function instance's own address comes from. The runtime needs one thing of IPAM: a stable
// address per instance id. Two implementations: IpamAddressPool (ipam-address-pool.ts) asks the
// control server's IPAM for an address in the Network of the chain the function serves; this one is
// the runtime's own loopback allocator, for instances no Network claims (and runtimes without IPAM):
// all of 127.0.0.0/8 is local on Linux, so each instance binds its own IP without root and
// source-address policies are real.
import { readFile, rename, writeFile } from "node:fs/promises";
import { type Cidr, cidrContains, formatCidr, formatIp, parseCidr, parseIp } from "../control/model/ip.js";
import { Mutex } from "../control/mutex.js";
import { RUNTIME_ERROR, RuntimeError } from "./errors.js";

export interface AddressPool {
  /**
   * The address of `owner` (an instance id) running ServiceFunction `fn`: the same one on every call
   * until released.
   */
  acquire(owner: string, fn: string): Promise<string>;
  /** Gives the address back; releasing an owner without one is fine (safe to run twice). */
  release(owner: string): Promise<void>;
}

export interface LoopbackAddressPoolOptions {
  /** The range handed out, `127.64.0.0/16`. */
  cidr: string;
  /** JSON file that keeps owner → address across restarts; none: in memory only. */
  file?: string;
  /** Addresses something else already uses (Workloads, static endpoints): never handed out. */
  reserved?: () => Promise<Iterable<string>>;
  /**
   * Hand out the highest free address first: beside an allocator that starts from the bottom of an
   * overlapping range (a Network's IPAM), the two meet only when the range is nearly full.
   */
  fromTop?: boolean;
}

/**
 * Hands out the lowest free address of a CIDR, skipping the network address, the first usable
 * address (a Network's gateway, as Catena's IPAM keeps it) and the IPv4 broadcast address.
 */
export class LoopbackAddressPool implements AddressPool {
  readonly cidr: Cidr;
  readonly #file: string | undefined;
  readonly #reserved: () => Promise<Iterable<string>>;
  readonly #fromTop: boolean;
  readonly #mutex = new Mutex();
  #leases: Map<string, string> | undefined;

  constructor(options: LoopbackAddressPoolOptions) {
    const parsed = parseCidr(options.cidr);
    if (!parsed.ok) throw new RuntimeError(RUNTIME_ERROR.invalidArgument, `instance CIDR: ${parsed.message}`);
    const hostBits = (parsed.value.family === 4 ? 32 : 128) - parsed.value.prefix;
    if (hostBits < 2)
      throw new RuntimeError(RUNTIME_ERROR.invalidArgument, `instance CIDR ${options.cidr} is too small`);
    this.cidr = parsed.value;
    this.#file = options.file;
    this.#reserved = options.reserved ?? (async () => []);
    this.#fromTop = options.fromTop ?? false;
  }

  acquire(owner: string, _fn?: string): Promise<string> {
    return this.#mutex.run(async () => {
      const leases = await this.#load();
      const held = leases.get(owner);
      if (held !== undefined) return held;
      const taken = new Set<bigint>();
      for (const a of leases.values()) taken.add((parseIp(a) ?? { value: -1n }).value);
      for (const a of await this.#reserved()) {
        const ip = parseIp(a);
        if (ip && cidrContains(this.cidr, ip)) taken.add(ip.value);
      }
      const first = this.cidr.first + 2n;
      const last = this.cidr.family === 4 ? this.cidr.last - 1n : this.cidr.last;
      const step = this.#fromTop ? -1n : 1n;
      for (let v = this.#fromTop ? last : first; v >= first && v <= last; v += step) {
        if (taken.has(v)) continue;
        const address = formatIp({ family: this.cidr.family, value: v });
        leases.set(owner, address);
        await this.#save(leases);
        return address;
      }
      throw new RuntimeError(
        RUNTIME_ERROR.addressesExhausted,
        `no free address left in ${formatCidr(this.cidr)} for ${owner}`,
      );
    });
  }

  release(owner: string): Promise<void> {
    return this.#mutex.run(async () => {
      const leases = await this.#load();
      if (leases.delete(owner)) await this.#save(leases);
    });
  }

  async #load(): Promise<Map<string, string>> {
    if (this.#leases) return this.#leases;
    const leases = new Map<string, string>();
    if (this.#file) {
      const text = await readFile(this.#file, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      });
      const saved: unknown = text === undefined ? {} : JSON.parse(text);
      const entries = (saved as { leases?: Record<string, unknown> }).leases ?? {};
      for (const [owner, address] of Object.entries(entries)) {
        const ip = typeof address === "string" ? parseIp(address) : undefined;
        // Leases from another CIDR (the flag changed) are forgotten rather than handed out.
        if (ip && cidrContains(this.cidr, ip)) leases.set(owner, address as string);
      }
    }
    this.#leases = leases;
    return leases;
  }

  async #save(leases: Map<string, string>): Promise<void> {
    if (!this.#file) return;
    const body = `${JSON.stringify({ cidr: formatCidr(this.cidr), leases: Object.fromEntries(leases) }, null, 2)}\n`;
    const tmp = `${this.#file}.tmp`;
    await writeFile(tmp, body, { mode: 0o600 });
    await rename(tmp, this.#file);
  }
}
