// IPAM with several control servers: the one allocator (ipam/allocator.ts) over the KV lease store
// (`<ROOT>_IPAM`, keys `ipam.<network>.addr.<address>` and `ipam.<network>.owner.<owner>`, each taken
// with a compare-and-swap create), so replicas allocating at once never hand out one address twice.
// First each "replica" is an allocator on its own NATS connection, as two control servers have;
// then two real control servers (`--store nats-kv`) through the API.
import { jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, isCatenaError } from "../../services/control/errors.js";
import { type LeaseValue, NetworkAllocator } from "../../services/control/ipam/allocator.js";
import { ipamBucketName, kvLeaseStore } from "../../services/control/ipam/kv-lease-store.js";
import { cidrContains, parseCidr, parseIp } from "../../services/control/model/ip.js";
import { KvCas, openBucket } from "../../services/control/store/kv-cas.js";
import { post } from "../support/control.js";
import { SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import { network, type Replicas, startReplicas, waitUntil } from "./replicas.js";

const bucket = ipamBucketName(uniqueRoot());
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

const replicas = (name: string, cidr: string) =>
  buckets.map((kv) => new NetworkAllocator(name, { cidr }, kvLeaseStore(new KvCas<LeaseValue>(kv)))) as [
    NetworkAllocator,
    NetworkAllocator,
  ];

describe("IPAM on KV with two replicas", () => {
  it("1,000 concurrent IP allocations spread over two replicas: no duplicates", async () => {
    const [a, b] = replicas("edge", "127.80.0.0/16");
    const got = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? a : b).allocate({ owner: `owner-${i}` })),
    );
    const addresses = got.map((g) => g.lease.address);
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
    const told = new Map(got.map((g) => [g.lease.address, g.lease.owner]));
    for (const lease of stored) expect(lease.owner).toBe(told.get(lease.address));
    // The lowest addresses went first: no gaps beyond what 1,000 leases need.
    expect(stored.at(-1)?.address).toBe("127.80.3.233");
  });

  it("a released address is handed out again, also by the other replica", async () => {
    const [a, b] = replicas("small", "127.81.0.0/29"); // .2 to .6 allocatable
    const got = await Promise.all(
      Array.from({ length: 5 }, (_, i) => (i % 2 ? a : b).allocate({ owner: `o-${i}` })),
    );
    expect(got.map((g) => g.lease.address).sort()).toEqual([
      "127.81.0.2",
      "127.81.0.3",
      "127.81.0.4",
      "127.81.0.5",
      "127.81.0.6",
    ]);
    const full = await a.allocate({ owner: "late" }).catch((err: unknown) => err);
    expect(isCatenaError(full, ErrorCode.Unavailable)).toBe(true);
    const held = got.find((g) => g.lease.address === "127.81.0.4")?.lease;
    expect(await b.release("someone-else")).toBeUndefined();
    expect((await b.release(held?.owner as string))?.address).toBe("127.81.0.4");
    // Replica a thought .4 taken; finding the network full, it looks again and takes it.
    expect((await a.allocate({ owner: "late" })).lease.address).toBe("127.81.0.4");
  });

  it("claims: the same owner gets its lease back, another owner gets Conflict", async () => {
    const [a, b] = replicas("claims", "127.82.0.0/24");
    const first = await a.allocate({ owner: "vm-1", address: "127.82.0.40" });
    const again = await b.allocate({ owner: "vm-1", address: "127.82.0.40" });
    expect(again.lease.address).toBe(first.lease.address);
    expect(again.created).toBe(false);
    const taken = await b.allocate({ owner: "vm-2", address: "127.82.0.40" }).catch((err: unknown) => err);
    expect(isCatenaError(taken, ErrorCode.Conflict)).toBe(true);
    const gateway = await a.allocate({ owner: "vm-3", address: "127.82.0.1" }).catch((err: unknown) => err);
    expect(isCatenaError(gateway, ErrorCode.Invalid)).toBe(true);
    // Allocation skips the claimed address.
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => b.allocate({ owner: `x-${i}` })));
    expect(many.map((g) => g.lease.address)).not.toContain("127.82.0.40");
  });
});

describe("IPAM through two control servers (--store nats-kv)", () => {
  let servers: Replicas;

  beforeAll(async () => {
    servers = await startReplicas(2);
  }, 30_000);

  afterAll(async () => {
    await servers?.stop();
  });

  const attach = async (url: string, container: string) => {
    const res = await fetch(new URL(`/v1/ipam/networks/pods/attachments/${container}/eth0`, url), {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ node: "n1" }),
    });
    return { status: res.status, body: (await res.json()) as { address: string } };
  };

  it("attachments through both servers get distinct addresses; a retried ADD through the other gets the same", async () => {
    const [a, b] = servers.servers.map((s) => s.url) as [string, string];
    expect((await post(a, "/v1/apply", network("pods", "127.83.0.0/24"))).status).toBe(200);
    await waitUntil(() => servers.servers[1]?.server.store.get("Network", "pods"), "the Network on B");
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => attach(i % 2 ? a : b, `c${i}`)));
    for (const g of got) expect(g.status, JSON.stringify(g.body)).toBeLessThan(300);
    expect(new Set(got.map((g) => g.body.address)).size).toBe(100);
    const retried = await attach(b, "c0");
    expect(retried.body.address).toBe(got[0]?.body.address);
    // Both read the one lease table.
    const usage = async (url: string) =>
      ((await (await fetch(new URL("/v1/ipam/networks/pods", url))).json()) as { allocated: number })
        .allocated;
    expect(await usage(a)).toBe(100);
    expect(await usage(b)).toBe(100);
  });
});
