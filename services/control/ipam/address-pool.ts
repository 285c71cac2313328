// The allocation rules of one Network, independent of where leases are kept (DESIGN.md "Contracts:
// CNI"): the network address and the IPv4 broadcast address are never handed out, the first usable
// address is the gateway, and `exclude` ranges are skipped. The embedded and the KV lease stores
// both allocate through this, so the rules cannot drift between them.
import { CatenaError, ErrorCode } from "../errors.js";
import {
  type Cidr,
  cidrContains,
  formatCidr,
  formatIp,
  type IpAddress,
  type IpFamily,
  parseCidr,
  parseIp,
} from "../model/ip.js";
import type { NetworkSpec } from "../model/schemas.js";

interface Range {
  first: bigint;
  last: bigint;
}

export class AddressPool {
  readonly cidr: Cidr;
  readonly gateway: string;
  readonly family: IpFamily;
  /** First and last address that may be handed out (before exclusions). */
  readonly low: bigint;
  readonly high: bigint;
  /** Excluded ranges clipped to [low, high], sorted and merged. */
  readonly #excluded: Range[];
  /** Addresses that may be handed out. */
  readonly size: bigint;

  constructor(network: string, spec: Pick<NetworkSpec, "cidr" | "exclude">) {
    const parsed = parseCidr(spec.cidr);
    if (!parsed.ok) throw invalid("cidr", parsed.message);
    const cidr = parsed.value;
    const hostBits = (cidr.family === 4 ? 32 : 128) - cidr.prefix;
    if (hostBits < 2) {
      throw invalid(
        "cidr",
        `${spec.cidr} of network ${network} leaves no address besides network and gateway`,
      );
    }
    this.cidr = cidr;
    this.family = cidr.family;
    this.gateway = formatIp({ family: cidr.family, value: cidr.first + 1n });
    this.low = cidr.first + 2n;
    this.high = cidr.family === 4 ? cidr.last - 1n : cidr.last;
    const ranges: Range[] = [];
    for (const [i, text] of (spec.exclude ?? []).entries()) {
      const ex = parseCidr(text);
      if (!ex.ok) throw invalid(`exclude[${i}]`, ex.message);
      if (ex.value.family !== cidr.family) continue;
      // bigint: Math.max/min do not take them.
      // biome-ignore lint/complexity/useMathMinMax: bigint operands
      const first = ex.value.first < this.low ? this.low : ex.value.first;
      // biome-ignore lint/complexity/useMathMinMax: bigint operands
      const last = ex.value.last > this.high ? this.high : ex.value.last;
      if (first <= last) ranges.push({ first, last });
    }
    ranges.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    const merged: Range[] = [];
    for (const r of ranges) {
      const prev = merged[merged.length - 1];
      if (prev && r.first <= prev.last + 1n) {
        if (r.last > prev.last) prev.last = r.last;
      } else merged.push({ ...r });
    }
    this.#excluded = merged;
    let size = this.high - this.low + 1n;
    for (const r of merged) size -= r.last - r.first + 1n;
    this.size = size;
  }

  get prefixLength(): number {
    return this.cidr.prefix;
  }

  get cidrText(): string {
    return formatCidr(this.cidr);
  }

  /** The excluded range holding `value`, if any (binary search: exclusions may be many). */
  #excludedAt(value: bigint): Range | undefined {
    let lo = 0;
    let hi = this.#excluded.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.#excluded[mid] as Range;
      if (value < r.first) hi = mid - 1;
      else if (value > r.last) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** Why `address` may not be handed out or claimed here; undefined when it may. */
  problem(address: IpAddress): string | undefined {
    const ip = formatIp(address);
    if (!cidrContains(this.cidr, address)) return `${ip} is not in ${this.cidrText}`;
    if (address.value === this.cidr.first) return `${ip} is the network address of ${this.cidrText}`;
    if (address.value === this.cidr.first + 1n) return `${ip} is the gateway of ${this.cidrText}`;
    if (this.family === 4 && address.value === this.cidr.last)
      return `${ip} is the broadcast address of ${this.cidrText}`;
    if (this.#excludedAt(address.value)) return `${ip} is in an excluded range of ${this.cidrText}`;
    return undefined;
  }

  /** Parses and checks an address for a claim; Invalid with the reason otherwise. */
  check(text: string): IpAddress {
    const address = parseIp(text);
    if (!address) throw invalid("address", `${JSON.stringify(text)} is not an IP address`);
    const problem = this.problem(address);
    if (problem) throw invalid("address", problem);
    return address;
  }

  /** Allocatable addresses from `from` upwards, then from the start up to `from`: each once. */
  *candidates(from: bigint): Generator<bigint> {
    const origin = from < this.low || from > this.high ? this.low : from;
    let start = origin;
    for (let pass = 0; pass < 2; pass++) {
      let v = start;
      const end = pass === 0 ? this.high : origin - 1n;
      while (v <= end) {
        const ex = this.#excludedAt(v);
        if (ex) {
          v = ex.last + 1n;
          continue;
        }
        yield v;
        v++;
      }
      start = this.low;
    }
  }

  format(value: bigint): string {
    return formatIp({ family: this.family, value });
  }
}

function invalid(path: string, message: string): CatenaError {
  return new CatenaError(ErrorCode.Invalid, message, [{ path, message }]);
}
