// CIDR blocks as prefix bits over the address bytes, the form the prefix trie is built from.
import { formatIp, isIpv4Mapped, parseIpv4, parseIpv6Into, readV4 } from "../sdk/ip-address.js";

export interface Cidr {
  family: 4 | 6;
  /** 4 or 16 bytes, network order, host bits zero. */
  bytes: Uint8Array;
  prefix: number;
}

export function cidrBit(c: Cidr, i: number): number {
  return ((c.bytes[i >> 3] as number) >> (7 - (i & 7))) & 1;
}

function maskHostBits(bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const keep = prefix - i * 8;
    if (keep >= 8) continue;
    bytes[i] = keep <= 0 ? 0 : (bytes[i] as number) & (0xff << (8 - keep));
  }
}

/**
 * "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Host bits are cleared, as Envoy's
 * CidrRange does. IPv4-mapped IPv6 blocks of /96 or longer become the IPv4 block they cover, so that
 * they match the IPv4 peers Node reports in that form. Undefined when the text is not a CIDR.
 */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  let prefix = -1;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    prefix = Number(p);
  }
  if (addr.indexOf(":") < 0) {
    const v4 = parseIpv4(addr);
    if (v4 < 0) return undefined;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) return undefined;
    const bytes = Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff);
    maskHostBits(bytes, prefix);
    return { family: 4, bytes, prefix };
  }
  if (addr.indexOf("%") >= 0) return undefined;
  const bytes = new Uint8Array(16);
  if (!parseIpv6Into(addr, bytes)) return undefined;
  if (prefix < 0) prefix = 128;
  if (prefix > 128) return undefined;
  if (prefix >= 96 && isIpv4Mapped(bytes)) {
    const v4 = bytes.slice(12);
    maskHostBits(v4, prefix - 96);
    return { family: 4, bytes: v4, prefix: prefix - 96 };
  }
  maskHostBits(bytes, prefix);
  return { family: 6, bytes, prefix };
}

export function formatCidr(c: Cidr): string {
  const ip =
    c.family === 4
      ? formatIp({ family: 4, v4: readV4(c.bytes, 0) })
      : formatIp({ family: 6, bytes: c.bytes });
  return `${ip}/${c.prefix}`;
}

/** True when every address of inner is in outer. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  for (let i = 0; i < outer.prefix; i++) if (cidrBit(outer, i) !== cidrBit(inner, i)) return false;
  return true;
}

/**
 * base minus every block in except, as disjoint CIDRs: NetworkPolicy's ipBlock.except expressed with
 * plain prefixes, so the trie needs no negative entries. Each except costs at most
 * (except.prefix - base.prefix) blocks.
 */
export function subtractCidrs(base: Cidr, except: readonly Cidr[]): Cidr[] {
  let out: Cidr[] = [base];
  for (const e of except) {
    const next: Cidr[] = [];
    for (const r of out) {
      if (cidrContains(e, r)) continue;
      if (!cidrContains(r, e)) {
        next.push(r);
        continue;
      }
      // Walk from r down to e; at every level the half that does not hold e survives whole.
      for (let depth = r.prefix; depth < e.prefix; depth++) {
        const sibling = e.bytes.slice();
        const byte = depth >> 3;
        sibling[byte] = (sibling[byte] as number) ^ (0x80 >> (depth & 7));
        maskHostBits(sibling, depth + 1);
        next.push({ family: r.family, bytes: sibling, prefix: depth + 1 });
      }
    }
    out = next;
  }
  return out;
}

/** The addresses in both lists (each a union of blocks): of two nested blocks the longer survives. */
export function intersectCidrs(a: readonly Cidr[], b: readonly Cidr[]): Cidr[] {
  const out: Cidr[] = [];
  for (const x of a) {
    for (const y of b) {
      if (cidrContains(x, y)) out.push(y);
      else if (cidrContains(y, x)) out.push(x);
    }
  }
  return out;
}

export const ALL_IPV4: Cidr = { family: 4, bytes: new Uint8Array(4), prefix: 0 };
export const ALL_IPV6: Cidr = { family: 6, bytes: new Uint8Array(16), prefix: 0 };

/** Every address not in the list, both families. */
export function complementCidrs(list: readonly Cidr[]): Cidr[] {
  return [
    ...subtractCidrs(
      ALL_IPV4,
      list.filter((c) => c.family === 4),
    ),
    ...subtractCidrs(
      ALL_IPV6,
      list.filter((c) => c.family === 6),
    ),
  ];
}
