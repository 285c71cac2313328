// Function instances shared across control servers (`<ROOT>_INSTANCES`): a two-hop chain whose hop-0
// instance is connected to server A and whose hop-1 instance is connected to server B. Each server
// compiles the whole chain (hop 0's cluster holds hop 1's instance, hop 1's listener admits hop 0's),
// so bytes flow end to end; both derive the chain's status from the same shared ACK state, so it is
// Ready and stays put. Then B is SIGKILLed: hop 1's instance fails over to A, traffic flows again,
// and an instance connected to B alone (no failover) vanishes from A within the bound.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { AdsClient, listenerType } from "../../xds/index.js";
import { type Backend, freePort, roundTrip, startBackend } from "../functions/support/harness.js";
import { getJson, post } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import { type ReplicaProcess, spawnReplica, waitUntil } from "./replicas.js";

const root = uniqueRoot();
const FW_ADDRESS = "127.75.0.10";
const QOS_ADDRESS = "127.75.0.11";
const SPARE_ADDRESS = "127.75.0.12";
/** Heartbeat ttl (8 s) + sweep (1 s): the default bound; some slack for a loaded machine. */
const BOUND_MS = 9_000;
let a: ReplicaProcess;
let b: ReplicaProcess;
let backend: Backend;
let port: number;
const hosts: FunctionHost[] = [];
const clients: AdsClient[] = [];

const kinds = (spec: { kind: string; name: string; spec: unknown }[]) => ({
  items: spec.map((o) => ({
    apiVersion: "catena.dev/v1alpha1",
    kind: o.kind,
    metadata: { name: o.name },
    spec: o.spec,
  })),
});

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Chain {
  metadata: { resourceVersion: string };
  status?: { conditions?: Condition[] };
}

async function chain(url: string): Promise<Chain> {
  return (await getJson(url, "/v1/servicechains/web-chain")).body as Chain;
}

const ready = (c: Chain) => c.status?.conditions?.find((x) => x.type === "Ready");

async function connectedIds(url: string): Promise<string[]> {
  const body = (await getJson(url, "/v1/xds/nodes")).body as { items: { id: string; connected: boolean }[] };
  return body.items.filter((n) => n.connected).map((n) => n.id);
}

async function instanceIds(url: string): Promise<string[]> {
  const body = (await getJson(url, "/v1/instances")).body as { items: { id: string }[] };
  return body.items.map((i) => i.id);
}

async function host(type: string, fn: string, nodeId: string, address: string, servers: string[]) {
  const h = await startTestHost({ type, functionName: fn, nodeId, xdsServers: servers, address });
  hosts.push(h);
  return h;
}

beforeAll(async () => {
  port = await freePort(FW_ADDRESS);
  backend = await startBackend(0, "127.0.0.1");
  a = await spawnReplica(root);
  b = await spawnReplica(root);
  const applied = await post(
    a.url,
    "/v1/apply",
    kinds([
      { kind: "Network", name: "edge", spec: { cidr: "127.75.0.0/16" } },
      {
        kind: "Service",
        name: "web",
        spec: {
          network: "edge",
          ports: [{ name: "http", port }],
          endpoints: [{ address: "127.0.0.1", port: backend.port }],
        },
      },
      { kind: "ServiceFunction", name: "edge-fw", spec: { type: "firewall", replicas: 1 } },
      { kind: "ServiceFunction", name: "edge-qos", spec: { type: "qos", replicas: 1 } },
      { kind: "ServiceFunction", name: "spare-fw", spec: { type: "firewall", replicas: 1 } },
      {
        kind: "ServiceChain",
        name: "web-chain",
        spec: {
          service: "web",
          ingress: { port },
          hops: [
            {
              function: "edge-fw",
              config: { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [port] }] },
            },
            { function: "edge-qos", config: { maxConnections: 100 } },
          ],
        },
      },
    ]),
  );
  expect(applied.status, JSON.stringify(applied.body)).toBe(200);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const h of hosts) h.destroy();
  await Promise.all(hosts.map((h) => h.close()));
  await backend?.close();
  await a?.kill();
  await b?.kill();
  await deleteEventStream(SHARED_NATS_URL, root).catch(() => undefined);
  await deleteStateBucket(SHARED_NATS_URL, root).catch(() => undefined);
});

