// IP addresses and CIDRs as bigint ranges: parsing, formatting, containment, overlap.
// Shared by validation, IPAM and the firewall, so it has no notion of manifests.
import { isIPv6 } from "node:net";

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A network: `first` is the network address, `last` the broadcast (IPv4) or last address. */
export interface Cidr {
  readonly family: IpFamily;
  readonly prefix: number;
  readonly first: bigint;
  readonly last: bigint;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

export function familyBits(family: IpFamily): number {
  return BITS[family];
}

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    // No leading zeros: `010` is octal to some tools and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  // Zone ids (`fe80::1%eth0`) name an interface, not an address.
  if (text.includes("%") || !isIPv6(text)) return undefined;
  let groups: string[];
  const lastColon = text.lastIndexOf(":");
  let tail: string[] = [];
  let head = text;
  if (text.includes(".")) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [(v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16)];
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length === 2) {
    const left = halves[0] ? halves[0].split(":") : [];
    const right = [...(halves[1] ? halves[1].split(":") : []), ...tail];
    groups = [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  } else {
    groups = [...head.split(":"), ...tail];
  }
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  return value;
}

export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: 6, value: v6 };
  return undefined;
}

export function formatIp(address: IpAddress): string {
  const { family, value } = address;
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join(".");
  }
  // IPv4-mapped addresses read best in mixed notation (RFC 5952 §5).
  if (value >> 32n === 0xffffn) return `::ffff:${formatIp({ family: 4, value: value & 0xffffffffn })}`;
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // Compress the longest run of at least two zero groups, the first one on a tie (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function hostMask(family: IpFamily, prefix: number): bigint {
  return (1n << BigInt(BITS[family] - prefix)) - 1n;
}

/** Parses `10.0.0.0/16` or `fd00::/64`. Host bits set is an error: the user likely mistyped. */
/**
 * Parsed CIDRs by text. Cross-checks compare a new Network against every stored one on each
 * apply; parsing them all again each time dominated apply latency. Results are immutable.
 */
const cidrCache = new Map<string, Parsed<Cidr>>();
const CIDR_CACHE_LIMIT = 50_000;

export function parseCidr(text: string): Parsed<Cidr> {
  let parsed = cidrCache.get(text);
  if (parsed === undefined) {
    if (cidrCache.size >= CIDR_CACHE_LIMIT) cidrCache.clear();
    parsed = parseCidrText(text);
    cidrCache.set(text, parsed);
  }
  return parsed;
}

function parseCidrText(text: string): Parsed<Cidr> {
  const slash = text.indexOf("/");
  if (slash < 0) {
    return { ok: false, message: `"${text}" is not a CIDR (expected address/prefix, such as 10.0.0.0/16)` };
  }
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const address = parseIp(addressText);
  if (!address) return { ok: false, message: `"${text}" is not a CIDR: ${addressText} is not an IP address` };
  const bits = BITS[address.family];
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return {
      ok: false,
      message: `"${text}" is not a CIDR: the prefix length must be 0 to ${bits} for IPv${address.family}`,
    };
  }
  const prefix = Number(prefixText);
  const mask = hostMask(address.family, prefix);
  const first = address.value & ~mask;
  if (first !== address.value) {
    const suggestion = formatCidr({ family: address.family, prefix, first, last: first | mask });
    return { ok: false, message: `${text} is not a network address; did you mean ${suggestion}` };
  }
  return { ok: true, value: { family: address.family, prefix, first, last: first | mask } };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.first })}/${cidr.prefix}`;
}

/** The /32 or /128 network holding exactly one address. */
export function hostCidr(address: IpAddress): Cidr {
  const prefix = BITS[address.family];
  return { family: address.family, prefix, first: address.value, last: address.value };
}

function asRange(x: Cidr | IpAddress): { family: IpFamily; first: bigint; last: bigint } {
  return "value" in x ? { family: x.family, first: x.value, last: x.value } : x;
}

/** Whether `inner` (a network or an address) lies wholly inside `outer`. Families never mix. */
export function cidrContains(outer: Cidr, inner: Cidr | IpAddress): boolean {
  const r = asRange(inner);
  return outer.family === r.family && outer.first <= r.first && r.last <= outer.last;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** Number of addresses in the network, network and broadcast addresses included. */
export function cidrSize(cidr: Cidr): bigint {
  return cidr.last - cidr.first + 1n;
}

/** The address `offset` places after the network address, or undefined past the end. */
export function cidrAddress(cidr: Cidr, offset: bigint): IpAddress | undefined {
  const value = cidr.first + offset;
  if (offset < 0n || value > cidr.last) return undefined;
  return { family: cidr.family, value };
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}
