// The reference decider: a straight scan of the rules. The index is checked against it in property
// tests and benchmarked against it; it is also fine for a handful of rules.
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

function ipBytes(ip: IpAddress): Uint8Array {
  if (ip.family === 6) return ip.bytes;
  return Uint8Array.of(ip.v4 >>> 24, (ip.v4 >>> 16) & 0xff, (ip.v4 >>> 8) & 0xff, ip.v4 & 0xff);
}

function inCidr(c: Cidr, family: 4 | 6, bytes: Uint8Array): boolean {
  if (c.family !== family) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (c.bytes[i] !== bytes[i]) return false;
  const rem = c.prefix & 7;
  if (rem === 0) return true;
  const mask = 0xff << (8 - rem);
  return (((c.bytes[full] as number) ^ (bytes[full] as number)) & mask) === 0;
}

function matches(r: FirewallRule, ip: IpAddress | undefined, bytes: Uint8Array, port: number): boolean {
  if (r.ports && !r.ports.some((p) => port >= p.start && port <= p.end)) return false;
  if (r.sources === undefined) return true;
  if (ip === undefined) return false;
  return r.sources.some((c) => inCidr(c, ip.family, bytes));
}

export class LinearFirewall implements FirewallDecider {
  private readonly ordered: FirewallRule[];
  private readonly decisions: ReturnType<typeof decisionTable>;

  constructor(policy: FirewallPolicy) {
    this.ordered = evaluationOrder(policy);
    this.decisions = decisionTable(this.ordered, policy.defaultAction);
  }

  decide(source: string | IpAddress, destPort: number): Decision {
    const parsed = typeof source === "string" ? parseIp(source) : source;
    const ip = parsed && unmapIpv4(parsed);
    const bytes = ip ? ipBytes(ip) : new Uint8Array(0);
    for (let i = 0; i < this.ordered.length; i++) {
      if (matches(this.ordered[i] as FirewallRule, ip, bytes, destPort))
        return this.decisions.byRule[i] as Decision;
    }
    return this.decisions.fallback;
  }
}
