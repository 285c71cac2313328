// Kill one node of a three-node NATS cluster during applies: no acknowledged change is lost. The
// node killed (SIGKILL) is both the state bucket's stream leader and the node both control servers
// are connected to, the worst case: they must reconnect elsewhere and a new leader be elected while
// commits are in flight. An apply that was answered 200 must be in the state afterwards.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { openBucket, stateBucketName } from "../../services/control/store/kv-cas.js";
import { type KvStore, openKvStore } from "../../services/control/store/kv-store.js";
import { post, startTestControl, type TestControl } from "../support/control.js";
import { uniqueRoot } from "../support/nats.js";
import { startNatsCluster, type TestNatsCluster } from "../support/nats-cluster.js";
import { network, type Replicas, service, startReplicas, waitUntil } from "./replicas.js";

let cluster: TestNatsCluster;
let replicas: Replicas | undefined;
let killed = -1;
const root = uniqueRoot();

beforeAll(async () => {
  cluster = await startNatsCluster();
}, 60_000);

afterAll(async () => {
  await replicas?.stop();
  await cluster?.dispose();
}, 60_000);

describe("state on a three-node NATS cluster", () => {
  it("kill one node during applies: no acknowledged change lost", async () => {
    // Create the bucket (three replicas on a cluster) to learn its leader before the servers start.
    const nc = await connect({ servers: cluster.nodes.map((n) => n.url) });
    let leader: string | undefined;
    try {
      await openBucket(nc, stateBucketName(root));
      const info = await (await jetstreamManager(nc)).streams.info(`KV_${stateBucketName(root)}`);
      expect(info.config.num_replicas).toBe(3);
      leader = info.cluster?.leader;
    } finally {
      await nc.close();
    }
    killed = cluster.nodes.findIndex((n) => n.name === leader);
    expect(killed).toBeGreaterThanOrEqual(0);
    const natsUrl = cluster.nodes[killed]?.url as string;
    replicas = await startReplicas(2, { natsUrl, root });
    const [a, b] = replicas.servers as [TestControl, TestControl];
    expect((await post(a.url, "/v1/apply", { items: [network("edge", "127.75.0.0/16")] })).status).toBe(200);

    const acked = new Map<string, number>();
    const refused: string[] = [];
    let attempts = 0;
    const PER_SERVER = 150;
    const loop = async (server: TestControl, tag: string) => {
      for (let i = 0; i < PER_SERVER; i++) {
        const name = `${tag}-${i}`;
        const port = 1000 + i;
        attempts++;
        try {
          const r = await post(server.url, "/v1/apply", {
            items: [service(name, "edge", [{ address: "127.0.0.1", port }])],
          });
          if (r.status === 200) acked.set(name, port);
          else refused.push(`${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        } catch (err) {
          refused.push(`${name}: ${String(err)}`);
        }
      }
    };
    const running = Promise.all([loop(a, "a"), loop(b, "b")]);
    await waitUntil(() => acked.size >= 60 || undefined, "applies before the kill", 30_000);
    const ackedBeforeKill = acked.size;
    await cluster.stop(killed, "SIGKILL");
    await running;
    // Applies went on after the kill (served by the two surviving nodes).
    expect(acked.size).toBeGreaterThan(ackedBeforeKill + 100);
    expect(attempts).toBe(2 * PER_SERVER);

    // Every acknowledged apply is in the state: on both servers, and in a store opened afresh on a
    // surviving node.
    const survivors = cluster.nodes.filter((_, i) => i !== killed).map((n) => n.url);
    const fresh = await openKvStore({ servers: survivors, root });
    try {
      for (const store of [a.server.store as KvStore, b.server.store as KvStore, fresh]) {
        await store.sync(30_000);
        const lost: string[] = [];
        for (const [name, port] of acked) {
          const object = await store.get("Service", name);
          const endpoints = (object?.spec as { endpoints?: { port: number }[] } | undefined)?.endpoints;
          if (endpoints?.[0]?.port !== port) lost.push(name);
        }
        expect(lost).toEqual([]);
      }
      // The servers agree with each other object for object.
      expect(await a.server.store.list()).toEqual(await fresh.list());
    } finally {
      await fresh.close();
    }
    // The killed node comes back and catches up; the state is whole on it too.
    await cluster.start(killed);
    await cluster.ready();
    // A restarted node serves reads while its replica is still catching up: "catches up" is
    // eventual, so poll (bounded) until its view holds every acknowledged apply.
    const deadline = Date.now() + 30_000;
    let seen = 0;
    for (;;) {
      const back = await openKvStore({ servers: [cluster.nodes[killed]?.url as string], root });
      try {
        await back.sync(30_000);
        seen = (await back.list("Service")).length;
      } finally {
        await back.close();
      }
      if (seen >= acked.size || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(seen).toBeGreaterThanOrEqual(acked.size);
    console.info(
      `cluster kill: ${acked.size} applies acknowledged (${ackedBeforeKill} before the kill), ${refused.length} refused`,
    );
  }, 120_000);

  it("a control server given a comma-separated CATENA_NATS_URL (a dead address first, then the nodes) works", async () => {
    const second = uniqueRoot();
    const natsUrl = `nats://127.0.0.1:${await freePort()},${cluster.url}`;
    const one = await startTestControl({ natsUrl, root: second, store: "nats-kv" });
    try {
      const applied = await post(one.url, "/v1/apply", { items: [network("edge", "127.75.0.0/16")] });
      expect(applied.status).toBe(200);
      // Events went through the same list to the stream.
      await one.server.events.flush(15_000);
      expect(one.server.events.stats().published).toBeGreaterThan(0);
    } finally {
      await one.stop();
    }
  }, 60_000);
});
