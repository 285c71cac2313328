import { describe, expect, it } from "vitest";
import { type Endpoint, endpointKey, type Picker } from "./endpoint.js";
import { murmur3 } from "./hash.js";
import { LeastRequestPicker } from "./least-request.js";
import { hashSourceAddress, LoadBalancer } from "./load-balancer.js";
import { isPrime, MaglevPicker } from "./maglev.js";
import { RandomPicker } from "./random.js";
import { RingHashPicker } from "./ring-hash.js";
import { RoundRobinPicker } from "./round-robin.js";

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ep = (i: number, weight = 1, healthy = true): Endpoint => ({
  address: `10.0.0.${i}`,
  port: 8080,
  weight,
  healthy,
});

function counts(
  picker: Picker,
  n: number,
  ctx?: (i: number) => Parameters<Picker["pick"]>[0],
): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = picker.pick(ctx?.(i));
    const k = e ? endpointKey(e) : "none";
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

const clientHash = (i: number) => hashSourceAddress(`192.168.${(i >> 8) & 255}.${i & 255}`);

describe("hash", () => {
  it("is MurmurHash3 x86_32", () => {
    // Reference values of MurmurHash3_x86_32.
    expect(murmur3("", 0)).toBe(0);
    expect(murmur3("", 1)).toBe(0x514e28b7);
    expect(murmur3("hello", 0)).toBe(0x248bfa47);
    expect(murmur3("Hello, world!", 1234)).toBe(0xfaf6cdb3);
  });
});

describe("weighted distributions (weights 1:3)", () => {
  const eps = [ep(1, 1), ep(2, 3)];
  const share = (m: Map<string, number>, n: number) => (m.get("10.0.0.2:8080") ?? 0) / n;

  it("round_robin is exact over whole cycles and interleaves", () => {
    const p = new RoundRobinPicker(eps, seeded(1));
    const seq = Array.from({ length: 400 }, () => p.pick()?.address);
    const heavy = seq.filter((a) => a === "10.0.0.2").length;
    expect(Math.abs(heavy - 300)).toBeLessThanOrEqual(1);
    // EDF interleaves: the light endpoint appears at least once in every 5 picks.
    expect(seq.join(",")).not.toMatch(/(10\.0\.0\.2,){5}/);
  });

  it.each([
    { name: "random", make: () => new RandomPicker(eps, seeded(2)) },
    {
      name: "least_request (no load)",
      make: () => new LeastRequestPicker(eps, { activeOf: () => 0, random: seeded(3) }),
    },
    { name: "ring_hash", make: () => new RingHashPicker(eps, { random: seeded(4) }) },
    { name: "maglev", make: () => new MaglevPicker(eps, { random: seeded(5) }) },
  ])("$name gives the heavy endpoint 75% ± 3%", ({ make }) => {
    const p = make();
    const n = 20_000;
    expect(
      share(
        counts(p, n, (i) => ({ hash: clientHash(i) })),
        n,
      ),
    ).toBeGreaterThan(0.72);
    expect(
      share(
        counts(p, n, (i) => ({ hash: clientHash(i) })),
        n,
      ),
    ).toBeLessThan(0.78);
  });

  it("maglev fills its 65537-slot table 1:3", () => {
    const slots = new MaglevPicker(eps).slotsPerEndpoint();
    expect((slots.get("10.0.0.1:8080") ?? 0) + (slots.get("10.0.0.2:8080") ?? 0)).toBe(65537);
    expect((slots.get("10.0.0.2:8080") ?? 0) / 65537).toBeCloseTo(0.75, 2);
  });

  it("round_robin with equal weights rotates evenly", () => {
    const p = new RoundRobinPicker([ep(1), ep(2), ep(3)], seeded(9));
    const m = counts(p, 300);
    expect([...m.values()]).toEqual([100, 100, 100]);
  });
});

