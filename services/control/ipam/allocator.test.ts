import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AddressPool } from "./address-pool.js";
import { type LeaseValue, NetworkAllocator } from "./allocator.js";
import { FileLeaseStore } from "./file-lease-store.js";
import type { LeaseEntry, LeaseStore } from "./lease-store.js";

/** An in-memory CAS store whose operations yield, so concurrent callers interleave. */
class MemoryLeaseStore implements LeaseStore<LeaseValue> {
  readonly entries = new Map<string, LeaseEntry<LeaseValue>>();
  #revision = 0;
  async read(key: string) {
    await Promise.resolve();
    return this.entries.get(key);
  }
  async create(key: string, value: LeaseValue) {
    await Promise.resolve();
    if (this.entries.has(key)) return undefined;
    this.entries.set(key, { value, revision: ++this.#revision });
    return this.#revision;
  }
  async delete(key: string, revision: number) {
    await Promise.resolve();
    if (this.entries.get(key)?.revision !== revision) return false;
    this.entries.delete(key);
    return true;
  }
  async list(prefix: string) {
    return [...this.entries].filter(([k]) => k.startsWith(prefix)).map(([key, entry]) => ({ key, entry }));
  }
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("address pool rules", () => {
  it("reserves the first usable address as gateway and never hands out network or broadcast", () => {
    const pool = new AddressPool("n", { cidr: "10.0.0.0/29" });
    expect(pool.gateway).toBe("10.0.0.1");
    expect([...pool.candidates(0n)].map((v) => pool.format(v))).toEqual([
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.4",
      "10.0.0.5",
      "10.0.0.6",
    ]);
    expect(pool.size).toBe(5n);
  });

  it("skips excluded ranges and counts them out of the size", () => {
    const pool = new AddressPool("n", { cidr: "10.0.0.0/28", exclude: ["10.0.0.4/30", "10.0.0.8/31"] });
    expect([...pool.candidates(0n)].map((v) => pool.format(v))).toEqual([
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.10",
      "10.0.0.11",
      "10.0.0.12",
      "10.0.0.13",
      "10.0.0.14",
    ]);
    expect(pool.size).toBe(7n);
    expect(() => pool.check("10.0.0.5")).toThrow(/excluded/);
    expect(() => pool.check("10.0.0.15")).toThrow(/broadcast/);
    expect(() => pool.check("10.0.0.0")).toThrow(/network address/);
    expect(() => pool.check("10.0.0.1")).toThrow(/gateway/);
  });

  it("hands out the last address of an IPv6 network (there is no broadcast)", () => {
    const pool = new AddressPool("n", { cidr: "fd00::/126" });
    expect([...pool.candidates(0n)].map((v) => pool.format(v))).toEqual(["fd00::2", "fd00::3"]);
  });

  it("refuses a network too small to hold an address besides network and gateway", () => {
    expect(() => new AddressPool("n", { cidr: "10.0.0.0/31" })).toThrow(/leaves no address/);
  });
});

describe("network allocator", () => {
  it("gives one owner the same address on every request (idempotent)", async () => {
    const a = new NetworkAllocator("n", { cidr: "10.1.0.0/24" }, new MemoryLeaseStore());
    const first = await a.allocate({ owner: "cni/c1/eth0" });
    const again = await a.allocate({ owner: "cni/c1/eth0" });
    expect(first.created).toBe(true);
    expect(again).toEqual({ lease: first.lease, created: false });
  });

  it("never gives an address twice under concurrent requests, retries included", async () => {
    const store = new MemoryLeaseStore();
    const a = new NetworkAllocator("n", { cidr: "10.2.0.0/22" }, store);
    const owners = Array.from({ length: 500 }, (_, i) => `o${i % 400}`);
    const got = await Promise.all(owners.map((owner) => a.allocate({ owner })));
    const byOwner = new Map<string, string>();
    for (const g of got) {
      const known = byOwner.get(g.lease.owner);
      if (known) expect(g.lease.address).toBe(known);
      byOwner.set(g.lease.owner, g.lease.address);
    }
    expect(new Set(byOwner.values()).size).toBe(400);
  });

  it("two allocators on one store (two replicas) never share an address", async () => {
    const store = new MemoryLeaseStore();
    const a = new NetworkAllocator("n", { cidr: "10.3.0.0/24" }, store);
    const b = new NetworkAllocator("n", { cidr: "10.3.0.0/24" }, store);
    const got = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).allocate({ owner: `o${i}` })),
    );
    expect(new Set(got.map((g) => g.lease.address)).size).toBe(200);
  });

  it("says the network is exhausted, then recovers when an address is released", async () => {
    const a = new NetworkAllocator("small", { cidr: "10.4.0.0/29" }, new MemoryLeaseStore());
    for (let i = 0; i < 5; i++) await a.allocate({ owner: `o${i}` });
    await expect(a.allocate({ owner: "o5" })).rejects.toMatchObject({
      code: "CATENA_UNAVAILABLE",
      message: expect.stringMatching(/network small \(10\.4\.0\.0\/29\) is exhausted: all 5/),
    });
    const released = await a.release("o2");
    expect(released?.address).toBe("10.4.0.4");
    expect((await a.allocate({ owner: "o5" })).lease.address).toBe("10.4.0.4");
  });

  it("claims a fixed address, and refuses one another owner holds", async () => {
    const a = new NetworkAllocator("n", { cidr: "10.5.0.0/24" }, new MemoryLeaseStore());
    await a.allocate({ owner: "w1", address: "10.5.0.40", workload: "w1" });
    await expect(a.allocate({ owner: "w2", address: "10.5.0.40" })).rejects.toMatchObject({
      code: "CATENA_CONFLICT",
      message: expect.stringMatching(/held by Workload w1/),
    });
    await expect(a.allocate({ owner: "w3", address: "10.5.0.1" })).rejects.toMatchObject({
      code: "CATENA_INVALID",
    });
  });

  it("adopts an address whose owner key was never written (crash between the two creates)", async () => {
    const store = new MemoryLeaseStore();
    await store.create("ipam.n.addr.10.6.0.7", { owner: "o1", at: "then" });
    const a = new NetworkAllocator("n", { cidr: "10.6.0.0/24" }, store);
    expect((await a.allocate({ owner: "o1" })).lease.address).toBe("10.6.0.7");
    expect((await a.release("o1"))?.address).toBe("10.6.0.7");
    expect(await a.leases()).toEqual([]);
  });

  it("release of an owner that holds nothing is a no-op", async () => {
    const a = new NetworkAllocator("n", { cidr: "10.7.0.0/24" }, new MemoryLeaseStore());
    expect(await a.release("nobody")).toBeUndefined();
  });

  it("file store: leases survive reopening, and a reopened allocator continues without duplicates", async () => {
    const dir = await mkdtemp(join(tmpdir(), "catena-ipam-"));
    dirs.push(dir);
    const s1 = await FileLeaseStore.open<LeaseValue>(dir);
    const a1 = new NetworkAllocator("n", { cidr: "10.8.0.0/24" }, s1);
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => a1.allocate({ owner: `o${i}` })));
    await a1.release("o7");
    await s1.close();
    const s2 = await FileLeaseStore.open<LeaseValue>(dir);
    const a2 = new NetworkAllocator("n", { cidr: "10.8.0.0/24" }, s2);
    expect((await a2.leases()).length).toBe(49);
    expect((await a2.allocate({ owner: "o3" })).lease.address).toBe(first[3]?.lease.address);
    const more = await Promise.all(Array.from({ length: 50 }, (_, i) => a2.allocate({ owner: `p${i}` })));
    const all = (await a2.leases()).map((l) => l.address);
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(99);
    expect(more.every((m) => m.created)).toBe(true);
    await s2.close();
  });
});
