// AdsClient against a real AdsServer, in both variants.
import { afterEach, describe, expect, it } from "vitest";
import { Snapshot } from "../../xds/cache/snapshot.js";
import { SnapshotCache } from "../../xds/cache/snapshot-cache.js";
import { AdsClient, type AdsMode, type ClientState } from "../../xds/client/ads-client.js";
import type { ResourceWatch, WatchEvent } from "../../xds/client/watch-queue.js";
import { type ClusterJson, clusterType } from "../../xds/resource-types/cluster.js";
import { withValidation } from "../../xds/resource-types/resource-type.js";
import { AdsServer } from "../../xds/server/ads-server.js";
import type { AckEvent, NackEvent } from "../../xds/server/callbacks.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { invalid, valid } from "../../xds/validated.js";
import { captureLogger } from "./support/capture-logger.js";
import { cluster, node } from "./support/fixtures.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Running {
  cache: SnapshotCache;
  server: AdsServer;
  port: number;
  acks: AckEvent[];
  nacks: NackEvent[];
  log: ReturnType<typeof captureLogger>;
}

async function serve(port = 0): Promise<Running> {
  const cache = new SnapshotCache({ debounceMs: 0 });
  const acks: AckEvent[] = [];
  const nacks: NackEvent[] = [];
  const log = captureLogger();
  const server = new AdsServer({
    cache,
    logger: log,
    callbacks: { onAck: (e) => acks.push(e), onNack: (e) => nacks.push(e) },
  });
  const bound = await server.listen(`127.0.0.1:${port}`);
  cleanups.push(() => server.close());
  return { cache, server, port: bound, acks, nacks, log };
}

function connect(mode: AdsMode, servers: string[], states: ClientState[] = []): AdsClient {
  const client = new AdsClient({
    servers,
    node,
    mode,
    backoff: { initialMs: 50, maxMs: 200, multiplier: 2, jitter: 0.2 },
    onStateChange: (s) => states.push(s),
  });
  cleanups.push(() => client.close());
  return client;
}