describe("least_request", () => {
  it("power of two choices steers away from the loaded endpoint", () => {
    const load = new Map([
      ["10.0.0.1", 0],
      ["10.0.0.2", 0],
      ["10.0.0.3", 50],
    ]);
    const p = new LeastRequestPicker([ep(1), ep(2), ep(3)], {
      activeOf: (e) => load.get(e.address) ?? 0,
      random: seeded(7),
    });
    const m = counts(p, 9000);
    // The loaded one only wins when both samples are it: 1/9 of picks.
    expect((m.get("10.0.0.3:8080") ?? 0) / 9000).toBeLessThan(0.14);
  });

  it("weighted: effective weight falls as active connections rise", () => {
    const load = new Map([
      ["10.0.0.1", 0],
      ["10.0.0.2", 8],
    ]);
    // weight 3 with 8 active → 3/9 = 1/3, against weight 1 with 0 active → 1: about 1:3 the other way.
    const p = new LeastRequestPicker([ep(1, 1), ep(2, 3)], { activeOf: (e) => load.get(e.address) ?? 0 });
    const m = counts(p, 4000);
    expect((m.get("10.0.0.1:8080") ?? 0) / 4000).toBeCloseTo(0.75, 1);
  });
});

describe("affinity (ring_hash, maglev)", () => {
  const eps = Array.from({ length: 10 }, (_, i) => ep(i + 1));

  it.each([
    { name: "ring_hash", make: (e: Endpoint[]) => new RingHashPicker(e) },
    { name: "maglev", make: (e: Endpoint[]) => new MaglevPicker(e) },
  ])("$name: same source → same endpoint, whatever the endpoint order", ({ make }) => {
    const a = make(eps);
    const b = make([...eps].reverse());
    for (let i = 0; i < 2000; i++) {
      const h = clientHash(i);
      expect(a.pick({ hash: h })).toBe(a.pick({ hash: h }));
      expect(endpointKey(a.pick({ hash: h }) as Endpoint)).toBe(endpointKey(b.pick({ hash: h }) as Endpoint));
    }
  });

  it.each([
    { name: "ring_hash", make: (e: Endpoint[]) => new RingHashPicker(e), extra: 0 },
    { name: "maglev", make: (e: Endpoint[]) => new MaglevPicker(e), extra: 0.03 },
  ])("$name: removing one of 10 endpoints moves only about its share of sources", ({ make, extra }) => {
    const before = make(eps);
    const after = make(eps.filter((_, i) => i !== 4));
    const gone = endpointKey(eps[4] as Endpoint);
    const n = 20_000;
    let moved = 0;
    let movedFromSurvivors = 0;
    for (let i = 0; i < n; i++) {
      const h = clientHash(i);
      const x = endpointKey(before.pick({ hash: h }) as Endpoint);
      const y = endpointKey(after.pick({ hash: h }) as Endpoint);
      if (x !== y) {
        moved++;
        if (x !== gone) movedFromSurvivors++;
      }
    }
    expect(moved / n).toBeLessThan(0.1 + 0.03 + extra);
    // Ring hash moves nothing else; maglev a little (the paper's "minimal disruption", not zero).
    expect(movedFromSurvivors / n).toBeLessThanOrEqual(extra);
  });

  it("hash pickers skip excluded endpoints deterministically", () => {
    for (const p of [new RingHashPicker(eps), new MaglevPicker(eps)]) {
      const h = clientHash(42);
      const first = p.pick({ hash: h }) as Endpoint;
      const second = p.pick({ hash: h, exclude: new Set([endpointKey(first)]) }) as Endpoint;
      expect(second).not.toBe(first);
      expect(p.pick({ hash: h, exclude: new Set([endpointKey(first)]) })).toBe(second);
    }
  });

  it("ring_hash sizes the ring from the minimum, in power-of-two steps, under the maximum", () => {
    // 1/3 of 1024 is 342 entries for the lightest, rounded up to 512 each.
    expect(new RingHashPicker([ep(1), ep(2), ep(3)]).ringSize).toBe(1536);
    expect(new RingHashPicker([ep(1, 1), ep(2, 3)]).ringSize).toBe(1024);
    expect(new RingHashPicker([ep(1, 1), ep(2, 3)], { maxRingSize: 100 }).ringSize).toBe(100);
    // Ten and nine equal endpoints get the same 128 entries each.
    const ten = Array.from({ length: 10 }, (_, i) => ep(i + 1));
    expect(new RingHashPicker(ten).ringSize).toBe(1280);
    expect(new RingHashPicker(ten.slice(1)).ringSize).toBe(1152);
  });

  it("maglev refuses a table size that is not prime", () => {
    expect(isPrime(65537)).toBe(true);
    expect(() => new MaglevPicker(eps, { tableSize: 65536 })).toThrow(/not prime/);
  });
});

