// SotW conformance, driven by raw gRPC streams: one test per protocol rule.
import type { Client } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Snapshot } from "../../xds/cache/snapshot.js";
import type { AckEvent, NackEvent } from "../../xds/server/callbacks.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { TYPED_SERVICES } from "../../xds/wire/services.js";
import { apiL, cla, cluster, listener, namesOf, node, node2, route } from "./support/fixtures.js";
import { req, sotwStream, status, xdsClient } from "./support/raw-stream.js";
import { startTestServer, type TestServer } from "./support/server.js";

let ts: TestServer;
let client: Client;
let acks: AckEvent[];
let nacks: NackEvent[];

beforeEach(async () => {
  acks = [];
  nacks = [];
  ts = await startTestServer({
    server: { callbacks: { onAck: (e) => acks.push(e), onNack: (e) => nacks.push(e) } },
  });
  client = xdsClient(ts.port);
});

afterEach(async () => {
  client.close();
  await ts.close();
});

/** Resolves once the server has handled every request sent before: the given event count is reached. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("SotW", () => {
  it("ACK: the response is acknowledged with its version and nonce", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const r = await s.next();
    expect(r.typeUrl).toBe(TYPE_URL.cluster);
    expect(namesOf(r.resources).sort()).toEqual(["a", "b"]);
    s.send(req({ typeUrl: TYPE_URL.cluster, versionInfo: r.versionInfo, responseNonce: r.nonce }));
    await until(() => acks.length === 1, "ack");
    expect(acks[0]).toMatchObject({
      typeUrl: TYPE_URL.cluster,
      version: r.versionInfo,
      node: { id: node.id },
    });
    expect(ts.server.status.node(node.id)?.types.get(TYPE_URL.cluster)?.ackedVersion).toBe(r.versionInfo);
    s.close();
  });

  it("NACK is recorded and that version is not sent again; a new version is", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cla("a")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const bad = await s.next();
    s.send(req({ typeUrl: TYPE_URL.endpoint, resourceNames: ["a"] }));
    const eds = await s.next();
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        versionInfo: eds.versionInfo,
        responseNonce: eds.nonce,
      }),
    );
    s.send(
      req({
        typeUrl: TYPE_URL.cluster,
        versionInfo: "",
        responseNonce: bad.nonce,
        errorDetail: { code: 3, message: "cluster a: bad timeout" },
      }),
    );
    await until(() => nacks.length === 1, "nack");
    expect(nacks[0]).toMatchObject({
      node: { id: node.id },
      typeUrl: TYPE_URL.cluster,
      version: bad.versionInfo,
      errorDetail: { code: 3, message: "cluster a: bad timeout" },
    });
    const st = ts.server.status.node(node.id)?.types.get(TYPE_URL.cluster);
    expect(st).toMatchObject({
      nackedVersion: bad.versionInfo,
      errorDetail: { message: "cluster a: bad timeout" },
    });
    // Endpoints change, clusters do not: only EDS goes out, the NACKed clusters stay unsent.
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cla("a", 81)]));
    const next = await s.next();
    expect(next.typeUrl).toBe(TYPE_URL.endpoint);
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        versionInfo: next.versionInfo,
        responseNonce: next.nonce,
      }),
    );
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a", 1000), cla("a", 81)]));
    const fixed = await s.next();
    expect(fixed.typeUrl).toBe(TYPE_URL.cluster);
    expect(fixed.versionInfo).not.toBe(bad.versionInfo);
    s.close();
  });

  it("a request with a stale nonce is ignored", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const first = await s.next();
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const second = await s.next();
    // A NACK of the first response arriving after the second was sent is stale.
    s.send(
      req({
        typeUrl: TYPE_URL.cluster,
        responseNonce: first.nonce,
        errorDetail: { code: 3, message: "old" },
      }),
    );
    s.send(req({ typeUrl: TYPE_URL.cluster, versionInfo: second.versionInfo, responseNonce: second.nonce }));
    await until(() => acks.length === 1, "ack");
    expect(nacks).toEqual([]);
    expect(acks[0]?.version).toBe(second.versionInfo);
    s.close();
  });

  it("a name subscribed before it exists is sent when it is created", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("other")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.endpoint, resourceNames: ["web"] }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("other"), cla("web")]));
    const r = await s.next();
    expect(namesOf(r.resources)).toEqual(["web"]);
    s.close();
  });

  it("a node subscribed before its snapshot exists gets it when it is set", async () => {
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    await until(() => ts.server.streamCount === 1 && ts.server.status.node(node.id) !== undefined, "stream");
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    expect(namesOf((await s.next()).resources)).toEqual(["a"]);
    s.close();
  });

  it.each([
    { name: "legacy (empty names)", names: [] as string[] },
    { name: "explicit *", names: ["*"] },
  ])("wildcard $name gets every resource and every new one", async ({ names }) => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster, resourceNames: names }));
    const r1 = await s.next();
    expect(namesOf(r1.resources)).toEqual(["a"]);
    s.send(
      req({
        typeUrl: TYPE_URL.cluster,
        resourceNames: names,
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      }),
    );
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    expect(namesOf((await s.next()).resources).sort()).toEqual(["a", "b"]);
    s.close();
  });

  it.each([TYPE_URL.cluster, TYPE_URL.listener])(
    "%s carries full state: a removed resource is absent",
    async (typeUrl) => {
      const make = (name: string) => (typeUrl === TYPE_URL.cluster ? cluster(name) : listener(name, "c"));
      ts.cache.setSnapshot(node.id, Snapshot.from([make("a"), make("b")]));
      const s = sotwStream(client);
      s.send(req({ node, typeUrl }));
      expect(namesOf((await s.next()).resources).sort()).toEqual(["a", "b"]);
      ts.cache.setSnapshot(node.id, Snapshot.from([make("a")]));
      expect(namesOf((await s.next()).resources)).toEqual(["a"]);
      s.close();
    },
  );

  it("EDS carries only what changed", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cla("b")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.endpoint, resourceNames: ["a", "b"] }));
    const r1 = await s.next();
    expect(namesOf(r1.resources).sort()).toEqual(["a", "b"]);
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cla("b", 81)]));
    expect(namesOf((await s.next()).resources)).toEqual(["b"]);
    s.close();
  });

  it("a name unsubscribed and subscribed again is sent again", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cla("b")]));
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.endpoint, resourceNames: ["a", "b"] }));
    const r1 = await s.next();
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      }),
    );
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a", "b"],
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      }),
    );
    expect(namesOf((await s.next()).resources)).toEqual(["b"]);
    s.close();
  });

  it("one push goes make-before-break: CDS, EDS, LDS, RDS, then removals", async () => {
    ts.cache.setSnapshot(
      node.id,
      Snapshot.from([cluster("old"), cla("old"), listener("l", "old"), apiL("api", "r"), route("r", "old")]),
    );
    const s = sotwStream(client);
    const subs: [string, string[]][] = [
      [TYPE_URL.cluster, []],
      [TYPE_URL.endpoint, ["old", "new"]],
      [TYPE_URL.listener, []],
      [TYPE_URL.route, ["r"]],
    ];
    let first = true;
    for (const [typeUrl, names] of subs) {
      s.send(req({ ...(first ? { node } : {}), typeUrl, resourceNames: names }));
      first = false;
      const r = await s.next();
      s.send(req({ typeUrl, resourceNames: names, versionInfo: r.versionInfo, responseNonce: r.nonce }));
    }
    await until(() => acks.length === 4, "acks");
    // The listener and route move from cluster "old" to "new", which replaces it.
    ts.cache.setSnapshot(
      node.id,
      Snapshot.from([cluster("new"), cla("new"), listener("l", "new"), apiL("api", "r"), route("r", "new")]),
    );
    const got: { typeUrl: string; names: string[] }[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await s.next();
      got.push({ typeUrl: r.typeUrl, names: namesOf(r.resources).sort() });
    }
    expect(got).toEqual([
      { typeUrl: TYPE_URL.cluster, names: ["new", "old"] },
      { typeUrl: TYPE_URL.endpoint, names: ["new"] },
      { typeUrl: TYPE_URL.listener, names: ["api", "l"] },
      { typeUrl: TYPE_URL.route, names: ["r"] },
      { typeUrl: TYPE_URL.cluster, names: ["new"] },
    ]);
    s.close();
  });

  it("a reconnecting client that holds the current version is not sent it again", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const s1 = sotwStream(client);
    s1.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const r1 = await s1.next();
    s1.close();
    const s2 = sotwStream(client);
    s2.send(req({ node, typeUrl: TYPE_URL.cluster, versionInfo: r1.versionInfo }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const r2 = await s2.next();
    expect(namesOf(r2.resources).sort()).toEqual(["a", "b"]);
    s2.close();
  });

  it("debounce: 100 setSnapshot calls within the window make one push", async () => {
    await ts.close();
    ts = await startTestServer({ cache: { debounceMs: 50 } });
    client.close();
    client = xdsClient(ts.port);
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a", 1)]));
    ts.cache.flush();
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.endpoint, resourceNames: ["a"] }));
    const r0 = await s.next();
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        versionInfo: r0.versionInfo,
        responseNonce: r0.nonce,
      }),
    );
    const snaps = Array.from({ length: 100 }, (_, i) => Snapshot.from([cla("a", 1000 + i)]));
    for (const snap of snaps) ts.cache.setSnapshot(node.id, snap);
    const r1 = await s.next();
    expect(r1.versionInfo).toBe(snaps[99]?.version(TYPE_URL.endpoint));
    // The next response is for the next change, not an intermediate one of the burst.
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["a"],
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      }),
    );
    const last = Snapshot.from([cla("a", 7)]);
    ts.cache.setSnapshot(node.id, last);
    ts.cache.flush();
    expect((await s.next()).versionInfo).toBe(last.version(TYPE_URL.endpoint));
    s.close();
  });

  it("nodes with different keys get their own snapshots", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    ts.cache.setSnapshot(node2.id, Snapshot.from([cluster("b")]));
    const s1 = sotwStream(client);
    const s2 = sotwStream(client);
    s1.send(req({ node, typeUrl: TYPE_URL.cluster }));
    s2.send(req({ node: node2, typeUrl: TYPE_URL.cluster }));
    expect(namesOf((await s1.next()).resources)).toEqual(["a"]);
    expect(namesOf((await s2.next()).resources)).toEqual(["b"]);
    s1.close();
    s2.close();
  });

  it("nodes mapped to one key share its snapshot", async () => {
    await ts.close();
    ts = await startTestServer({ cache: { nodeKey: (n) => n.cluster } });
    client.close();
    client = xdsClient(ts.port);
    ts.cache.setSnapshot("fw", Snapshot.from([cluster("shared")]));
    const s1 = sotwStream(client);
    const s2 = sotwStream(client);
    s1.send(req({ node, typeUrl: TYPE_URL.cluster }));
    s2.send(req({ node: node2, typeUrl: TYPE_URL.cluster }));
    const [r1, r2] = [await s1.next(), await s2.next()];
    expect(namesOf(r1.resources)).toEqual(["shared"]);
    expect(r2.versionInfo).toBe(r1.versionInfo);
    expect(Buffer.from(r2.resources[0]?.value ?? []).equals(Buffer.from(r1.resources[0]?.value ?? []))).toBe(
      true,
    );
    s1.close();
    s2.close();
  });

  it("per-type services answer their own type", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), listener("l", "a")]));
    for (const svc of TYPED_SERVICES.filter(
      (t) => t.typeUrl === TYPE_URL.cluster || t.typeUrl === TYPE_URL.listener,
    )) {
      const s = sotwStream(client, svc.stream);
      s.send(req({ node, typeUrl: svc.typeUrl }));
      const r = await s.next();
      expect(r.typeUrl).toBe(svc.typeUrl);
      s.close();
    }
    const cds = TYPED_SERVICES.find((t) => t.typeUrl === TYPE_URL.cluster);
    const wrong = sotwStream(client, cds?.stream);
    wrong.send(req({ node, typeUrl: TYPE_URL.listener }));
    expect(await wrong.ended).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/serves only/),
    });
  });
});

describe("SotW bad input ends only its own stream", () => {
  const cases = [
    {
      name: "unknown type URL",
      send: (s: ReturnType<typeof sotwStream>) =>
        s.send(req({ node, typeUrl: "type.googleapis.com/acme.Nope" })),
      code: status.INVALID_ARGUMENT,
      details: /unknown type URL "type.googleapis.com\/acme.Nope"/,
    },
    {
      name: "first request without node",
      send: (s: ReturnType<typeof sotwStream>) => s.send(req({ typeUrl: TYPE_URL.cluster })),
      code: status.INVALID_ARGUMENT,
      details: /first DiscoveryRequest on a stream must carry node/,
    },
    {
      name: "undecodable bytes",
      send: (s: ReturnType<typeof sotwStream>) =>
        s.sendRaw(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])),
      code: status.INVALID_ARGUMENT,
      details: /cannot decode envoy.service.discovery.v3.DiscoveryRequest/,
    },
  ];

  it.each(cases)("$name", async ({ send, code, details }) => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const good = sotwStream(client);
    good.send(req({ node, typeUrl: TYPE_URL.cluster }));
    const r = await good.next();
    const bad = sotwStream(client);
    send(bad);
    const end = await bad.ended;
    expect(end.code).toBe(code);
    expect(end.details).toMatch(details);
    good.send(req({ typeUrl: TYPE_URL.cluster, versionInfo: r.versionInfo, responseNonce: r.nonce }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    expect(namesOf((await good.next()).resources).sort()).toEqual(["a", "b"]);
    good.close();
  });

  it("a node the admission check refuses gets PERMISSION_DENIED with the reason", async () => {
    await ts.close();
    ts = await startTestServer({
      server: {
        callbacks: {
          onStreamOpen: (info) =>
            info.node.cluster === "fw" ? { ok: false, reason: "no such function" } : { ok: true },
        },
      },
    });
    client.close();
    client = xdsClient(ts.port);
    const s = sotwStream(client);
    s.send(req({ node, typeUrl: TYPE_URL.cluster }));
    expect(await s.ended).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'node "node-1" refused: no such function',
    });
  });
});
