// Instance addresses from the control server's IPAM (`PUT /v1/ipam/networks/<network>/attachments/
// <instance>/lo`): an instance gets a unique address in the Network of the chain its function serves
// (docs/design.md "Addresses"), leased like any container's and released on scale-down. IPAM is
// idempotent per owner, so a restarted instance (or runtime) gets its address back. An instance no
// Network claims yet, or that IPAM cannot serve (the Network is full), gets one from the fallback pool.
import type { Logger } from "../../xds/logger.js";
import type { AddressPool } from "./address-pool.js";

export interface IpamAddressPoolOptions {
  /** The control server's URL. */
  server: string;
  /** The Network an instance of this function belongs in; undefined: use the fallback. */
  networkOf(fn: string): Promise<string | undefined>;
  fallback: AddressPool;
  /** This machine's name: IPAM's `node`, so its garbage collection can tell runtimes apart. */
  node: string;
  logger: Logger;
}

/** The interface name IPAM records: an instance's address is a loopback alias. */
const IFNAME = "lo";

export class IpamAddressPool implements AddressPool {
  readonly #o: IpamAddressPoolOptions;
  /** Which network each owner's address came from (the fallback when absent). */
  readonly #networks = new Map<string, string>();

  constructor(options: IpamAddressPoolOptions) {
    this.#o = options;
  }

  async acquire(owner: string, fn: string): Promise<string> {
    const network = this.#networks.get(owner) ?? (await this.#o.networkOf(fn));
    if (network) {
      try {
        const address = await this.#allocate(network, owner);
        this.#networks.set(owner, network);
        return address;
      } catch (err) {
        this.#o.logger.warn("IPAM gave no address; using the runtime's own range", {
          instance: owner,
          network,
          error: (err as Error).message,
        });
      }
    }
    return this.#o.fallback.acquire(owner, fn);
  }

  async #allocate(network: string, owner: string): Promise<string> {
    const res = await fetch(this.#url(network, owner), {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ node: this.#o.node }),
    });
    const body = (await res.json()) as { address?: string; error?: { message?: string } };
    if (!res.ok || !body.address) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
    return body.address;
  }

  async release(owner: string): Promise<void> {
    const network = this.#networks.get(owner);
    if (!network) return this.#o.fallback.release(owner);
    const res = await fetch(this.#url(network, owner), { method: "DELETE" });
    if (!res.ok) throw new Error(`IPAM did not release ${owner} in ${network}: ${res.status}`);
    this.#networks.delete(owner);
  }

  #url(network: string, owner: string): string {
    const e = encodeURIComponent;
    return new URL(`/v1/ipam/networks/${e(network)}/attachments/${e(owner)}/${IFNAME}`, this.#o.server).href;
  }
}
