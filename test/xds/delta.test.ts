// Delta conformance, driven by raw gRPC streams: one test per protocol rule.
import type { Client } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Snapshot } from "../../xds/cache/snapshot.js";
import type { AckEvent, NackEvent } from "../../xds/server/callbacks.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import type { DeltaDiscoveryResponse } from "../../xds/wire/discovery.js";
import { TYPED_SERVICES } from "../../xds/wire/services.js";
import { apiL, cla, cluster, listener, node, route } from "./support/fixtures.js";
import { deltaStream, dreq, status, xdsClient } from "./support/raw-stream.js";
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

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const names = (r: DeltaDiscoveryResponse) => r.resources.map((x) => x.name).sort();
const versions = (r: DeltaDiscoveryResponse) =>
  Object.fromEntries(r.resources.map((x) => [x.name, x.version]));

describe("Delta", () => {
  it("wildcard gets every resource with its version; the ACK names the nonce", async () => {
    const snap = Snapshot.from([cluster("a"), cluster("b")]);
    ts.cache.setSnapshot(node.id, snap);
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.cluster, resourceNamesSubscribe: ["*"] }));
    const r = await s.next();
    expect(names(r)).toEqual(["a", "b"]);
    expect(versions(r)).toEqual({
      a: snap.get(TYPE_URL.cluster, "a")?.version,
      b: snap.get(TYPE_URL.cluster, "b")?.version,
    });
    expect(r.removedResources).toEqual([]);
    s.send(dreq({ typeUrl: TYPE_URL.cluster, responseNonce: r.nonce }));
    await until(() => acks.length === 1, "ack");
    expect(acks[0]).toMatchObject({ typeUrl: TYPE_URL.cluster, version: r.systemVersionInfo });
    s.close();
  });

  it("only changed resources are sent, removed ones are named in removed_resources", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b"), cluster("c")]));
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.cluster }));
    const r1 = await s.next();
    s.send(dreq({ typeUrl: TYPE_URL.cluster, responseNonce: r1.nonce }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b", 1000), cluster("d")]));
    const up = await s.next();
    expect(names(up)).toEqual(["b", "d"]);
    expect(up.removedResources).toEqual([]);
    const rm = await s.next();
    expect(rm.resources).toEqual([]);
    expect(rm.removedResources).toEqual(["c"]);
    s.close();
  });

  it("reconnect with initial_resource_versions gets only the differences", async () => {
    const before = Snapshot.from([cla("same"), cla("changed"), cla("gone")]);
    const held = Object.fromEntries(
      [...before.resources(TYPE_URL.endpoint).values()].map((r) => [r.name, r.version]),
    );
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("same"), cla("changed", 81), cla("new")]));
    const s = deltaStream(client);
    s.send(
      dreq({
        node,
        typeUrl: TYPE_URL.endpoint,
        resourceNamesSubscribe: ["same", "changed", "gone", "new"],
        initialResourceVersions: held,
      }),
    );
    const r = await s.next();
    expect(names(r)).toEqual(["changed", "new"]);
    expect(r.removedResources).toEqual(["gone"]);
    s.close();
  });

  it("a subscribed name that does not exist is reported removed, then sent when it appears", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("other")]));
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.endpoint, resourceNamesSubscribe: ["web"] }));
    const absent = await s.next();
    expect(absent.resources).toEqual([]);
    expect(absent.removedResources).toEqual(["web"]);
    s.send(dreq({ typeUrl: TYPE_URL.endpoint, responseNonce: absent.nonce }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("other"), cla("web")]));
    expect(names(await s.next())).toEqual(["web"]);
    s.close();
  });

  it("an unsubscribed name is no longer sent", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cla("b")]));
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.endpoint, resourceNamesSubscribe: ["a", "b"] }));
    const r1 = await s.next();
    s.send(dreq({ typeUrl: TYPE_URL.endpoint, responseNonce: r1.nonce, resourceNamesUnsubscribe: ["b"] }));
    // Requests are handled in order: the answer to this one shows the unsubscribe was handled.
    s.send(dreq({ typeUrl: TYPE_URL.endpoint, resourceNamesSubscribe: ["marker"] }));
    expect((await s.next()).removedResources).toEqual(["marker"]);
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a", 81), cla("b", 81)]));
    const r2 = await s.next();
    expect(names(r2)).toEqual(["a"]);
    expect(r2.removedResources).toEqual([]);
    s.close();
  });

  it("a NACKed resource version is not sent again; a new version is", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.cluster, resourceNamesSubscribe: ["*"] }));
    const r1 = await s.next();
    s.send(
      dreq({
        typeUrl: TYPE_URL.cluster,
        responseNonce: r1.nonce,
        errorDetail: { code: 3, message: "a: bad" },
      }),
    );
    await until(() => nacks.length === 1, "nack");
    expect(nacks[0]).toMatchObject({
      typeUrl: TYPE_URL.cluster,
      version: r1.systemVersionInfo,
      errorDetail: { message: "a: bad" },
    });
    // b changes; a (NACKed) does not: only b goes out.
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b", 1000)]));
    const r2 = await s.next();
    expect(names(r2)).toEqual(["b"]);
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a", 2000), cluster("b", 1000)]));
    expect(names(await s.next())).toEqual(["a"]);
    s.close();
  });

  it("one push goes make-before-break: CDS, EDS, LDS, RDS, then removals in reverse", async () => {
    ts.cache.setSnapshot(
      node.id,
      Snapshot.from([cluster("old"), cla("old"), listener("l", "old"), apiL("api", "r"), route("r", "old")]),
    );
    const s = deltaStream(client);
    const subs: [string, string[]][] = [
      [TYPE_URL.cluster, ["*"]],
      [TYPE_URL.endpoint, ["old", "new"]],
      [TYPE_URL.listener, ["*"]],
      [TYPE_URL.route, ["r"]],
    ];
    let first = true;
    for (const [typeUrl, subscribe] of subs) {
      s.send(dreq({ ...(first ? { node } : {}), typeUrl, resourceNamesSubscribe: subscribe }));
      first = false;
      const r = await s.next();
      s.send(dreq({ typeUrl, responseNonce: r.nonce }));
      // EDS "new" does not exist yet: its does-not-exist notice comes in the same response.
    }
    await until(() => acks.length === 4, "acks");
    ts.cache.setSnapshot(
      node.id,
      Snapshot.from([cluster("new"), cla("new"), listener("l", "new"), apiL("api", "r"), route("r", "new")]),
    );
    const got: { typeUrl: string; names: string[]; removed: string[] }[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await s.next();
      got.push({ typeUrl: r.typeUrl, names: names(r), removed: r.removedResources });
    }
    expect(got).toEqual([
      { typeUrl: TYPE_URL.cluster, names: ["new"], removed: [] },
      { typeUrl: TYPE_URL.endpoint, names: ["new"], removed: [] },
      { typeUrl: TYPE_URL.listener, names: ["l"], removed: [] },
      { typeUrl: TYPE_URL.route, names: ["r"], removed: [] },
      { typeUrl: TYPE_URL.endpoint, names: [], removed: ["old"] },
      { typeUrl: TYPE_URL.cluster, names: [], removed: ["old"] },
    ]);
    s.close();
  });

  it("the per-type Delta service (EDS) answers its type", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cla("a"), cluster("a")]));
    const eds = TYPED_SERVICES.find((t) => t.typeUrl === TYPE_URL.endpoint);
    const s = deltaStream(client, eds?.delta);
    s.send(dreq({ node, typeUrl: TYPE_URL.endpoint, resourceNamesSubscribe: ["a"] }));
    const r = await s.next();
    expect(r.typeUrl).toBe(TYPE_URL.endpoint);
    expect(names(r)).toEqual(["a"]);
    s.close();
  });

  it("an apply of 1,000 objects within the debounce window is one push", async () => {
    await ts.close();
    ts = await startTestServer({ cache: { debounceMs: 50 } });
    client.close();
    client = xdsClient(ts.port);
    ts.cache.setSnapshot(node.id, Snapshot.empty());
    ts.cache.flush();
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: TYPE_URL.endpoint, resourceNamesSubscribe: ["*"] }));
    const empty = await s.next();
    expect(empty.resources).toEqual([]);
    for (let i = 0; i < 1000; i++)
      ts.cache.updateSnapshot(node.id, (cur) => cur.update([cla(`svc-${i}`, 1000 + i)]));
    const r = await s.next();
    expect(r.resources).toHaveLength(1000);
    // Nothing else follows: the next response is for the next change.
    ts.cache.updateSnapshot(node.id, (cur) => cur.update([cla("svc-0", 7)]));
    ts.cache.flush();
    expect(names(await s.next())).toEqual(["svc-0"]);
    s.close();
  });

  it("first request without node ends the stream with INVALID_ARGUMENT", async () => {
    const s = deltaStream(client);
    s.send(dreq({ typeUrl: TYPE_URL.cluster }));
    expect(await s.ended).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/must carry node/),
    });
  });

  it("undecodable bytes end the stream with INVALID_ARGUMENT; another stream keeps working", async () => {
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const good = deltaStream(client);
    good.send(dreq({ node, typeUrl: TYPE_URL.cluster }));
    const r = await good.next();
    const bad = deltaStream(client);
    bad.sendRaw(Buffer.from([0x12, 0x09, 0x41]));
    expect(await bad.ended).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/cannot decode envoy.service.discovery.v3.DeltaDiscoveryRequest/),
    });
    good.send(dreq({ typeUrl: TYPE_URL.cluster, responseNonce: r.nonce }));
    ts.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    expect(names(await good.next())).toEqual(["b"]);
    good.close();
  });

  it("unknown type URL ends the stream with INVALID_ARGUMENT", async () => {
    const s = deltaStream(client);
    s.send(dreq({ node, typeUrl: "type.googleapis.com/acme.Nope" }));
    expect(await s.ended).toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/unknown type URL/),
    });
  });
});