describe("exclusion in round_robin and random", () => {
  it.each([
    { name: "round_robin", make: (e: Endpoint[]) => new RoundRobinPicker(e) },
    {
      name: "round_robin weighted",
      make: (e: Endpoint[]) => new RoundRobinPicker(e.map((x, i) => ({ ...x, weight: i + 1 }))),
    },
    { name: "random", make: (e: Endpoint[]) => new RandomPicker(e) },
    { name: "least_request", make: (e: Endpoint[]) => new LeastRequestPicker(e, { activeOf: () => 0 }) },
  ])("$name never returns an excluded endpoint while others remain", ({ make }) => {
    const p = make([ep(1), ep(2), ep(3)]);
    const exclude = new Set(["10.0.0.1:8080", "10.0.0.3:8080"]);
    for (let i = 0; i < 100; i++) expect(p.pick({ exclude })?.address).toBe("10.0.0.2");
  });
});

describe("LoadBalancer health and panic threshold", () => {
  it("skips unhealthy endpoints while enough are healthy", () => {
    const lb = new LoadBalancer({ policy: "round_robin" });
    lb.setEndpoints([ep(1), ep(2), ep(3, 1, false)]);
    expect(lb.inPanic).toBe(false);
    const seen = new Set(Array.from({ length: 20 }, () => lb.pick()?.address));
    expect(seen).toEqual(new Set(["10.0.0.1", "10.0.0.2"]));
  });

  it("balances over all endpoints below the 50% default threshold (Envoy panic mode)", () => {
    const lb = new LoadBalancer({ policy: "round_robin" });
    lb.setEndpoints([ep(1), ep(2, 1, false), ep(3, 1, false)]);
    expect(lb.inPanic).toBe(true);
    expect(new Set(Array.from({ length: 30 }, () => lb.pick()?.address)).size).toBe(3);
  });

  it("with the threshold at 0, no available endpoint means no pick", () => {
    const lb = new LoadBalancer({ policy: "maglev", panicThresholdPercent: 0 });
    lb.setEndpoints([ep(1, 1, false), ep(2, 1, false)]);
    expect(lb.pick({ sourceAddress: "1.2.3.4" })).toBeUndefined();
    lb.setActiveHealth("10.0.0.1:8080", true);
    expect(lb.pick({ sourceAddress: "1.2.3.4" })).toBeUndefined(); // still unhealthy per the control plane
  });

  it("combines active health and ejection, and keeps state across EDS updates", () => {
    const lb = new LoadBalancer({ policy: "random", random: seeded(11) });
    lb.setEndpoints([ep(1), ep(2), ep(3), ep(4)]);
    lb.setActiveHealth("10.0.0.1:8080", false);
    lb.setEjected("10.0.0.2:8080", true);
    expect(lb.availableSize).toBe(2);
    lb.setEndpoints([ep(1), ep(2), ep(3), ep(4), ep(5)]);
    expect(lb.isAvailable("10.0.0.1:8080")).toBe(false);
    expect(lb.isAvailable("10.0.0.2:8080")).toBe(false);
    expect(lb.isAvailable("10.0.0.5:8080")).toBe(true);
    expect(lb.availableSize).toBe(3);
  });

  it("least_request counts connections through the balancer", () => {
    const lb = new LoadBalancer({ policy: "least_request", random: seeded(12) });
    lb.setEndpoints([ep(1), ep(2)]);
    const busy = lb.pick() as Endpoint;
    for (let i = 0; i < 10; i++) lb.connectionOpened(busy);
    let other = 0;
    for (let i = 0; i < 100; i++) if (lb.pick() !== busy) other++;
    // Two choices out of two endpoints: the busy one wins only when sampled twice (1/4).
    expect(other).toBeGreaterThan(60);
    for (let i = 0; i < 10; i++) lb.connectionClosed(busy);
    expect(lb.activeConnections(busy)).toBe(0);
  });

  it("ring_hash via sourceAddress keeps a client on one endpoint", () => {
    const lb = new LoadBalancer({ policy: "ring_hash" });
    lb.setEndpoints([ep(1), ep(2), ep(3)]);
    const first = lb.pick({ sourceAddress: "203.0.113.9" });
    for (let i = 0; i < 10; i++) expect(lb.pick({ sourceAddress: "203.0.113.9" })).toBe(first);
  });
});
