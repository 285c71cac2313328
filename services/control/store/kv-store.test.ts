// The Store contract, run against both stores (embedded and JetStream KV), then what only the KV
// store promises: revisions from the bucket, several replicas on one bucket, intents finished by
// another replica. Real NATS: the machine's server, a bucket of its own per test.
import { jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { removeTempDirs, resource, take, tempDir, workload } from "../../../test/fixtures/store/helpers.js";
import { SHARED_NATS_URL, uniqueRoot } from "../../../test/support/nats.js";
import { ErrorCode, isCatenaError } from "../errors.js";
import type { Resource, StoredResource } from "../model/resource.js";
import { openEmbeddedStore } from "./embedded-store.js";
import { openBucket, stateBucketName } from "./kv-cas.js";
import { type KvStore, openKvStore } from "./kv-store.js";
import type { Change, Store } from "./store.js";
import type { QueuedWatch } from "./watch.js";

type TestStore = Omit<Store, "watch"> & {
  watch(o?: { initial?: boolean }): QueuedWatch<Change>;
  destroy(e?: Error): Promise<void>;
};

let nc: NatsConnection;
const roots: string[] = [];

beforeAll(async () => {
  nc = await connect({ servers: SHARED_NATS_URL });
});

afterAll(async () => {
  await nc?.close();
});

async function deleteBuckets(): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const root of roots.splice(0)) {
    await jsm.streams.delete(`KV_${stateBucketName(root)}`).catch(() => false);
  }
}

function openKv(
  root: string,
  options: { rollForwardAfterMs?: number; intentsKept?: number } = {},
): Promise<KvStore> {
  if (!roots.includes(root)) roots.push(root);
  return openKvStore({ servers: SHARED_NATS_URL, root, ...options });
}

const STORES: { name: string; open: () => Promise<TestStore> }[] = [
  { name: "embedded", open: async () => openEmbeddedStore({ dataDir: await tempDir() }) },
  { name: "nats-kv", open: () => openKv(uniqueRoot()) },
];

