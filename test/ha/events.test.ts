// One event per change with two replicas running: both control servers publish every store change
// (each compiles and reacts on its own), with the change's id as Nats-Msg-Id; the revision in the id
// is the KV revision, the same on both, so the stream's duplicate window keeps one copy.
import { createServer } from "node:net";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { streamName } from "../../services/control/events/subject.js";
import type { KvStore } from "../../services/control/store/kv-store.js";
import type { Change } from "../../services/control/store/store.js";
import { getJson, post, type TestControl } from "../support/control.js";
import { SHARED_NATS_URL } from "../support/nats.js";
import { network, type Replicas, service, startReplicas, waitUntil } from "./replicas.js";

let replicas: Replicas;

beforeAll(async () => {
  replicas = await startReplicas(2);
});

afterAll(async () => {
  await replicas?.stop();
});

const RESOURCE_EVENT =
  /^dev\.catena\.(network|service|servicechain|servicefunction|workload|networkpolicy)\./;

async function storedEvents(root: string): Promise<{ id: string; type: string; msgId: string }[]> {
  const nc = await connect({ servers: SHARED_NATS_URL });
  try {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(streamName(root), { deliver_policy: DeliverPolicy.All });
    const out: { id: string; type: string; msgId: string }[] = [];
    const info = await consumer.info(true);
    if (info.num_pending === 0) return out;
    const messages = await consumer.consume();
    for await (const m of messages) {
      const event = m.json<{ id: string; type: string }>();
      out.push({ id: event.id, type: event.type, msgId: m.headers?.get("Nats-Msg-Id") ?? "" });
      if (m.info.pending === 0) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe("events with two replicas", () => {
  it("one event per change: the stream holds each change once, though both replicas published it", async () => {
    const [a, b] = replicas.servers as [TestControl, TestControl];
    // Every change, as one replica's store sees it: the ids the events must carry.
    const changes: Change[] = [];
    const watch = (a.server.store as KvStore).watch();
    const collecting = (async () => {
      for await (const c of watch) changes.push(c);
    })();

    expect((await post(a.url, "/v1/apply", { items: [network("edge", "127.72.0.0/16")] })).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      const target = i % 2 === 0 ? a : b;
      const items = [service(`svc-${i}`, "edge", [{ address: "127.0.0.1", port: 9000 + i }])];
      expect((await post(target.url, "/v1/apply", { items })).status).toBe(200);
    }
    for (let i = 0; i < 4; i++) {
      const target = i % 2 === 0 ? b : a;
      const items = [service(`svc-${i}`, "edge", [{ address: "127.0.0.2", port: 9000 + i }])];
      expect((await post(target.url, "/v1/apply", { items })).status).toBe(200);
    }
    const removed = await post(b.url, "/v1/delete", {
      items: [{ apiVersion: "catena.dev/v1alpha1", kind: "Service", metadata: { name: "svc-9" } }],
    });
    expect(removed.status).toBe(200);

    // Quiet: every object's status reconciled, every replica's events stored.
    await waitUntil(async () => {
      const all = await a.server.store.list();
      return all.every((o) => o.status?.observedGeneration === o.metadata.generation) || undefined;
    }, "status to settle");
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all([a.server.events.flush(), b.server.events.flush()]);
    watch.close();
    await collecting;

    const expected = changes.map((c) => `${c.object.kind}/${c.object.metadata.name}/${c.revision}/${c.type}`);
    expect(new Set(expected).size).toBe(expected.length);
    expect(changes.filter((c) => c.type === "created")).toHaveLength(11);

    const stored = (await storedEvents(replicas.root)).filter((e) => RESOURCE_EVENT.test(e.type));
    const ids = stored.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // no change twice
    expect([...ids].sort()).toEqual([...expected].sort()); // and none missing
    expect(stored.every((e) => e.msgId === e.id)).toBe(true);

    // Both replicas did publish every change: the duplicate window, not luck, made it one.
    for (const server of [a, b]) {
      const own = new Set(server.server.events.recent().map((e) => e.id));
      expect(expected.filter((id) => !own.has(id))).toEqual([]);
    }
  });

  it("a health transition is announced once, though every replica probes", async () => {
    const [a, b] = replicas.servers as [TestControl, TestControl];
    const up = createServer((sock) => sock.destroy());
    await new Promise<void>((r) => up.listen(0, "127.0.0.1", () => r()));
    const upPort = (up.address() as { port: number }).port;
    const downPort = await freePort("127.0.0.1");
    try {
      const plain = service("checked", "edge", [
        { address: "127.0.0.1", port: upPort },
        { address: "127.0.0.1", port: downPort },
      ]);
      const checked = {
        ...plain,
        spec: { ...plain.spec, healthCheck: { intervalMs: 200, timeoutMs: 200, unhealthyThreshold: 1 } },
      };
      expect((await post(a.url, "/v1/apply", { items: [checked] })).status).toBe(200);
      // Both replicas probed: each serves the same health.
      for (const server of [a, b]) {
        await waitUntil(async () => {
          const body = (await getJson(server.url, "/v1/services/checked/endpoints")).body as {
            endpoints?: { port: number; healthy: boolean }[];
          };
          const states = (body.endpoints ?? []).map((e) => `${e.port === upPort}:${e.healthy}`).sort();
          return states.join() === "false:false,true:true" || undefined;
        }, "both endpoints' health on each replica");
      }
      await new Promise((r) => setTimeout(r, 500));
      await Promise.all([a.server.events.flush(), b.server.events.flush()]);
      const health = (await storedEvents(replicas.root)).filter(
        (e) => e.type === "dev.catena.endpoint.health-changed",
      );
      expect(health).toHaveLength(2); // one per endpoint, not one per endpoint per replica
    } finally {
      up.close();
    }
  });
});
