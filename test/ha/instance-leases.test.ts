// The instance registry's sharing (registry/shared-instances.ts) on a real bucket, with short
// intervals: an instance moving from one server to another stays listed (the old server's
// withdrawal does not delete the new server's entry), and a server that dies without a word has
// its instances dropped by the others within ttl + sweep, its keys deleted; a server taken for dead
// while alive puts its keys back.
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import type { FunctionInstance } from "../../services/control/registry/instances.js";
import { SharedInstances } from "../../services/control/registry/shared-instances.js";
import { openBucket } from "../../services/control/store/kv-cas.js";
import { sharedBucketName } from "../../services/control/store/kv-shared.js";
import { SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import { waitUntil } from "./replicas.js";

const bucket = sharedBucketName(uniqueRoot(), "INSTANCES");
const conns: NatsConnection[] = [];
const servers: SharedInstances[] = [];
const TIMING = { renewMs: 100, ttlMs: 500, sweepMs: 100, publishDelayMs: 5 };
const silent = { warn: () => {} };

afterAll(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  const nc = await connect({ servers: SHARED_NATS_URL });
  await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`).catch(() => false);
  await nc.close();
  for (const c of conns) await c.close().catch(() => undefined);
});

/** A control server's side of the sharing, with its connected instances in a map. */
async function server(serverId: string) {
  const nc = await connect({ servers: SHARED_NATS_URL });
  conns.push(nc);
  const kv = await openBucket(nc, bucket, { replicas: 1 });
  const shared = new SharedInstances({
    nc,
    jsm: await jetstreamManager(nc),
    kv,
    bucket,
    logger: silent,
    serverId,
    ...TIMING,
  });
  const local = new Map<string, FunctionInstance>();
  const remote = new Map<string, FunctionInstance>();
  shared.bind({
    local: (id) => {
      const instance = local.get(id);
      return instance && { instance, draining: false };
    },
    localIds: () => local.keys(),
    statusOf: () => undefined,
    onRemote: (instance, change) => {
      if (change === "disconnected") remote.delete(instance.id);
      else remote.set(instance.id, instance);
    },
    onStatus: () => {},
  });
  await shared.start();
  servers.push(shared);
  return {
    nc,
    shared,
    remote,
    connect(id: string) {
      local.set(id, { id, function: "fw", type: "firewall", connectedAt: new Date().toISOString() });
      shared.publish(id, true);
    },
    disconnect(id: string) {
      local.delete(id);
      shared.withdraw(id);
    },
  };
}

async function keys(): Promise<string[]> {
  const nc = await connect({ servers: SHARED_NATS_URL });
  try {
    const out: string[] = [];
    for await (const k of await (await new Kvm(nc).open(bucket)).keys()) out.push(k);
    return out.sort();
  } finally {
    await nc.close();
  }
}

describe("shared instances", () => {
  it("an instance that moves stays listed; a dead server's instances go within ttl + sweep", async () => {
    const s1 = await server("s1");
    const s2 = await server("s2");
    s1.connect("i1");
    await waitUntil(() => s2.remote.has("i1") || undefined, "s2 to see i1");

    // i1 reconnects to s2, then s1 notices its stream closed: the entry is s2's and stays.
    s2.connect("i1");
    await waitUntil(() => s1.remote.has("i1") || undefined, "s1 to see i1 on s2");
    expect(s2.remote.has("i1")).toBe(false);
    s1.disconnect("i1");
    await new Promise((r) => setTimeout(r, 300));
    expect(s1.remote.has("i1")).toBe(true);
    expect(await keys()).toContain("instance.i1");

    // s2 dies without a word (its connection is cut; no withdrawal, no heartbeat).
    s2.connect("i2");
    await waitUntil(() => s1.remote.has("i2") || undefined, "s1 to see i2");
    await s2.nc.close();
    const cut = Date.now();
    await waitUntil(
      () => (!s1.remote.has("i1") && !s1.remote.has("i2")) || undefined,
      "s2's instances to go",
      5000,
    );
    const took = Date.now() - cut;
    expect(took).toBeLessThanOrEqual(s1.shared.boundMs + 300);
    expect(took).toBeGreaterThanOrEqual(TIMING.ttlMs - TIMING.renewMs);
    // Their keys and s2's heartbeat are deleted; s1's heartbeat stays.
    await waitUntil(
      async () => ((await keys()).join() === "server.s1" ? true : undefined),
      "s2's keys to be deleted",
    );

    // s1 taken for dead while alive (a pause, a partition: another server deleted its keys): it
    // puts its heartbeat and instances back.
    s1.connect("i3");
    await waitUntil(async () => ((await keys()).includes("instance.i3") ? true : undefined), "i3's key");
    const nc = await connect({ servers: SHARED_NATS_URL });
    try {
      const kv = await new Kvm(nc).open(bucket);
      await kv.delete("instance.i3");
      await kv.delete("server.s1");
    } finally {
      await nc.close();
    }
    await waitUntil(
      async () => ((await keys()).join() === "instance.i3,server.s1" ? true : undefined),
      "s1 to put its keys back",
      3000,
    );
  }, 30_000);
});
