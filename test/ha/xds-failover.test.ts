// Kill the control server a function instance is connected to: the instance (given both servers'
// xDS addresses) reconnects to the other, whose snapshot of the same state has the same versions
// (content hashes), so its config version is unchanged; the data path keeps carrying traffic.
// The control servers run as processes and are SIGKILLed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { AdsClient, clusterType, endpointType, listenerType, TYPE_URL } from "../../xds/index.js";
import { type Backend, freePort, roundTrip, startBackend } from "../functions/support/harness.js";
import { getJson, post } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import { type ReplicaProcess, spawnReplica, waitUntil } from "./replicas.js";

const root = uniqueRoot();
const FW_ADDRESS = "127.74.0.10";
const PROBE_ADDRESS = "127.74.0.11";
let a: ReplicaProcess;
let b: ReplicaProcess;
let backend: Backend;
let port: number;
let host: FunctionHost | undefined;
const clients: AdsClient[] = [];

function manifest(endpoints: { address: string; port: number }[]) {
  return {
    items: [
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Network",
        metadata: { name: "edge" },
        spec: { cidr: "127.74.0.0/16" },
      },
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Service",
        metadata: { name: "web" },
        spec: { network: "edge", ports: [{ name: "http", port }], endpoints },
      },
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "ServiceFunction",
        metadata: { name: "edge-fw" },
        spec: { type: "firewall", replicas: 2 },
      },
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "ServiceChain",
        metadata: { name: "web-edge" },
        spec: {
          service: "web",
          ingress: { port },
          hops: [
            {
              function: "edge-fw",
              config: { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [port] }] },
            },
          ],
        },
      },
    ],
  };
}

/** An instance of edge-fw made of the bare AdsClient, so the test reads its resources' versions. */
function instance(id: string, address: string, servers: string[]): AdsClient {
  const client = new AdsClient({
    servers,
    node: { id, cluster: "edge-fw", metadata: { type: "firewall", address } },
    backoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.1 },
  });
  client.watch(listenerType, "*");
  client.watch(clusterType, "*");
  client.watch(endpointType, "*");
  clients.push(client);
  return client;
}

/** name@version of everything a client holds. */
function versions(client: AdsClient): string[] {
  return [TYPE_URL.listener, TYPE_URL.cluster, TYPE_URL.endpoint].flatMap((t) =>
    [...client.resources(t).values()].map((r) => `${r.name}@${r.version}`).sort(),
  );
}

beforeAll(async () => {
  port = await freePort(FW_ADDRESS);
  backend = await startBackend(0, "127.0.0.1");
  a = await spawnReplica(root);
  b = await spawnReplica(root);
  const applied = await post(a.url, "/v1/apply", manifest([{ address: "127.0.0.1", port: backend.port }]));
  expect(applied.status, JSON.stringify(applied.body)).toBe(200);
}, 60_000);

afterAll(async () => {
  await host?.close();
  await Promise.all(clients.map((c) => c.close()));
  await backend?.close();
  await a?.kill();
  await b?.kill();
  await deleteEventStream(SHARED_NATS_URL, root).catch(() => undefined);
  await deleteStateBucket(SHARED_NATS_URL, root).catch(() => undefined);
});

describe("xDS failover between control servers", () => {
  it("an instance whose control server is killed reconnects to the other, same versions, traffic flows", async () => {
    // The real firewall host carries traffic; a bare AdsClient instance shows the versions.
    host = await startTestHost({
      type: "firewall",
      functionName: "edge-fw",
      nodeId: "fw-host",
      xdsServers: [a.xdsAddr, b.xdsAddr],
      address: FW_ADDRESS,
    });
    await host.whenReady(15_000);
    const payload = Buffer.from("hello through the chain");
    const first = await roundTrip(FW_ADDRESS, port, payload);
    expect(first.banner).toBe("backend-0\n");
    expect(first.echo.toString()).toBe("hello through the chain");

    const probe = instance("fw-probe", PROBE_ADDRESS, [a.xdsAddr, b.xdsAddr]);
    const before = await waitUntil(() => {
      const v = versions(probe);
      return v.length === 3 ? v : undefined;
    }, "the probe's listener, cluster and assignment");
    expect(probe.state.server).toBe(a.xdsAddr);

    // Server B compiles the same state to the same versions: the same node asking B alone gets them.
    await probe.close();
    clients.pop();
    const onB = instance("fw-probe", PROBE_ADDRESS, [b.xdsAddr]);
    expect(
      await waitUntil(() => (versions(onB).length === 3 ? versions(onB) : undefined), "B's snapshot"),
    ).toEqual(before);
    await onB.close();
    clients.pop();

    const survivor = instance("fw-probe", PROBE_ADDRESS, [a.xdsAddr, b.xdsAddr]);
    await waitUntil(
      () => (versions(survivor).length === 3 || undefined) && survivor.state.state === "connected",
      "reconnect to A",
    );
    expect(survivor.state.server).toBe(a.xdsAddr);

    // Traffic keeps flowing through the kill: round trips run the whole time.
    let stop = false;
    const failures: string[] = [];
    let trips = 0;
    const traffic = (async () => {
      while (!stop) {
        try {
          const r = await roundTrip(FW_ADDRESS, port, payload);
          if (r.echo.toString() !== "hello through the chain") failures.push(`echo ${r.echo.toString()}`);
          trips++;
        } catch (err) {
          failures.push(String(err));
        }
      }
    })();

    await a.kill("SIGKILL");
    await waitUntil(
      () => (survivor.state.server === b.xdsAddr && survivor.state.state === "connected") || undefined,
      "the instance to fail over to B",
      15_000,
    );
    const nodes = async () =>
      ((await getJson(b.url, "/v1/xds/nodes")).body as { items: { id: string; connected: boolean }[] }).items;
    await waitUntil(async () => {
      const ids = (await nodes()).filter((n) => n.connected).map((n) => n.id);
      return (ids.includes("fw-probe") && ids.includes("fw-host")) || undefined;
    }, "both instances on B");
    await new Promise((r) => setTimeout(r, 300));
    expect(versions(survivor)).toEqual(before);

    // B serves changes from here on: a new endpoint reaches the instance through B.
    const second = await startBackend(1, "127.0.0.1");
    try {
      const applied = await post(
        b.url,
        "/v1/apply",
        manifest([
          { address: "127.0.0.1", port: backend.port },
          { address: "127.0.0.1", port: second.port },
        ]),
      );
      expect(applied.status).toBe(200);
      await waitUntil(() => {
        const cla = [...survivor.resources(TYPE_URL.endpoint).values()][0];
        return cla && cla.version !== before.find((v) => v.startsWith(`${cla.name}@`))?.split("@")[1]
          ? cla
          : undefined;
      }, "the new assignment from B");
      stop = true;
      await traffic;
      expect(failures).toEqual([]);
      expect(trips).toBeGreaterThan(0);
    } finally {
      stop = true;
      await traffic;
      await second.close();
    }
  }, 60_000);
});
