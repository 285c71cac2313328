// QueuedWatch on its own, and store watches: order, initial replay, filters, slow consumers.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { removeTempDirs, resource, take, tempDir, workload } from "../../../test/fixtures/store/helpers.js";
import { ErrorCode, isCatenaError } from "../errors.js";
import { type EmbeddedStore, openEmbeddedStore } from "./embedded-store.js";
import type { Change, StoreOp } from "./store.js";
import { QueuedWatch } from "./watch.js";

describe("QueuedWatch", () => {
  it("delivers pushed items in order, to a waiting or a late consumer", async () => {
    const watch = new QueuedWatch<number>();
    const waiting = watch.next();
    watch.push(1);
    watch.push(2);
    watch.push(3);
    expect(await waiting).toEqual({ value: 1, done: false });
    expect(await take(watch, 2)).toEqual([2, 3]);
  });

  it("leaving a for-await loop unsubscribes", async () => {
    let stops = 0;
    const watch = new QueuedWatch<number>({ onStop: () => stops++ });
    watch.push(1);
    watch.push(2);
    for await (const item of watch) {
      expect(item).toBe(1);
      break;
    }
    expect(stops).toBe(1);
    expect(watch.push(3)).toBe(false);
    expect(await watch.next()).toEqual({ value: undefined, done: true });
    expect(await watch.closed).toBeUndefined();
  });

  it("close drops the buffer, ends a pending next, is idempotent", async () => {
    let stops = 0;
    const watch = new QueuedWatch<number>({ onStop: () => stops++ });
    const pending = watch.next();
    watch.close();
    watch.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(stops).toBe(1);
  });

  it("end delivers what is buffered, then finishes", async () => {
    const watch = new QueuedWatch<number>();
    watch.push(1);
    watch.end();
    const seen: number[] = [];
    for await (const item of watch) seen.push(item);
    expect(seen).toEqual([1]);
  });

  it("fail drops the buffer and makes the loop throw once; closed resolves to the error", async () => {
    const watch = new QueuedWatch<number>();
    watch.push(1);
    const err = new Error("gone");
    watch.fail(err);
    await expect(watch.next()).rejects.toBe(err);
    expect(await watch.next()).toEqual({ value: undefined, done: true });
    expect(await watch.closed).toBe(err);
  });

  it("overflow past maxBuffered fails the watch with Unavailable instead of blocking the producer", async () => {
    const watch = new QueuedWatch<number>({ maxBuffered: 3 });
    expect([1, 2, 3].map((i) => watch.push(i))).toEqual([true, true, true]);
    expect(watch.push(4)).toBe(false);
    expect(watch.buffered).toBe(0);
    const err = await watch.closed;
    expect(isCatenaError(err, ErrorCode.Unavailable)).toBe(true);
    await expect(watch.next()).rejects.toBe(err);
  });

  it("await using disposes (unsubscribes)", async () => {
    let stops = 0;
    {
      const watch = new QueuedWatch<number>({ onStop: () => stops++ });
      await watch[Symbol.asyncDispose]();
    }
    expect(stops).toBe(1);
  });
});

describe("store watch", () => {
  let store: EmbeddedStore;
  beforeEach(async () => {
    store = await openEmbeddedStore({ dataDir: await tempDir(), watchBufferLimit: 50 });
  });
  afterEach(async () => {
    await store.close();
    await removeTempDirs();
  });

  const put = (name: string, spec: Record<string, unknown> = {}): StoreOp => ({
    type: "put",
    object: workload(name, spec),
  });
  const summary = (c: Change) => `${c.revision} ${c.type} ${c.object.kind}/${c.object.metadata.name}`;

  it("yields changes in commit order, one revision per commit, ops in order within it", async () => {
    const watch = store.watch();
    await Promise.all([
      store.commit([put("a"), put("b")]),
      store.commit([put("a", { v: 2 })]),
      store.commit([{ type: "delete", kind: "Workload", name: "b" }]),
    ]);
    await store.setStatus("Workload", "a", { phase: "Running" });
    const changes = await take(watch, 5);
    expect(changes.map(summary)).toEqual([
      "1 created Workload/a",
      "1 created Workload/b",
      "2 updated Workload/a",
      "3 deleted Workload/b",
      "4 status Workload/a",
    ]);
    expect(changes[2]?.previous?.spec).toEqual({});
    expect(changes[2]?.object.spec).toEqual({ v: 2 });
    watch.close();
  });

  it("initial replays the current state as created, then continues live without loss or duplicates", async () => {
    await store.commit([put("b"), put("a")]);
    await store.commit([put("c")]);
    // Commits in flight while the watch starts: each must appear exactly once.
    const inflight = [store.commit([put("d")]), store.commit([put("a", { v: 2 })])];
    const watch = store.watch({ initial: true });
    const more = store.commit([put("e")]);
    await Promise.all([...inflight, more]);
    const changes = await take(watch, 6);
    expect(changes.map(summary)).toEqual([
      "2 created Workload/a",
      "2 created Workload/b",
      "2 created Workload/c",
      "3 created Workload/d",
      "4 updated Workload/a",
      "5 created Workload/e",
    ]);
    watch.close();
  });

  it("kinds filters both the replay and the live changes", async () => {
    await store.commit([
      put("w1"),
      { type: "put", object: resource("Network", "n1", { cidr: "127.64.0.0/16" }) },
    ]);
    const watch = store.watch({ kinds: ["Network"], initial: true });
    await store.commit([
      put("w2"),
      { type: "put", object: resource("Network", "n2", { cidr: "127.65.0.0/16" }) },
    ]);
    expect((await take(watch, 2)).map(summary)).toEqual(["1 created Network/n1", "2 created Network/n2"]);
    watch.close();
  });

  it("changes are frozen: a consumer cannot mutate what the store and other watchers share", async () => {
    const w1 = store.watch();
    const w2 = store.watch();
    await store.commit([put("a", { v: 1 })]);
    const [c1] = await take(w1, 1);
    expect(() => {
      if (c1) c1.object.spec.v = 99;
    }).toThrow(TypeError);
    const [c2] = await take(w2, 1);
    expect(c2?.object.spec).toEqual({ v: 1 });
    expect((await store.get("Workload", "a"))?.spec).toEqual({ v: 1 });
    w1.close();
    w2.close();
  });

  it("breaking out of the loop unsubscribes", async () => {
    await store.commit([put("a")]);
    const watch = store.watch({ initial: true });
    for await (const _ of watch) break;
    await store.commit([put("b")]);
    expect(watch.buffered).toBe(0);
    expect(await watch.closed).toBeUndefined();
  });

  it("a watcher that never reads does not slow commits; past its limit it fails with Unavailable", async () => {
    const stuck = store.watch();
    const live = store.watch();
    for (let i = 0; i < 60; i++) await store.commit([put(`w-${i}`)]);
    expect(store.revision()).toBe(60);
    const err = await stuck.closed;
    expect(isCatenaError(err, ErrorCode.Unavailable)).toBe(true);
    await expect(stuck.next()).rejects.toBe(err);
    // The other watcher, which also fell behind, failed alike; a fresh one starts from the state.
    expect(isCatenaError(await live.closed, ErrorCode.Unavailable)).toBe(true);
    const fresh = store.watch({ initial: true });
    expect(await take(fresh, 60)).toHaveLength(60);
    fresh.close();
  });
});
