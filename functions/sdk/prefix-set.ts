// Source prefixes a listener trusts (filter_chain_match.source_prefix_ranges: the previous hop's
// instances). A handful of ranges, checked linearly against the socket peer.
import { type IpAddress, parseIp, unmapIpv4 } from "./ip-address.js";

interface Prefix {
  family: 4 | 6;
  v4: number;
  bytes: Uint8Array;
  len: number;
}

export class PrefixSet {
  readonly #prefixes: Prefix[] = [];

  /** Adds "address" with prefix length len (default the whole address); false when malformed. */
  add(address: string, len?: number): boolean {
    const parsed = parseIp(address);
    if (!parsed) return false;
    const ip = unmapIpv4(parsed);
    const max = ip.family === 4 ? 32 : 128;
    let l = len ?? max;
    // An IPv4-mapped IPv6 prefix counts its length over the IPv6 bits.
    if (parsed.family === 6 && ip.family === 4 && len !== undefined) l = len - 96;
    if (!Number.isInteger(l) || l < 0 || l > max) return false;
    this.#prefixes.push(
      ip.family === 4
        ? { family: 4, v4: ip.v4, bytes: new Uint8Array(0), len: l }
        : { family: 6, v4: 0, bytes: ip.bytes, len: l },
    );
    return true;
  }

  get size(): number {
    return this.#prefixes.length;
  }

  /** Whether an address (as Node reports a peer: v4, v6 or v4-mapped v6) lies in one of the prefixes. */
  has(address: string | undefined): boolean {
    if (address === undefined) return false;
    const parsed = parseIp(address);
    if (!parsed) return false;
    const ip: IpAddress = unmapIpv4(parsed);
    for (const p of this.#prefixes) {
      if (ip.family === 4) {
        if (p.family !== 4) continue;
        if (p.len === 0) return true;
        const shift = 32 - p.len;
        if (ip.v4 >>> shift === p.v4 >>> shift) return true;
      } else if (p.family === 6 && matches6(ip.bytes, p.bytes, p.len)) return true;
    }
    return false;
  }
}

function matches6(a: Uint8Array, b: Uint8Array, len: number): boolean {
  const whole = len >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = len & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (((a[whole] as number) ^ (b[whole] as number)) & mask) === 0;
}
