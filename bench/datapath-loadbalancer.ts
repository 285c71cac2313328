// Endpoint picks per second for each policy at 10, 100 and 1,000 endpoints (weights 1-4), next to
// the floor of a bare random index in the same run, plus the time to build each picker.
// Run: node --import tsx bench/datapath-loadbalancer.ts
import type { Endpoint, Picker } from "../functions/loadbalancer/endpoint.js";
import { LeastRequestPicker } from "../functions/loadbalancer/least-request.js";
import { hashSourceAddress } from "../functions/loadbalancer/load-balancer.js";
import { MaglevPicker } from "../functions/loadbalancer/maglev.js";
import { RandomPicker } from "../functions/loadbalancer/random.js";
import { RingHashPicker } from "../functions/loadbalancer/ring-hash.js";
import { RoundRobinPicker } from "../functions/loadbalancer/round-robin.js";

const BUDGET_MS = Number(process.env.BENCH_MS ?? 300);
const SIZES = (process.env.BENCH_SIZES ?? "10,100,1000").split(",").map(Number);

const hashes = Uint32Array.from({ length: 4096 }, (_, i) =>
  hashSourceAddress(`198.51.${(i >> 8) & 255}.${i & 255}`),
);

function rate(p: Picker, hashed: boolean): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  let sink = 0;
  while (now - start < BUDGET_MS) {
    for (let i = 0; i < hashes.length; i++) {
      const e = hashed ? p.pick({ hash: hashes[i] as number }) : p.pick();
      sink += e ? e.port : 0;
    }
    n += hashes.length;
    now = performance.now();
  }
  if (sink < 0) console.log(sink);
  return n / ((now - start) / 1000);
}

const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(12);
console.log(`picks/s (build ms) — ${BUDGET_MS} ms per cell, node ${process.version}`);
console.log(
  `${"endpoints".padStart(9)} ${"floor".padStart(12)} ${"round_robin".padStart(20)} ${"least_request".padStart(20)} ${"random".padStart(20)} ${"ring_hash".padStart(20)} ${"maglev".padStart(20)}`,
);
for (const size of SIZES) {
  const eps: Endpoint[] = Array.from({ length: size }, (_, i) => ({
    address: `10.${(i >> 8) & 255}.${i & 255}.1`,
    port: 8080,
    weight: 1 + (i % 4),
  }));
  const active = new Map(eps.map((e, i) => [e, i % 7]));
  const floor: Picker = { pick: () => eps[Math.floor(Math.random() * eps.length)] };
  const cells: string[] = [];
  const makers: [() => Picker, boolean][] = [
    [() => new RoundRobinPicker(eps), false],
    [() => new LeastRequestPicker(eps, { activeOf: (e) => active.get(e) ?? 0 }), false],
    [() => new RandomPicker(eps), false],
    [() => new RingHashPicker(eps), true],
    [() => new MaglevPicker(eps), true],
  ];
  for (const [make, hashed] of makers) {
    const t0 = performance.now();
    const p = make();
    const build = performance.now() - t0;
    cells.push(`${fmt(rate(p, hashed))} (${build.toFixed(1).padStart(5)})`);
  }
  console.log(`${String(size).padStart(9)} ${fmt(rate(floor, false))} ${cells.join(" ")}`);
}