describe("function instances shared across control servers", () => {
  it("a chain split over two servers carries traffic, its status is Ready and stable; B dies: failover, and B's stranded instance vanishes within the bound", async () => {
    // hop 0 on A only; hop 1 on B first (A as its fallback); a spare instance on B only.
    const fw = await host("firewall", "edge-fw", "fw-0", FW_ADDRESS, [a.xdsAddr]);
    const qos = await host("qos", "edge-qos", "qos-0", QOS_ADDRESS, [b.xdsAddr, a.xdsAddr]);
    const spare = new AdsClient({
      servers: [b.xdsAddr],
      node: { id: "spare-0", cluster: "spare-fw", metadata: { type: "firewall", address: SPARE_ADDRESS } },
      backoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.1 },
    });
    clients.push(spare);
    spare.watch(listenerType, "*");
    await Promise.all([fw.whenReady(15_000), qos.whenReady(15_000)]);
    expect(await connectedIds(a.url)).toEqual(["fw-0"]);
    expect((await connectedIds(b.url)).sort()).toEqual(["qos-0", "spare-0"]);
    // Each server lists every instance, its own and the other's.
    for (const url of [a.url, b.url]) {
      await waitUntil(
        async () => ((await instanceIds(url)).join() === "fw-0,qos-0,spare-0" ? true : undefined),
        `every instance listed by ${url}`,
      );
    }

    // Both servers agree the chain is Ready (every hop's instance ACKed what both compiled).
    const readyOn = async (url: string) => {
      const c = await chain(url);
      return ready(c)?.status === "True" ? c : undefined;
    };
    await waitUntil(() => readyOn(a.url), "the chain Ready on A", 15_000);
    await waitUntil(() => readyOn(b.url), "the chain Ready on B", 15_000);

    const payload = Buffer.from("through two hops on two servers");
    const trip = await waitUntil(
      () => roundTrip(FW_ADDRESS, port, payload).catch(() => undefined),
      "a round trip through both hops",
    );
    expect(trip.banner).toBe("backend-0\n");
    expect(trip.echo.toString()).toBe(payload.toString());

    // Stable: no status write for three seconds (both replicas derive the same status), on either.
    const before = await chain(a.url);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      for (const url of [a.url, b.url]) {
        const c = await chain(url);
        seen.add(`${c.metadata.resourceVersion} ${JSON.stringify(c.status?.conditions)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen]).toHaveLength(1);
    expect(ready(before)).toMatchObject({ status: "True", reason: "Ready" });
    for (let i = 0; i < 5; i++)
      expect((await roundTrip(FW_ADDRESS, port, payload)).echo.toString()).toBe(payload.toString());

    // B dies: qos-0 fails over to A; spare-0 has nowhere to go.
    await b.kill("SIGKILL");
    const killedAt = Date.now();
    await waitUntil(
      async () => ((await connectedIds(a.url)).includes("qos-0") ? true : undefined),
      "qos-0 to fail over to A",
      15_000,
    );
    await waitUntil(
      () => roundTrip(FW_ADDRESS, port, payload).catch(() => undefined),
      "a round trip after the failover",
    );
    await waitUntil(
      async () => (!(await instanceIds(a.url)).includes("spare-0") ? true : undefined),
      "B's stranded instance to vanish from A",
      BOUND_MS + 5_000,
    );
    const gone = Date.now() - killedAt;
    expect(gone).toBeLessThanOrEqual(BOUND_MS + 2_000);
    expect(await instanceIds(a.url)).toEqual(["fw-0", "qos-0"]);
    await waitUntil(() => readyOn(a.url), "the chain Ready on A after the failover", 15_000);
  }, 90_000);
});
