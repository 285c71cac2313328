// IPAM with several control servers: allocations are compare-and-swap creates on one KV key per
// address, so replicas allocating at once never hand out one address twice. Each "replica" here is
// an allocator on its own NATS connection, as two control servers would have.
import { jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isCatenaError } from "../../services/control/errors.js";
import { KvAllocator } from "../../services/control/ipam/kv-allocator.js";
import { cidrContains, parseCidr, parseIp } from "../../services/control/model/ip.js";
import { openBucket } from "../../services/control/store/kv-cas.js";
import { SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";

const bucket = `${uniqueRoot().toUpperCase()}_IPAM`;
const connections: NatsConnection[] = [];
const buckets: KV[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const nc = await connect({ servers: SHARED_NATS_URL });
    connections.push(nc);
    buckets.push(await openBucket(nc, bucket));
  }
});

afterAll(async () => {
  const nc = connections[0];
  if (nc) await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`).catch(() => false);
  for (const c of connections) await c.close();
});

const replicas = (network: string, cidr: string) =>
  buckets.map((kv) => new KvAllocator({ kv, network, cidr })) as [KvAllocator, KvAllocator];

describe("IPAM on KV with two replicas", () => {
  it("1,000 concurrent IP allocations spread over two replicas: no duplicates", async () => {
    const [a, b] = replicas("edge", "127.80.0.0/16");
    const leases = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? a : b).allocate(`owner-${i}`)),
    );
    const addresses = leases.map((l) => l.address);
    expect(new Set(addresses).size).toBe(1000);
    const cidr = parseCidr("127.80.0.0/16");
    if (!cidr.ok) throw new Error(cidr.message);
    for (const address of addresses) {
      const ip = parseIp(address);
      expect(ip && cidrContains(cidr.value, ip)).toBe(true);
      expect(["127.80.0.0", "127.80.0.1", "127.80.255.255"]).not.toContain(address);
    }
    // What the bucket holds agrees: one lease per address, each with the owner that was told it.
    const stored = await a.leases();
    expect(stored).toHaveLength(1000);
    const told = new Map(leases.map((l) => [l.address, l.owner]));
    for (const lease of stored) expect(lease.owner).toBe(told.get(lease.address));
    // The lowest addresses went first: no gaps beyond what 1,000 leases need.
    expect(stored.at(-1)?.address).toBe("127.80.3.233");
  });

  it("a released address is handed out again, also by the other replica", async () => {
    const [a, b] = replicas("small", "127.81.0.0/29"); // .2 to .6 allocatable
    const leases = await Promise.all(Array.from({ length: 5 }, (_, i) => (i % 2 ? a : b).allocate(`o-${i}`)));
    expect(leases.map((l) => l.address).sort()).toEqual([
      "127.81.0.2",
      "127.81.0.3",
      "127.81.0.4",
      "127.81.0.5",
      "127.81.0.6",
    ]);
    const full = await a.allocate("late").catch((err: unknown) => err);
    expect(isCatenaError(full, ErrorCode.Unavailable)).toBe(true);
    const held = leases.find((l) => l.address === "127.81.0.4");
    expect(await b.release("127.81.0.4", "someone-else")).toBe(false);
    expect(await b.release("127.81.0.4", held?.owner)).toBe(true);
    // Replica a thought .4 taken; finding the network full, it looks again and takes it.
    expect((await a.allocate("late")).address).toBe("127.81.0.4");
  });

  it("claims: the same owner gets its lease back, another owner gets Conflict", async () => {
    const [a, b] = replicas("claims", "127.82.0.0/24");
    const first = await a.claim("127.82.0.40", "vm-1");
    expect(await b.claim("127.82.0.40", "vm-1")).toEqual(first);
    const taken = await b.claim("127.82.0.40", "vm-2").catch((err: unknown) => err);
    expect(isCatenaError(taken, ErrorCode.Conflict)).toBe(true);
    const gateway = await a.claim("127.82.0.1", "vm-3").catch((err: unknown) => err);
    expect(isCatenaError(gateway, ErrorCode.Invalid)).toBe(true);
    // Allocation skips the claimed address.
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => b.allocate(`x-${i}`)));
    expect(many.map((l) => l.address)).not.toContain("127.82.0.40");
  });
});