function events<T>(watch: ResourceWatch<T>) {
  const it = watch[Symbol.asyncIterator]();
  return async (timeoutMs = 5000): Promise<WatchEvent<T>> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no watch event within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error("watch ended");
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(["delta", "sotw"] as const)("AdsClient (%s)", (mode) => {
  it("accepts what the server sends and ACKs it", async () => {
    const s = await serve();
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const client = connect(mode, [`127.0.0.1:${s.port}`]);
    const next = events(client.watch(clusterType, "*"));
    const got = [await next(), await next()].map((e) => `${e.type}:${e.name}`).sort();
    expect(got).toEqual(["changed:a", "changed:b"]);
    expect([...client.resources(clusterType).keys()].sort()).toEqual(["a", "b"]);
    await until(() => s.acks.length === 1, "ack");
    expect(s.acks[0]).toMatchObject({ typeUrl: TYPE_URL.cluster, node: { id: node.id } });
    expect(client.state.state).toBe("connected");
  });

  it("a resource the validate hook rejects is NACKed with its field errors; the accepted one stays", async () => {
    const s = await serve();
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("a", 1000)]));
    const strict = withValidation(clusterType, (c: ClusterJson) => {
      const seconds = (c.connect_timeout as { seconds?: number } | undefined)?.seconds ?? 0;
      return seconds <= 10
        ? valid(c)
        : invalid([{ path: "connect_timeout", message: `${seconds}s is over 10s` }]);
    });
    const client = connect(mode, [`127.0.0.1:${s.port}`]);
    const next = events(client.watch(strict, "*"));
    const first = await next();
    expect(first).toMatchObject({ type: "changed", name: "a" });
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("a", 60_000)]));
    expect(await next()).toEqual({
      type: "error",
      name: "a",
      errors: [{ path: "connect_timeout", message: "60s is over 10s" }],
    });
    await until(() => s.nacks.length === 1, "nack");
    expect(s.nacks[0]?.errorDetail).toEqual({ code: 3, message: "a: connect_timeout: 60s is over 10s" });
    expect(s.server.status.node(node.id)?.types.get(TYPE_URL.cluster)?.errorDetail?.message).toMatch(
      /60s is over 10s/,
    );
    expect(client.resources(strict).get("a")?.version).toBe(first.type === "changed" ? first.version : "");
    // A fixed version is sent and accepted.
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("a", 2000)]));
    expect(await next()).toMatchObject({ type: "changed", name: "a" });
  });

  it("a watched name that does not exist is reported, then delivered when created", async () => {
    const s = await serve();
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("other")]));
    const client = connect(mode, [`127.0.0.1:${s.port}`]);
    const next = events(client.watch(clusterType, ["web"]));
    expect(await next()).toEqual({ type: "does-not-exist", name: "web" });
    s.cache.setSnapshot(node.id, Snapshot.from([cluster("other"), cluster("web")]));
    expect(await next()).toMatchObject({ type: "changed", name: "web" });
  });

  it("reconnects after a server restart with backoff, keeping its config meanwhile, and gets only the change", async () => {
    const s1 = await serve();
    s1.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b")]));
    const states: ClientState[] = [];
    const client = connect(mode, [`127.0.0.1:${s1.port}`], states);
    const next = events(client.watch(clusterType, "*"));
    await next();
    await next();
    await s1.server.close();
    await until(() => client.state.state === "backoff", "backoff");
    expect(states.find((x) => x.state === "backoff")?.error).toBeTruthy();
    expect([...client.resources(clusterType).keys()].sort()).toEqual(["a", "b"]);

    const s2 = await serve(s1.port);
    s2.cache.setSnapshot(node.id, Snapshot.from([cluster("a"), cluster("b", 1000)]));
    const e = await next();
    expect(e).toMatchObject({ type: "changed", name: "b" });
    expect(client.state.state).toBe("connected");
    if (mode === "delta") {
      // initial_resource_versions told the server "a" is current: only "b" was sent.
      const sent = s2.log.entries.filter((x) => x.msg === "xds delta sent");
      expect(sent.map((x) => x.fields.upserts)).toEqual([1]);
    }
    expect([...client.resources(clusterType).keys()].sort()).toEqual(["a", "b"]);
  });

  it("fails over to the next server address", async () => {
    const live = await serve();
    live.cache.setSnapshot(node.id, Snapshot.from([cluster("a")]));
    const dead = await serve();
    await dead.server.close();
    const client = connect(mode, [`127.0.0.1:${dead.port}`, `127.0.0.1:${live.port}`]);
    const next = events(client.watch(clusterType, "*"));
    expect(await next()).toMatchObject({ type: "changed", name: "a" });
    expect(client.state.server).toBe(`127.0.0.1:${live.port}`);
  });

  it("synced tells an empty answer from no answer", async () => {
    const s = await serve();
    s.cache.setSnapshot(node.id, Snapshot.from([]));
    const client = connect(mode, [`127.0.0.1:${s.port}`]);
    client.watch(clusterType, "*");
    await client.synced(clusterType);
    expect(client.resources(clusterType).size).toBe(0);
  });

  it("close ends every watch", async () => {
    const s = await serve();
    const client = connect(mode, [`127.0.0.1:${s.port}`]);
    const watch = client.watch(clusterType, "*");
    const done = (async () => {
      for await (const _ of watch) {
        // no events: nothing is set for this node
      }
      return "ended";
    })();
    await client.close();
    expect(await done).toBe("ended");
    expect(await client.closed).toBeUndefined();
  });
});

describe("AdsClient options", () => {
  it.each([
    { name: "no servers", opts: { servers: [] }, error: /servers/ },
    { name: "bad mode", opts: { mode: "rest" as AdsMode }, error: /mode/ },
    {
      name: "bad backoff",
      opts: { backoff: { initialMs: 0, maxMs: 1, multiplier: 2, jitter: 0 } },
      error: /initialMs/,
    },
  ])("$name fails in the constructor", ({ opts, error }) => {
    expect(() => new AdsClient({ servers: ["127.0.0.1:1"], node, ...opts })).toThrow(error);
  });
});