function put(object: Resource, expectedVersion?: string) {
  return { type: "put" as const, object, ...(expectedVersion !== undefined && { expectedVersion }) };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

const rv = (o: StoredResource | undefined) => Number(o?.metadata.resourceVersion);

describe.each(STORES)("Store contract: $name", ({ open }) => {
  let store: TestStore;

  beforeEach(async () => {
    store = await open();
  });

  afterEach(async () => {
    await store.close();
    await removeTempDirs();
    await deleteBuckets();
  });

  it("create sets the server-written fields, generation 1 and resourceVersion = the commit's revision", async () => {
    const result = await store.commit([put(workload("web", { image: "a" }))]);
    expect(result.results[0]?.action).toBe("created");
    const object = result.results[0]?.object as StoredResource;
    expect(object.metadata).toMatchObject({
      name: "web",
      generation: 1,
      resourceVersion: String(result.revision),
    });
    expect(object.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await store.get("Workload", "web")).toEqual(object);
    expect(store.revision()).toBe(result.revision);
  });

  it("server-written fields and status in the input are ignored", async () => {
    const input = workload("web", { image: "a" });
    input.metadata = { ...input.metadata, uid: "forged", generation: 42, resourceVersion: "99" };
    input.status = { observedGeneration: 42 };
    const { results } = await store.commit([put(input)]);
    expect(results[0]?.object.metadata.generation).toBe(1);
    expect(results[0]?.object.metadata.uid).not.toBe("forged");
    expect(results[0]?.object.status).toBeUndefined();
  });

  it("update keeps uid and creationTimestamp, bumps generation and takes a newer revision", async () => {
    const created = (await store.commit([put(workload("web", { image: "a" }))])).results[0]?.object;
    await store.commit([put(workload("other"))]);
    const result = await store.commit([put(workload("web", { image: "b" }))]);
    expect(result.results[0]?.action).toBe("updated");
    expect(result.results[0]?.object.metadata).toMatchObject({
      uid: created?.metadata.uid,
      creationTimestamp: created?.metadata.creationTimestamp,
      generation: 2,
    });
    expect(rv(result.results[0]?.object)).toBeGreaterThan(rv(created));
  });

  it("an identical put is unchanged: no revision bump, no watch event", async () => {
    await store.commit([put(workload("web", { a: 1, b: { c: [1, 2] } }, { app: "web" }))]);
    const before = store.revision();
    const watch = store.watch();
    const result = await store.commit([put(workload("web", { b: { c: [1, 2] }, a: 1 }, { app: "web" }))]);
    expect(result.results[0]?.action).toBe("unchanged");
    expect(result.revision).toBe(before);
    expect(store.revision()).toBe(before);
    await store.commit([put(workload("marker"))]);
    const [first] = await take(watch, 1);
    expect(first?.object.metadata.name).toBe("marker");
    watch.close();
  });

  it("delete removes the object and returns the last stored copy; the name can be created again", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    const result = await store.commit([{ type: "delete", kind: "Workload", name: "web" }]);
    expect(result.results[0]).toMatchObject({ action: "deleted", object: { spec: { image: "a" } } });
    expect(await store.get("Workload", "web")).toBeUndefined();
    const again = await store.commit([put(workload("web", { image: "b" }))]);
    expect(again.results[0]?.object.metadata.generation).toBe(1);
  });

  it("delete of a missing object, or expectedVersion on one, is NotFound", async () => {
    const del = await rejection(store.commit([{ type: "delete", kind: "Workload", name: "nope" }]));
    expect(isCatenaError(del, ErrorCode.NotFound)).toBe(true);
    expect(
      isCatenaError(await rejection(store.commit([put(workload("web"), "3")])), ErrorCode.NotFound),
    ).toBe(true);
  });

  it("two ops on one object, an unknown kind or an empty name are Invalid", async () => {
    const dup = await rejection(
      store.commit([put(workload("web")), { type: "delete", kind: "Workload", name: "web" }]),
    );
    expect(isCatenaError(dup, ErrorCode.Invalid)).toBe(true);
    const bad = { ...workload("web"), kind: "Nope" } as unknown as Resource;
    expect(isCatenaError(await rejection(store.commit([put(bad)])), ErrorCode.Invalid)).toBe(true);
    expect(isCatenaError(await rejection(store.commit([put(workload(""))])), ErrorCode.Invalid)).toBe(true);
  });

  it("generation: bumps on spec, not on labels (which still bump resourceVersion) or key order", async () => {
    const a = (await store.commit([put(workload("web", { a: 1, b: 2 }))])).results[0]?.object;
    const labelled = (await store.commit([put(workload("web", { a: 1, b: 2 }, { app: "web" }))])).results[0];
    expect(labelled).toMatchObject({ action: "updated", object: { metadata: { generation: 1 } } });
    expect(rv(labelled?.object)).toBeGreaterThan(rv(a));
    const reordered = await store.commit([put(workload("web", { b: 2, a: 1 }, { app: "web" }))]);
    expect(reordered.results[0]?.action).toBe("unchanged");
    const changed = await store.commit([put(workload("web", { a: 2, b: 2 }, { app: "web" }))]);
    expect(changed.results[0]?.object.metadata.generation).toBe(2);
  });

  it("two updates with the same resourceVersion: exactly one wins, the other gets Conflict", async () => {
    const { results } = await store.commit([put(workload("web", { v: 0 }))]);
    const version = results[0]?.object.metadata.resourceVersion;
    const outcomes = await Promise.allSettled([
      store.commit([put(workload("web", { v: 1 }), version)]),
      store.commit([put(workload("web", { v: 2 }), version)]),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const lost = outcomes.filter((o) => o.status === "rejected") as PromiseRejectedResult[];
    expect(lost).toHaveLength(1);
    expect(isCatenaError(lost[0]?.reason, ErrorCode.Conflict)).toBe(true);
    expect(lost[0]?.reason.details[0]).toMatchObject({
      kind: "Workload",
      name: "web",
      path: "metadata.resourceVersion",
    });
  });

  it("a batch with one failing op changes nothing: state, revision, watch", async () => {
    await store.commit([put(workload("a", { v: 1 }))]);
    const before = await store.list();
    const revision = store.revision();
    const watch = store.watch();
    const err = await rejection(
      store.commit([
        put(workload("a", { v: 2 })),
        put(workload("b")),
        { type: "delete", kind: "Workload", name: "x" },
      ]),
    );
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
    expect(store.revision()).toBe(revision);
    expect(await store.list()).toEqual(before);
    await store.commit([put(workload("marker"))]);
    const [first] = await take(watch, 1);
    expect(first?.object.metadata.name).toBe("marker");
    watch.close();
  });

  it("dryRun returns the would-be results and changes nothing", async () => {
    await store.commit([put(workload("a", { v: 1 }))]);
    const revision = store.revision();
    const watch = store.watch();
    const result = await store.commit([put(workload("a", { v: 2 })), put(workload("b"))], { dryRun: true });
    expect(result.results.map((r) => r.action)).toEqual(["updated", "created"]);
    expect(result.results[0]?.object.metadata.generation).toBe(2);
    expect(store.revision()).toBe(revision);
    expect(await store.get("Workload", "b")).toBeUndefined();
    expect(watch.buffered).toBe(0);
    watch.close();
  });

  it("setStatus replaces status, bumps resourceVersion, not generation, and emits a status change", async () => {
    const created = (await store.commit([put(workload("web", { image: "a" }))])).results[0]?.object;
    const watch = store.watch();
    const object = await store.setStatus("Workload", "web", { observedGeneration: 1, phase: "Running" });
    expect(object.status).toEqual({ observedGeneration: 1, phase: "Running" });
    expect(object.metadata.generation).toBe(1);
    expect(rv(object)).toBeGreaterThan(rv(created));
    const [change] = await take(watch, 1);
    expect(change).toMatchObject({
      type: "status",
      revision: rv(object),
      previous: { metadata: { resourceVersion: created?.metadata.resourceVersion } },
    });
    watch.close();
    // The same status again writes nothing; a put keeps the status.
    const again = await store.setStatus("Workload", "web", { observedGeneration: 1, phase: "Running" });
    expect(again.metadata.resourceVersion).toBe(object.metadata.resourceVersion);
    const { results } = await store.commit([put(workload("web", { image: "b" }))]);
    expect(results[0]?.object.status).toEqual({ observedGeneration: 1, phase: "Running" });
  });

  it("setStatus with a stale expectedVersion is Conflict; of a missing object NotFound", async () => {
    const created = (await store.commit([put(workload("web"))])).results[0]?.object;
    await store.setStatus("Workload", "web", { phase: "A" });
    const stale = await rejection(
      store.setStatus(
        "Workload",
        "web",
        { phase: "B" },
        { expectedVersion: created?.metadata.resourceVersion },
      ),
    );
    expect(isCatenaError(stale, ErrorCode.Conflict)).toBe(true);
    expect((await store.get("Workload", "web"))?.status).toEqual({ phase: "A" });
    expect(isCatenaError(await rejection(store.setStatus("Workload", "nope", {})), ErrorCode.NotFound)).toBe(
      true,
    );
  });

  it("returned objects are frozen and shared; mutating the input does not change the store", async () => {
    const input = workload("web", { ports: [80] }, { app: "web" });
    const { results } = await store.commit([put(input)]);
    (input.spec.ports as number[]).push(1);
    expect(() => (results[0]!.object.spec.ports as number[]).push(2)).toThrow(TypeError);
    const got = (await store.get("Workload", "web"))?.spec.ports as number[];
    expect(() => got.push(3)).toThrow(TypeError);
    expect(got).toEqual([80]);
  });

  it("list sorts by kind then name and filters by kind and selector", async () => {
    await store.commit([
      put(workload("b", {}, { app: "web", tier: "front" })),
      put(workload("a", {}, { app: "web", tier: "db" })),
      put(workload("c", {}, { app: "api" })),
      put(resource("Network", "z", { cidr: "127.64.0.0/16" })),
    ]);
    expect((await store.list()).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "Network/z",
      "Workload/a",
      "Workload/b",
      "Workload/c",
    ]);
    const selected = await store.list("Workload", { equals: { app: "web" }, notEquals: { tier: "db" } });
    expect(selected.map((o) => o.metadata.name)).toEqual(["b"]);
  });

  it("watch with initial replays the state as created, then the live changes, nothing twice", async () => {
    await store.commit([put(workload("a")), put(workload("b"))]);
    const watch = store.watch({ initial: true });
    await store.commit([put(workload("c"))]);
    await store.commit([{ type: "delete", kind: "Workload", name: "a" }]);
    const seen = (await take(watch, 4)).map((c) => `${c.type} ${c.object.metadata.name}`);
    expect(seen).toEqual(["created a", "created b", "created c", "deleted a"]);
    watch.close();
  });

  it("many concurrent commits are all applied, each object once", async () => {
    const n = 100;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => store.commit([put(workload(`w-${i}`, { i }))])),
    );
    expect(new Set(results.map((r) => r.revision)).size).toBe(n);
    expect(await store.list()).toHaveLength(n);
  });

  it("close waits for in-flight commits, then fails calls with Closed and ends watches", async () => {
    const watch = store.watch();
    const inflight = store.commit([put(workload("web"))]);
    const closing = store.close();
    await expect(inflight).resolves.toMatchObject({ results: [{ action: "created" }] });
    await closing;
    await store.close();
    expect(isCatenaError(await rejection(store.commit([put(workload("x"))])), ErrorCode.Closed)).toBe(true);
    expect(isCatenaError(await rejection(store.get("Workload", "web")), ErrorCode.Closed)).toBe(true);
    expect(() => store.watch()).toThrow(/closed/);
    const seen = [];
    for await (const change of watch) seen.push(change.object.metadata.name);
    expect(seen).toEqual(["web"]);
  });
});

