// Self-registrations shared across control servers (`<ROOT>_ENDPOINTS`): a workload registered on A
// is served by B (lookup, and so EDS and DNS, which read the same compiled endpoints), renewed
// through B, outlives a restart of A, and still expires when the heartbeats stop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sharedBucketName } from "../../services/control/store/kv-shared.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import { network, type Replicas, service, startReplicas, waitUntil } from "./replicas.js";

let replicas: Replicas;
let a: TestControl;
let b: TestControl;
let a2: TestControl | undefined;

beforeAll(async () => {
  replicas = await startReplicas(2);
  [a, b] = replicas.servers as [TestControl, TestControl];
});

afterAll(async () => {
  await a2?.stop();
  await replicas?.stop();
});

interface Lookup {
  endpoints: { address: string; port: number; source: string; id?: string }[];
}

async function registered(url: string): Promise<string[]> {
  const r = await getJson(url, "/v1/services/web/endpoints");
  if (r.status !== 200) return [];
  return (r.body as Lookup).endpoints
    .filter((e) => e.source === "registered")
    .map((e) => `${e.address}:${e.port}`);
}

const send = async (url: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(new URL(path, url), {
    method,
    ...(body !== undefined && {
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe("self-registrations with two control servers", () => {
  it("registered on A, served and renewed by B, kept over A's restart, expired on time", async () => {
    const applied = await post(a.url, "/v1/apply", {
      items: [network("edge", "127.76.0.0/16"), service("web", "edge", [])],
    });
    expect(applied.status).toBe(200);
    await waitUntil(() => b.server.store.get("Service", "web"), "the Service on B");

    const t0 = performance.now();
    const reg = await send(a.url, "POST", "/v1/services/web/endpoints", {
      address: "127.76.0.5",
      port: 8080,
      ttlSeconds: 3,
    });
    const registerMs = performance.now() - t0;
    expect(reg.status, JSON.stringify(reg.body)).toBe(201);
    const id = reg.body.id as string;
    await waitUntil(
      async () => ((await registered(b.url)).includes("127.76.0.5:8080") ? true : undefined),
      "B to serve A's registration",
      5_000,
    );
    // The same address and port through B is the same registration.
    const again = await send(b.url, "POST", "/v1/services/web/endpoints", {
      address: "127.76.0.5",
      port: 8080,
      ttlSeconds: 3,
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(id);

    // Heartbeats through either server keep it past its TTL; A restarts meanwhile.
    let beating = true;
    const heartbeats = (async () => {
      let i = 0;
      while (beating) {
        const url = i++ % 2 === 0 ? b.url : (a2?.url ?? b.url);
        const r = await send(url, "PUT", `/v1/services/web/endpoints/${id}`, {});
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const root = a.root;
    await replicas.servers[0]?.stop();
    replicas.servers.shift();
    a2 = await startTestControl({ root, store: "nats-kv", keepNatsState: true });
    // The restarted server knows the registration from the bucket, before any heartbeat reaches it.
    await waitUntil(
      async () => ((await registered(a2?.url as string)).includes("127.76.0.5:8080") ? true : undefined),
      "the restarted A to serve the registration",
      5_000,
    );
    await new Promise((r) => setTimeout(r, 3500)); // past the TTL: only the heartbeats kept it
    expect(await registered(b.url)).toEqual(["127.76.0.5:8080"]);
    beating = false;
    await heartbeats;

    // No more heartbeats: gone from both within TTL plus a sweep, and from the bucket.
    const stopped = Date.now();
    for (const url of [b.url, a2.url]) {
      await waitUntil(
        async () => ((await registered(url)).length === 0 ? true : undefined),
        "the registration to expire",
        6_000,
      );
    }
    expect(Date.now() - stopped).toBeLessThan(3000 + 1500);
    const kv = await import("@nats-io/kv");
    const { connect } = await import("@nats-io/transport-node");
    const nc = await connect({ servers: process.env.CATENA_NATS_URL ?? "nats://127.0.0.1:4222" });
    try {
      const bucket = await new kv.Kvm(nc).open(sharedBucketName(root, "ENDPOINTS"));
      await waitUntil(async () => {
        const keys: string[] = [];
        for await (const k of await bucket.keys()) keys.push(k);
        return keys.length === 0 ? true : undefined;
      }, "the expired key to be deleted");
    } finally {
      await nc.close();
    }

    // Deregistration through one server removes it from the other.
    const r2 = await send(b.url, "POST", "/v1/services/web/endpoints", {
      address: "127.76.0.6",
      port: 8080,
      ttlSeconds: 60,
    });
    await waitUntil(
      async () => ((await registered(a2?.url as string)).includes("127.76.0.6:8080") ? true : undefined),
      "A to serve B's registration",
    );
    const del = await send(a2.url, "DELETE", `/v1/services/web/endpoints/${r2.body.id as string}`);
    expect(del.body.removed).toBe(true);
    await waitUntil(
      async () => ((await registered(b.url)).length === 0 ? true : undefined),
      "B to drop the deregistered endpoint",
    );
    console.log(`register (durable in KV) took ${registerMs.toFixed(1)} ms`);
  }, 60_000);
});
