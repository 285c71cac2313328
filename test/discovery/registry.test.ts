// The registry over the API, NATS and EDS: registration with a TTL and its expiry (DNS, API and EDS
// within TTL plus one sweep, with events), the blocking watch, health from active checks, lookups over
// NATS from a plain nats.js client, and bad registrations.

import { Resolver } from "node:dns/promises";
import { createServer, type Server } from "node:net";
import { Svcm } from "@nats-io/services";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdsClient, type ClusterLoadAssignmentJson, endpointType } from "../../xds/index.js";
import { getJson, post } from "../support/control.js";
import { SHARED_NATS_URL } from "../support/nats.js";
import { apply, eventually, type Mesh, startMesh } from "./support.js";

interface LookupBody {
  service: string;
  index: number;
  endpoints: {
    address: string;
    port: number;
    healthy: boolean;
    source: string;
    id?: string;
    portName?: string;
  }[];
}

async function request(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(new URL(path, url), {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
}

describe("service registry", () => {
  let mesh: Mesh;
  let resolver: Resolver;
  let ads: AdsClient;

  beforeAll(async () => {
    mesh = await startMesh();
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${mesh.dnsHost}:${mesh.dnsPort}`]);
    ads = new AdsClient({
      servers: [mesh.control.server.xdsAddr],
      node: { id: "reader-1", cluster: "proxyless", metadata: {} },
    });
    // Held open for the whole suite: the client keeps what its watches want.
    ads.watch(endpointType, ["web"]);
  }, 30_000);
  afterAll(async () => {
    await ads?.close();
    await mesh?.stop();
  });

  const edsAddresses = async () => {
    await ads.synced(endpointType);
    const cla = ads.resources(endpointType).get("web")?.value as ClusterLoadAssignmentJson | undefined;
    const groups = (cla?.endpoints ?? []) as {
      lb_endpoints: { endpoint: { address: { socket_address: { address: string } } } }[];
    }[];
    return groups.flatMap((g) => g.lb_endpoints.map((e) => e.endpoint.address.socket_address.address));
  };

  it("a registration without heartbeats leaves DNS, the API and EDS within TTL plus one sweep, with events", async () => {
    const ws = await connect({ servers: SHARED_NATS_URL });
    const sub = ws.subscribe(`${mesh.control.root}.events.endpoint.web.*`);
    const seen: string[] = [];
    void (async () => {
      for await (const m of sub) seen.push(m.subject.split(".").at(-1) as string);
    })();
    await ws.flush();
    const reg = await post(mesh.control.url, "/v1/services/web/endpoints", {
      address: "127.0.0.9",
      port: 9009,
      ttlSeconds: 1,
      labels: { version: "v2" },
    });
    expect(reg.status).toBe(201);
    const id = (reg.body as { id: string }).id;
    await eventually(async () =>
      (await resolver.resolve4("web.catena")).includes("127.0.0.9") ? true : undefined,
    );
    const listed = (await getJson(mesh.control.url, "/v1/services/web/endpoints")).body as LookupBody;
    expect(listed.endpoints.find((e) => e.address === "127.0.0.9")).toMatchObject({
      port: 9009,
      source: "registered",
      id,
      portName: "http",
      healthy: true,
    });
    await eventually(async () => ((await edsAddresses()).includes("127.0.0.9") ? true : undefined));

    // Heartbeats keep it past its TTL.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await request(mesh.control.url, "PUT", `/v1/services/web/endpoints/${id}`)).status).toBe(200);
    }
    expect((await resolver.resolve4("web.catena")).includes("127.0.0.9")).toBe(true);

    // Then they stop: gone within TTL (1 s) + one sweep (0.2 s), plus the push.
    const stopped = Date.now();
    await eventually(
      async () => ((await resolver.resolve4("web.catena")).includes("127.0.0.9") ? undefined : true),
      4000,
    );
    // TTL (1 s) + one sweep (0.2 s) + compile and push (~0.1 s), with room for a loaded machine.
    expect(Date.now() - stopped).toBeLessThan(3000);
    const after = (await getJson(mesh.control.url, "/v1/services/web/endpoints")).body as LookupBody;
    expect(after.endpoints.map((e) => e.address)).not.toContain("127.0.0.9");
    await eventually(async () => ((await edsAddresses()).includes("127.0.0.9") ? undefined : true));
    expect((await request(mesh.control.url, "PUT", `/v1/services/web/endpoints/${id}`)).status).toBe(404);
    await eventually(() => (seen.includes("deregistered") ? true : undefined));
    expect(seen).toEqual(["registered", "deregistered"]);
    const events = (await getJson(mesh.control.url, "/v1/events?kind=endpoint")).body as {
      items: { type: string; subject: string; data: { reason?: string; id: string } }[];
    };
    expect(events.items.map((e) => [e.type, e.subject, e.data.reason])).toEqual([
      ["dev.catena.endpoint.registered", "web", undefined],
      ["dev.catena.endpoint.deregistered", "web", "expired"],
    ]);
    await ws.close();
  }, 20_000);

  it("registering the same address and port again is the same registration; DELETE twice succeeds", async () => {
    const body = { address: "127.0.0.8", port: 9008, ttlSeconds: 30 };
    const a = await post(mesh.control.url, "/v1/services/web/endpoints", body);
    const b = await post(mesh.control.url, "/v1/services/web/endpoints", { ...body, weight: 5 });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    const id = (a.body as { id: string }).id;
    expect((b.body as { id: string; weight: number }).id).toBe(id);
    expect(await request(mesh.control.url, "DELETE", `/v1/services/web/endpoints/${id}`)).toMatchObject({
      status: 200,
      body: { id, removed: true },
    });
    expect(await request(mesh.control.url, "DELETE", `/v1/services/web/endpoints/${id}`)).toMatchObject({
      status: 200,
      body: { removed: false },
    });
  });

  it("a blocking watch returns on change with a new index, and after wait with the same index", async () => {
    // The previous test's DELETE may still be compiling: read the index once it has settled.
    let first = await request(mesh.control.url, "GET", "/v1/services/web/endpoints");
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const again = await request(mesh.control.url, "GET", "/v1/services/web/endpoints");
      if (again.headers.get("x-catena-index") === first.headers.get("x-catena-index")) break;
      first = again;
    }
    const index = Number(first.headers.get("x-catena-index"));
    expect(index).toBe((first.body as LookupBody).index);

    const started = Date.now();
    const idle = await request(
      mesh.control.url,
      "GET",
      `/v1/services/web/endpoints?index=${index}&wait=300ms`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Number(idle.headers.get("x-catena-index"))).toBe(index);

    const watching = request(mesh.control.url, "GET", `/v1/services/web/endpoints?index=${index}&wait=10s`);
    await new Promise((r) => setTimeout(r, 100));
    const reg = await post(mesh.control.url, "/v1/services/web/endpoints", {
      address: "127.0.0.7",
      port: 9007,
      ttlSeconds: 30,
    });
    const changed = await watching;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(Number(changed.headers.get("x-catena-index"))).toBeGreaterThan(index);
    expect((changed.body as LookupBody).endpoints.map((e) => e.address)).toContain("127.0.0.7");
    // A stale index answers at once.
    const stale = await request(
      mesh.control.url,
      "GET",
      `/v1/services/web/endpoints?index=${index}&wait=10s`,
    );
    expect((stale.body as LookupBody).index).toBeGreaterThan(index);
    await request(
      mesh.control.url,
      "DELETE",
      `/v1/services/web/endpoints/${(reg.body as { id: string }).id}`,
    );
  });

  it("NATS: lookup from a plain nats.js client; $SRV.PING, INFO and STATS answer", async () => {
    const nc = await connect({ servers: SHARED_NATS_URL });
    try {
      const subject = `${mesh.control.root}.discovery.lookup`;
      // The previous test's deregistration reaches the lookup with the next compile: wait for it.
      const answer = await eventually(async () => {
        try {
          const m = await nc.request(subject, JSON.stringify({ service: "web", healthy: true }), {
            timeout: 1000,
          });
          return m.json<LookupBody>().endpoints.length === 2 ? m : undefined;
        } catch {
          return undefined;
        }
      });
      const body = answer.json<LookupBody>();
      expect(body.service).toBe("web");
      expect(body.endpoints.map((e) => `${e.address}:${e.port}`).sort()).toEqual([
        "127.0.0.1:9001",
        "127.0.0.2:9002",
      ]);
      const byName = (await nc.request(subject, "web", { timeout: 1000 })).json<LookupBody>();
      expect(byName.endpoints).toHaveLength(2);
      const missing = await nc.request(subject, JSON.stringify({ service: "nope" }), { timeout: 1000 });
      expect(missing.headers?.get("Nats-Service-Error-Code")).toBe("404");

      const client = new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).client();
      const mine = async <T extends { metadata?: unknown; endpoints?: unknown }>(it: AsyncIterable<T>) => {
        for await (const x of it) if (JSON.stringify(x).includes(subject)) return x;
        return undefined;
      };
      expect(await mine(await client.info("catena-discovery"))).toMatchObject({
        name: "catena-discovery",
        endpoints: [{ name: "lookup", subject }],
      });
      const stats = await mine(await client.stats("catena-discovery"));
      expect(
        (stats as { endpoints: { num_requests: number }[] }).endpoints[0]?.num_requests,
      ).toBeGreaterThanOrEqual(3);
      const pings: string[] = [];
      for await (const p of await client.ping("catena-discovery")) pings.push(p.name);
      expect(pings).toContain("catena-discovery");
    } finally {
      await nc.close();
    }
  });

  it("bad registrations get 400 with every bad field's path; an unknown Service 404", async () => {
    const bad = await post(mesh.control.url, "/v1/services/web/endpoints", {
      address: "300.1.1.1",
      port: 70000,
      ttlSeconds: 0,
      weight: "heavy",
      portName: "nope",
      extra: true,
    });
    expect(bad.status).toBe(400);
    const err = (bad.body as { error: { code: string; details: { path: string }[] } }).error;
    expect(err.code).toBe("CATENA_INVALID");
    expect(err.details.map((d) => d.path).sort()).toEqual([
      "address",
      "extra",
      "port",
      "portName",
      "ttlSeconds",
      "weight",
    ]);
    for (const body of [
      { address: "127.0.0.1", port: 0, ttlSeconds: 5 },
      { address: "127.0.0.1", port: 1.5, ttlSeconds: 5 },
      { address: "localhost", port: 80, ttlSeconds: 5 },
      { address: "127.0.0.1", port: "80", ttlSeconds: 5 },
      { address: "127.0.0.1", port: 80 },
      [],
    ]) {
      expect(
        (await post(mesh.control.url, "/v1/services/web/endpoints", body)).status,
        JSON.stringify(body),
      ).toBe(400);
    }
    expect(
      (
        await post(mesh.control.url, "/v1/services/nope/endpoints", {
          address: "127.0.0.1",
          port: 1,
          ttlSeconds: 5,
        })
      ).status,
    ).toBe(404);
    const lookup = await getJson(mesh.control.url, "/v1/services/web/endpoints?index=x&wait=forever");
    expect(lookup.status).toBe(400);
    expect(
      (lookup.body as { error: { details: { path: string }[] } }).error.details.map((d) => d.path),
    ).toEqual(["index", "wait"]);
  });
});

describe("active health checks", () => {
  let mesh: Mesh;
  let up: Server;
  let upPort: number;
  let downPort: number;

  beforeAll(async () => {
    up = createServer((s) => s.destroy());
    await new Promise<void>((r) => up.listen(0, "127.0.0.1", () => r()));
    upPort = (up.address() as { port: number }).port;
    const down = createServer();
    await new Promise<void>((r) => down.listen(0, "127.0.0.1", () => r()));
    downPort = (down.address() as { port: number }).port;
    await new Promise<void>((r) => down.close(() => r()));
    mesh = await startMesh();
  }, 30_000);
  afterAll(async () => {
    await mesh?.stop();
    up?.close();
  });

  it("checked endpoints are healthy once a probe passes; a dead one is left out of healthy lookups and DNS", async () => {
    await apply(
      mesh.control,
      `apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: checked}
spec:
  network: edge
  ports: [{name: http, port: 80}]
  healthCheck: {intervalMs: 200, timeoutMs: 200, unhealthyThreshold: 1}
  endpoints:
    - {address: 127.0.0.1, port: ${upPort}}
    - {address: 127.0.0.2, port: ${downPort}}`,
    );
    const healthy = await eventually(async () => {
      const b = (await getJson(mesh.control.url, "/v1/services/checked/endpoints")).body as LookupBody;
      const states = b.endpoints.map((e) => `${e.address}:${e.healthy}`).sort();
      return states.join() === "127.0.0.1:true,127.0.0.2:false" ? b : undefined;
    });
    expect(healthy.endpoints).toHaveLength(2);
    const only = (await getJson(mesh.control.url, "/v1/services/checked/endpoints?healthy=true"))
      .body as LookupBody;
    expect(only.endpoints.map((e) => e.address)).toEqual(["127.0.0.1"]);
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${mesh.dnsHost}:${mesh.dnsPort}`]);
    await eventually(async () => {
      const a = await resolver.resolve4("checked.catena").catch(() => []);
      return a.join() === "127.0.0.1" ? true : undefined;
    });
    // Unchecked services are healthy without any probe.
    const web = (await getJson(mesh.control.url, "/v1/services/web/endpoints?healthy=true"))
      .body as LookupBody;
    expect(web.endpoints).toHaveLength(2);
    const events = (await getJson(mesh.control.url, "/v1/events?kind=endpoint")).body as {
      items: { type: string; data: { address: string; healthy: boolean } }[];
    };
    expect(
      events.items
        .filter((e) => e.type === "dev.catena.endpoint.health-changed")
        .map((e) => `${e.data.address}:${e.data.healthy}`)
        .sort(),
    ).toEqual(["127.0.0.1:true", "127.0.0.2:false"]);
  });
});