describe("KV store", () => {
  let root: string;
  const open: KvStore[] = [];
  const openStore = async (options: { rollForwardAfterMs?: number; intentsKept?: number } = {}) => {
    const s = await openKv(root, options);
    open.push(s);
    return s;
  };
  let bucketKv: KV;

  beforeEach(async () => {
    root = uniqueRoot();
    roots.push(root);
    bucketKv = await openBucket(nc, stateBucketName(root));
  });

  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    await deleteBuckets();
  });

  it("keeps each object under <Kind>.<name> in <ROOT>_STATE; resourceVersion is the entry's revision", async () => {
    const store = await openStore();
    expect(store.bucket).toBe(`${root.toUpperCase()}_STATE`);
    const { results } = await store.commit([put(workload("web", { image: "a" }))]);
    const entry = await bucketKv.get("Workload.web");
    expect(entry?.revision).toBe(rv(results[0]?.object));
    const stored = entry?.json<StoredResource>();
    expect(stored?.spec).toEqual({ image: "a" });
    expect(stored?.metadata.resourceVersion).toBeUndefined();
  });

  it("a name that cannot be a KV key is Invalid", async () => {
    const store = await openStore();
    const err = await rejection(store.commit([put(workload("a.b"))]));
    expect(isCatenaError(err, ErrorCode.Invalid)).toBe(true);
  });

  it("two stores on one bucket: a commit on one is read from the other with the same version", async () => {
    const a = await openStore();
    const b = await openStore();
    const watch = b.watch();
    const { results } = await a.commit([put(workload("web", { image: "a" })), put(workload("api"))]);
    await b.sync();
    expect(await b.get("Workload", "web")).toEqual(results[0]?.object);
    const changes = await take(watch, 2);
    expect(changes.map((c) => [c.type, c.object.metadata.name, c.revision])).toEqual([
      ["created", "web", rv(results[0]?.object)],
      ["created", "api", rv(results[1]?.object)],
    ]);
    watch.close();
  });

  it("a commit of several objects shows on another replica all at once", async () => {
    const a = await openStore();
    const b = await openStore();
    const watch = b.watch();
    const names = Array.from({ length: 50 }, (_, i) => `w-${i}`);
    await a.commit(names.map((n) => put(workload(n))));
    const [first] = await take(watch, 1);
    expect(first?.object.metadata.name).toBe("w-0");
    // When the first change of the commit is delivered, every object of it is readable.
    expect(await b.list("Workload")).toHaveLength(50);
    watch.close();
  });

  it("concurrent commits on two replicas: all applied, conflicting ones exactly one wins", async () => {
    const a = await openStore();
    const b = await openStore();
    const both = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).commit([put(workload(`w-${i}`))])),
    );
    expect(new Set(both.map((r) => r.revision)).size).toBe(40);
    const created = (await a.commit([put(workload("web", { v: 0 }))])).results[0]?.object;
    await b.sync();
    const version = created?.metadata.resourceVersion;
    const outcomes = await Promise.allSettled([
      a.commit([put(workload("web", { v: 1 }), version)]),
      b.commit([put(workload("web", { v: 2 }), version)]),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
    expect(isCatenaError(lost.reason, ErrorCode.Conflict)).toBe(true);
    await a.sync();
    await b.sync();
    expect(await a.list()).toEqual(await b.list());
  });

  it("a reopened store loads the state, deleted names included", async () => {
    const a = await openStore();
    await a.commit([put(workload("keep", { v: 1 })), put(workload("gone"))]);
    await a.commit([{ type: "delete", kind: "Workload", name: "gone" }]);
    const revision = a.revision();
    await a.close();
    const b = await openStore();
    expect(b.revision()).toBe(revision);
    expect((await b.list()).map((o) => o.metadata.name)).toEqual(["keep"]);
    const again = await b.commit([put(workload("gone", { v: 2 }))]);
    expect(again.results[0]?.action).toBe("created");
  });

  it("an intent whose writer died before its writes is finished by another replica; nobody sees half of it", async () => {
    const store = await openStore({ rollForwardAfterMs: 300 });
    await store.commit([put(workload("a", { v: 1 }))]);
    const a = await store.get("Workload", "a");
    // A writer that wrote its intent and one of two writes, then died.
    let last = 0;
    for await (const key of await bucketKv.keys("_tx.>")) last = Math.max(last, Number(key.slice(4)));
    const object = (name: string, v: number) => ({
      apiVersion: "catena.dev/v1alpha1",
      kind: "Workload",
      metadata: { name, uid: `uid-${name}`, creationTimestamp: new Date().toISOString(), generation: v },
      spec: { v },
    });
    await bucketKv.put(
      `_tx.${last + 1}`,
      JSON.stringify({
        v: 1,
        id: "dead-writer",
        w: [
          { k: "Workload.a", e: rv(a), t: "updated", o: object("a", 2) },
          { k: "Workload.b", e: 0, t: "created", o: object("b", 1) },
        ],
      }),
      { previousSeq: 0 },
    );
    await bucketKv.put("Workload.a", JSON.stringify(object("a", 2)), { previousSeq: rv(a) });
    await new Promise((r) => setTimeout(r, 100));
    expect((await store.get("Workload", "a"))?.spec).toEqual({ v: 1 }); // held back: b is missing
    expect(await store.get("Workload", "b")).toBeUndefined();
    // A new commit waits for the roll-forward, then goes through.
    await store.commit([put(workload("c"))]);
    expect((await store.get("Workload", "a"))?.spec).toEqual({ v: 2 });
    expect((await store.get("Workload", "b"))?.spec).toEqual({ v: 1 });
    expect(await store.get("Workload", "c")).toBeDefined();
  });

  it("old intents are purged; a store opened afterwards loads the same state", async () => {
    const a = await openStore({ intentsKept: 8 });
    for (let i = 0; i < 40; i++) await a.commit([put(workload(`w-${i % 10}`, { i }))]);
    await a.commit([{ type: "delete", kind: "Workload", name: "w-3" }]);
    await new Promise((r) => setTimeout(r, 200)); // the purge runs in the background
    const intents: string[] = [];
    for await (const key of await bucketKv.keys("_tx.>")) intents.push(key);
    expect(intents.length).toBeLessThanOrEqual(8 + 1);
    const b = await openStore();
    expect(await b.list()).toEqual(await a.list());
    expect((await b.list()).map((o) => o.metadata.name)).not.toContain("w-3");
    // Numbering goes on from the last intent left.
    await b.commit([put(workload("after"))]);
    await a.sync();
    expect(await a.get("Workload", "after")).toBeDefined();
  });

  it("a commit larger than one NATS message is Invalid and writes nothing", async () => {
    const store = await openStore();
    const big = "x".repeat(2000);
    const err = await rejection(
      store.commit(Array.from({ length: 600 }, (_, i) => put(workload(`w-${i}`, { big })))),
    );
    expect(isCatenaError(err, ErrorCode.Invalid)).toBe(true);
    expect(await store.list()).toHaveLength(0);
  });
});
