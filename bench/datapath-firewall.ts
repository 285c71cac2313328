// Firewall decisions per second for the prefix-trie index next to the linear scan it replaces, at
// 100, 1,000 and 10,000 rules, in the same run. Run: node --import tsx bench/datapath-firewall.ts
import type { Cidr } from "../functions/firewall/cidr.js";
import { FirewallIndex } from "../functions/firewall/firewall-index.js";
import { LinearFirewall } from "../functions/firewall/linear-firewall.js";
import type { FirewallDecider, FirewallPolicy, FirewallRule } from "../functions/firewall/policy.js";
import { formatIpv4, type IpAddress, parseIp } from "../functions/sdk/ip-address.js";

const SIZES = (process.env.BENCH_SIZES ?? "100,1000,10000").split(",").map(Number);
const BUDGET_MS = Number(process.env.BENCH_MS ?? 400);
const PROBES = 4096;

// Deterministic PRNG so every run benchmarks the same rule sets.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function cidr4(v4: number, prefix: number): Cidr {
  const m = prefix === 0 ? 0 : (v4 & (0xffffffff << (32 - prefix))) >>> 0;
  return { family: 4, bytes: Uint8Array.of(m >>> 24, (m >>> 16) & 0xff, (m >>> 8) & 0xff, m & 0xff), prefix };
}

/** Rules shaped like a real edge policy: mostly /16-/32 allows on a few ports, one in ten a deny. */
function makePolicy(n: number, rand: () => number): FirewallPolicy {
  const rules: FirewallRule[] = [];
  for (let i = 0; i < n; i++) {
    const v4 = ((10 << 24) | (Math.floor(rand() * 65536) << 8)) >>> 0;
    const prefix = 16 + Math.floor(rand() * 17);
    const port = 1000 + Math.floor(rand() * 2000);
    const ranged = rand() < 0.3;
    rules.push({
      id: `r${i}`,
      action: rand() < 0.1 ? "deny" : "allow",
      sources: [cidr4(v4, prefix)],
      ports: [{ start: port, end: ranged ? port + Math.floor(rand() * 100) : port }],
    });
  }
  return { defaultAction: "deny", rules };
}

function run(decider: FirewallDecider, probes: readonly [string | IpAddress, number][]): number {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < BUDGET_MS) {
    for (let i = 0; i < probes.length; i++) {
      const [s, p] = probes[i] as [string | IpAddress, number];
      if (decider.decide(s, p).allowed) sink++;
    }
    n += probes.length;
    now = performance.now();
  }
  if (sink < 0) console.log(sink);
  return n / ((now - start) / 1000);
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(13);

console.log(
  `firewall decisions/s (${PROBES} probe addresses, ${BUDGET_MS} ms per cell, node ${process.version})`,
);
console.log(
  `${"rules".padStart(7)} ${"build ms".padStart(9)} ${"trie nodes".padStart(11)} ${"index(str)".padStart(13)} ${"index(ip)".padStart(13)} ${"linear(ip)".padStart(13)} ${"speed-up".padStart(9)}`,
);
for (const size of SIZES) {
  const rand = rng(size);
  const policy = makePolicy(size, rand);
  const t0 = performance.now();
  const index = new FirewallIndex(policy);
  const buildMs = performance.now() - t0;
  const linear = new LinearFirewall(policy);
  const strings: [string, number][] = [];
  for (let i = 0; i < PROBES; i++) {
    // Half the probes land inside some rule's block, half anywhere in 10/8.
    const r = policy.rules[Math.floor(rand() * policy.rules.length)] as FirewallRule;
    const base = r.sources?.[0] as Cidr;
    const inside =
      ((base.bytes[0] as number) << 24) |
      ((base.bytes[1] as number) << 16) |
      ((base.bytes[2] as number) << 8);
    const v4 =
      rand() < 0.5
        ? (inside | Math.floor(rand() * 256)) >>> 0
        : ((10 << 24) | Math.floor(rand() * 2 ** 24)) >>> 0;
    strings.push([formatIpv4(v4), 1000 + Math.floor(rand() * 2100)]);
  }
  const parsed = strings.map(([s, p]): [IpAddress, number] => [parseIp(s) as IpAddress, p]);
  for (const [s, p] of parsed) {
    const a = index.decide(s, p);
    const b = linear.decide(s, p);
    if (a.allowed !== b.allowed || a.rule !== b.rule)
      throw new Error(`index and linear disagree at ${size} rules`);
  }
  const idxStr = run(index, strings);
  const idxIp = run(index, parsed);
  const lin = run(linear, parsed);
  console.log(
    `${String(size).padStart(7)} ${buildMs.toFixed(1).padStart(9)} ${String(index.nodeCount).padStart(11)} ${fmt(idxStr)} ${fmt(idxIp)} ${fmt(lin)} ${`${(idxIp / lin).toFixed(0)}x`.padStart(9)}`,
  );
}
