// The allocator over a real JetStream KV bucket, two replicas (connections) at once: the same rules
// and the same no-duplicate guarantee as over the embedded store.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHARED_NATS_URL, uniqueRoot } from "../../../test/support/nats.js";
import { KvCas, openBucket } from "../store/kv-cas.js";
import { type LeaseValue, NetworkAllocator } from "./allocator.js";
import { ipamBucketName, kvLeaseStore } from "./kv-lease-store.js";

const bucket = ipamBucketName(uniqueRoot());
const conns: NatsConnection[] = [];

async function replica(): Promise<NetworkAllocator> {
  const nc = await connect({ servers: SHARED_NATS_URL });
  conns.push(nc);
  const kv = await openBucket(nc, bucket, { replicas: 1 });
  return new NetworkAllocator(
    "kvnet",
    { cidr: "10.20.0.0/24", exclude: ["10.20.0.128/25"] },
    kvLeaseStore(new KvCas<LeaseValue>(kv)),
  );
}

let a: NetworkAllocator;
let b: NetworkAllocator;

beforeAll(async () => {
  a = await replica();
  b = await replica();
});

afterAll(async () => {
  const first = conns[0];
  if (first) await (await jetstreamManager(first)).streams.delete(`KV_${bucket}`).catch(() => false);
  for (const nc of conns) await nc.close();
});

describe("allocator over a JetStream KV bucket", () => {
  it("two replicas allocating at once never hand out an address twice, and honour exclude", async () => {
    const got = await Promise.all(
      Array.from({ length: 120 }, (_, i) => (i % 2 ? a : b).allocate({ owner: `cni/c${i}/eth0`, node: "n" })),
    );
    const addresses = got.map((g) => g.lease.address);
    expect(new Set(addresses).size).toBe(120);
    for (const address of addresses) {
      const last = Number(address.split(".")[3]);
      expect(last).toBeGreaterThanOrEqual(2);
      expect(last).toBeLessThan(128);
    }
  });

  it("the same owner through the other replica gets the same address; release is seen by both", async () => {
    const viaA = await a.allocate({ owner: "cni/c5/eth0" });
    const viaB = await b.allocate({ owner: "cni/c5/eth0" });
    expect(viaB.lease.address).toBe(viaA.lease.address);
    expect(viaB.created).toBe(false);
    expect((await b.release("cni/c5/eth0"))?.address).toBe(viaA.lease.address);
    expect(await a.lookup("cni/c5/eth0")).toBeUndefined();
  });

  it("says the network is exhausted when every allocatable address is leased", async () => {
    // .2 to .127: 126 addresses; 119 are held now.
    for (let i = 0; i < 7; i++) await a.allocate({ owner: `cni/x${i}/eth0` });
    await expect(b.allocate({ owner: "cni/y/eth0" })).rejects.toMatchObject({ code: "CATENA_UNAVAILABLE" });
  });
});
