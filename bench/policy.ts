// NetworkPolicy at 100, 1,000 and 10,000 rules: the control server's compile time (policies → the
// firewall hop's RBAC), the firewall's load time (RBAC decoded and indexed, as the function host does
// on an xDS update), and the decision time per connection through the compiled filters (DENY then
// ALLOW), with the prefix-trie index next to the linear scan in the same run. The index's decision
// time must not grow linearly with the rule count. Run: node --import tsx bench/policy.ts
import { FirewallIndex } from "../functions/firewall/firewall-index.js";
import { LinearFirewall } from "../functions/firewall/linear-firewall.js";
import type { FirewallDecider } from "../functions/firewall/policy.js";
import { decodeRbacConfig } from "../functions/firewall/rbac-config.js";
import { formatIpv4, type IpAddress, parseIp } from "../functions/sdk/ip-address.js";
import {
  compileServicePolicy,
  type PolicyModel,
  policyFilters,
} from "../services/control/compiler/policy.js";
import type { Kind, StoredResource } from "../services/control/model/resource.js";

const SIZES = (process.env.BENCH_SIZES ?? "100,1000,10000").split(",").map(Number);
const BUDGET_MS = Number(process.env.BENCH_MS ?? 400);
const PROBES = 4096;
const PORT = 5432;
const RULES_PER_POLICY = 10;

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

function obj(
  kind: Kind,
  name: string,
  spec: Record<string, unknown>,
  labels?: Record<string, string>,
): StoredResource {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind,
    metadata: {
      name,
      ...(labels && { labels }),
      resourceVersion: "1",
      generation: 1,
      uid: name,
      creationTimestamp: "",
    },
    spec,
  };
}

function block(rand: () => number): string {
  const prefix = 16 + Math.floor(rand() * 17);
  const v4 = ((10 << 24) | (Math.floor(rand() * 65536) << 8) | Math.floor(rand() * 256)) >>> 0;
  const masked = prefix === 32 ? v4 : (v4 & (0xffffffff << (32 - prefix))) >>> 0;
  return `${formatIpv4(masked)}/${prefix}`;
}

/** `rules` rules over rules/10 policies: nine ingress rules and one deny each; ipBlocks, some with except; ports, some ranges. */
function makeModel(rules: number, rand: () => number): { model: PolicyModel; service: StoredResource } {
  const service = obj("Service", "db", {
    network: "n",
    selector: { app: "db" },
    ports: [{ name: "sql", port: PORT }],
  });
  const objects: StoredResource[] = [obj("Network", "n", { cidr: "10.0.0.0/8" }), service];
  const ports = () => {
    const r = rand();
    if (r < 0.5) return undefined;
    if (r < 0.8) return [{ port: PORT - Math.floor(rand() * 50), endPort: PORT + Math.floor(rand() * 50) }];
    return [{ port: 1000 + Math.floor(rand() * 2000) }];
  };
  const peer = () => {
    const cidr = block(rand);
    const prefix = Number(cidr.split("/")[1]);
    if (prefix <= 24 && rand() < 0.2) {
      const base = cidr.split("/")[0] as string;
      const [a, b, c] = base.split(".");
      return { ipBlock: { cidr, except: [`${a}.${b}.${c}.${Math.floor(rand() * 64) * 4}/30`] } };
    }
    return { ipBlock: { cidr } };
  };
  for (let p = 0; p < rules / RULES_PER_POLICY; p++) {
    const ingress = Array.from({ length: RULES_PER_POLICY - 1 }, () => {
      const pr = ports();
      return { from: [peer()], ...(pr && { ports: pr }) };
    });
    objects.push(
      obj("NetworkPolicy", `p${p}`, {
        subject: { selector: { app: "db" } },
        ingress,
        deny: [{ from: [peer()] }],
      }),
    );
  }
  return {
    service,
    model: {
      get: (kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name),
      list: (kind) => objects.filter((o) => o.kind === kind),
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** A connection passes when every filter allows it, in order (the host's filter chain). */
function chainDecide(deciders: readonly FirewallDecider[], s: IpAddress, port: number): boolean {
  for (const d of deciders) if (!d.decide(s, port).allowed) return false;
  return true;
}

function nsPerDecision(deciders: readonly FirewallDecider[], probes: readonly [IpAddress, number][]): number {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < BUDGET_MS) {
    for (const [s, p] of probes) if (chainDecide(deciders, s, p)) sink++;
    n += probes.length;
    now = performance.now();
  }
  if (sink < 0) console.log(sink);
  return ((now - start) * 1e6) / n;
}

console.log(
  `NetworkPolicy compile and firewall decision (${PROBES} probes, ${BUDGET_MS} ms per cell, node ${process.version})`,
);
console.log(
  [
    "rules".padStart(7),
    "compile ms".padStart(11),
    "load ms".padStart(9),
    "RBAC policies".padStart(14),
    "index ns/dec".padStart(13),
    "linear ns/dec".padStart(14),
    "speed-up".padStart(9),
  ].join(" "),
);
const rows: { size: number; index: number; linear: number }[] = [];
for (const size of SIZES) {
  const rand = rng(size);
  const { model, service } = makeModel(size, rand);
  const compileTimes: number[] = [];
  let compiled = compileServicePolicy(service, PORT, [], model);
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    compiled = compileServicePolicy(service, PORT, [], model);
    compileTimes.push(performance.now() - t0);
  }
  if (!compiled) throw new Error("nothing compiled");
  const loadTimes: number[] = [];
  let indexes: FirewallIndex[] = [];
  let linears: LinearFirewall[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const decoded = policyFilters(compiled, "db/0").map((f) => {
      const d = decodeRbacConfig(f.typedConfig);
      if (!d.ok) throw new Error(JSON.stringify(d.errors.slice(0, 3)));
      return d.value.policy;
    });
    indexes = decoded.map((p) => new FirewallIndex(p));
    loadTimes.push(performance.now() - t0);
    linears = decoded.map((p) => new LinearFirewall(p));
  }
  const rbacPolicies = Object.keys(compiled.deny).length + Object.keys(compiled.allow ?? {}).length;
  const probes: [IpAddress, number][] = [];
  for (let i = 0; i < PROBES; i++) {
    const v4 = ((10 << 24) | Math.floor(rand() * 2 ** 24)) >>> 0;
    probes.push([
      parseIp(formatIpv4(v4)) as IpAddress,
      rand() < 0.8 ? PORT : 1000 + Math.floor(rand() * 2000),
    ]);
  }
  for (const [s, p] of probes) {
    if (chainDecide(indexes, s, p) !== chainDecide(linears, s, p))
      throw new Error(`index and linear disagree at ${size}`);
  }
  const index = nsPerDecision(indexes, probes);
  const linear = nsPerDecision(linears, probes);
  rows.push({ size, index, linear });
  console.log(
    [
      String(size).padStart(7),
      median(compileTimes).toFixed(2).padStart(11),
      median(loadTimes).toFixed(2).padStart(9),
      String(rbacPolicies).padStart(14),
      index.toFixed(0).padStart(13),
      linear.toFixed(0).padStart(14),
      `${(linear / index).toFixed(0)}x`.padStart(9),
    ].join(" "),
  );
}
const first = rows[0];
const last = rows[rows.length - 1];
if (first && last && last !== first) {
  console.log(
    `rules x${last.size / first.size}: index decision time x${(last.index / first.index).toFixed(2)}, linear x${(last.linear / first.linear).toFixed(2)}`,
  );
}
