// The firewall's decision index: a prefix trie per address family whose nodes carry port segments.
// decide() walks the source address's bits (at most 33 or 129 nodes) and binary-searches the port at
// each node that holds rules, so its cost grows with log(rules per node), not with the rule count.
import { type IpAddress, parseIp, unmapIpv4 } from "../sdk/ip-address.js";
import type { Cidr } from "./cidr.js";
import {
  type Decision,
  decisionTable,
  evaluationOrder,
  type FirewallDecider,
  type FirewallPolicy,
  type FirewallRule,
} from "./policy.js";
import { buildPortSegments, type PortEntry } from "./port-segments.js";
import { type PrefixTrie, PrefixTrieBuilder } from "./prefix-trie.js";

const ROOT4: Cidr = { family: 4, bytes: new Uint8Array(4), prefix: 0 };
const ROOT6: Cidr = { family: 6, bytes: new Uint8Array(16), prefix: 0 };
const NONE = 0x7fffffff;

export class FirewallIndex implements FirewallDecider {
  readonly ruleCount: number;
  private readonly byRule: readonly Decision[];
  private readonly fallback: Decision;
  private readonly v4: PrefixTrie;
  private readonly v6: PrefixTrie;
  // Per slot: where its segments sit in starts/owners, and the lowest rule it can yield.
  private readonly segOff: Int32Array;
  private readonly segLen: Int32Array;
  private readonly minRule: Int32Array;
  private readonly starts: Int32Array;
  private readonly owners: Int32Array;
  /** Slot of the rules without sources: all an unparseable source can match. */
  private readonly anySlot: number;

  constructor(policy: FirewallPolicy) {
    const ordered: FirewallRule[] = evaluationOrder(policy);
    this.ruleCount = ordered.length;
    const table = decisionTable(ordered, policy.defaultAction);
    this.byRule = table.byRule;
    this.fallback = table.fallback;

    const b4 = new PrefixTrieBuilder<PortEntry>();
    const b6 = new PrefixTrieBuilder<PortEntry>();
    const anyEntries: PortEntry[] = [];
    ordered.forEach((r, rule) => {
      const entry: PortEntry = { rule, ports: r.ports };
      if (r.sources === undefined) {
        b4.insert(ROOT4, entry);
        b6.insert(ROOT6, entry);
        anyEntries.push(entry);
        return;
      }
      for (const c of r.sources) (c.family === 4 ? b4 : b6).insert(c, entry);
    });

    const segOff: number[] = [];
    const segLen: number[] = [];
    const minRule: number[] = [];
    const starts: number[] = [];
    const owners: number[] = [];
    const slot = (entries: PortEntry[]): number => {
      const segs = buildPortSegments(entries);
      segOff.push(starts.length);
      segLen.push(segs.starts.length);
      let min = NONE;
      for (const o of segs.owners) if (o >= 0 && o < min) min = o;
      minRule.push(min);
      for (let i = 0; i < segs.starts.length; i++) {
        starts.push(segs.starts[i] as number);
        owners.push(segs.owners[i] as number);
      }
      return segOff.length - 1;
    };
    this.v4 = b4.build(slot);
    this.v6 = b6.build(slot);
    this.anySlot = slot(anyEntries);
    this.segOff = Int32Array.from(segOff);
    this.segLen = Int32Array.from(segLen);
    this.minRule = Int32Array.from(minRule);
    this.starts = Int32Array.from(starts);
    this.owners = Int32Array.from(owners);
  }

  /** Trie nodes across both families: the index's memory is proportional to this. */
  get nodeCount(): number {
    return this.v4.size + this.v6.size;
  }

  decide(source: string | IpAddress, destPort: number): Decision {
    const parsed = typeof source === "string" ? parseIp(source) : source;
    let best: number;
    if (parsed === undefined) {
      best = this.portOwner(this.anySlot, destPort, NONE);
    } else {
      const ip = unmapIpv4(parsed);
      best = ip.family === 4 ? this.walk4(ip.v4, destPort) : this.walk6(ip.bytes, destPort);
    }
    return best === NONE ? this.fallback : (this.byRule[best] as Decision);
  }

  private portOwner(slot: number, port: number, best: number): number {
    if ((this.minRule[slot] as number) >= best) return best;
    const off = this.segOff[slot] as number;
    let lo = off;
    let hi = off + (this.segLen[slot] as number) - 1;
    // Last segment whose start is <= port.
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if ((this.starts[mid] as number) <= port) lo = mid;
      else hi = mid - 1;
    }
    const o = this.owners[lo] as number;
    return o >= 0 && o < best ? o : best;
  }

  private walk4(v4: number, port: number): number {
    const { kids, slots } = this.v4;
    let best = NONE;
    let node = 0;
    for (let i = 0; ; i++) {
      const s = slots[node] as number;
      if (s >= 0) best = this.portOwner(s, port, best);
      if (i === 32) return best;
      node = kids[2 * node + ((v4 >>> (31 - i)) & 1)] as number;
      if (node === 0) return best;
    }
  }

  private walk6(bytes: Uint8Array, port: number): number {
    const { kids, slots } = this.v6;
    let best = NONE;
    let node = 0;
    for (let i = 0; ; i++) {
      const s = slots[node] as number;
      if (s >= 0) best = this.portOwner(s, port, best);
      if (i === 128) return best;
      node = kids[2 * node + (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1)] as number;
      if (node === 0) return best;
    }
  }
}
