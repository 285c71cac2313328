// The Store contract's rules, checked against the embedded store.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { removeTempDirs, resource, take, tempDir, workload } from "../../../test/fixtures/store/helpers.js";
import { ErrorCode, isCatenaError } from "../errors.js";
import type { Resource, StoredResource } from "../model/resource.js";
import { type EmbeddedStore, openEmbeddedStore } from "./embedded-store.js";

let store: EmbeddedStore;

beforeEach(async () => {
  store = await openEmbeddedStore({ dataDir: await tempDir() });
});

afterEach(async () => {
  await store.close();
  await removeTempDirs();
});

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

describe("commit", () => {
  it("create sets the server-written fields, generation 1 and resourceVersion = revision", async () => {
    const result = await store.commit([put(workload("web", { image: "a" }))]);
    expect(result.revision).toBe(1);
    expect(result.results[0]?.action).toBe("created");
    const object = result.results[0]?.object as StoredResource;
    expect(object.metadata).toMatchObject({ name: "web", generation: 1, resourceVersion: "1" });
    expect(object.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(object.metadata.creationTimestamp)).not.toBeNaN();
    expect(await store.get("Workload", "web")).toEqual(object);
    expect(store.revision()).toBe(1);
  });

  it("server-written fields and status in the input are ignored", async () => {
    const input = workload("web", { image: "a" });
    input.metadata = {
      ...input.metadata,
      uid: "forged",
      generation: 42,
      resourceVersion: "99",
      creationTimestamp: "2000-01-01T00:00:00Z",
    };
    input.status = { observedGeneration: 42 };
    const { results } = await store.commit([put(input)]);
    expect(results[0]?.object.metadata).toMatchObject({ generation: 1, resourceVersion: "1" });
    expect(results[0]?.object.metadata.uid).not.toBe("forged");
    expect(results[0]?.object.metadata.creationTimestamp).not.toBe("2000-01-01T00:00:00Z");
    expect(results[0]?.object.status).toBeUndefined();
  });

  it("update keeps uid and creationTimestamp and takes the new revision", async () => {
    const created = (await store.commit([put(workload("web", { image: "a" }))])).results[0]?.object;
    await store.commit([put(workload("other"))]);
    const result = await store.commit([put(workload("web", { image: "b" }))]);
    expect(result.revision).toBe(3);
    expect(result.results[0]?.action).toBe("updated");
    expect(result.results[0]?.object.metadata).toMatchObject({
      uid: created?.metadata.uid,
      creationTimestamp: created?.metadata.creationTimestamp,
      generation: 2,
      resourceVersion: "3",
    });
    expect(result.results[0]?.object.spec).toEqual({ image: "b" });
  });

  it("an identical put is unchanged: no revision bump, nothing written, no watch event", async () => {
    await store.commit([put(workload("web", { a: 1, b: { c: [1, 2] } }, { app: "web" }))]);
    const watch = store.watch();
    // Same content, other key order: still unchanged.
    const result = await store.commit([put(workload("web", { b: { c: [1, 2] }, a: 1 }, { app: "web" }))]);
    expect(result.revision).toBe(1);
    expect(result.results[0]?.action).toBe("unchanged");
    expect(result.results[0]?.object.metadata.resourceVersion).toBe("1");
    expect(store.revision()).toBe(1);
    await store.commit([put(workload("marker"))]);
    const [first] = await take(watch, 1);
    expect(first?.object.metadata.name).toBe("marker");
    watch.close();
  });

  it("delete removes the object and returns the last stored copy", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    const result = await store.commit([{ type: "delete", kind: "Workload", name: "web" }]);
    expect(result.revision).toBe(2);
    expect(result.results[0]).toMatchObject({ action: "deleted", object: { spec: { image: "a" } } });
    expect(await store.get("Workload", "web")).toBeUndefined();
  });

  it("delete of a missing object is NotFound", async () => {
    const err = await rejection(store.commit([{ type: "delete", kind: "Workload", name: "nope" }]));
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
  });

  it("expectedVersion on a missing object is NotFound", async () => {
    const err = await rejection(store.commit([put(workload("web"), "3")]));
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
  });

  it("kind and name are the identity: the same name in two kinds is two objects", async () => {
    await store.commit([put(workload("web")), put(resource("Service", "web", { network: "edge" }))]);
    expect((await store.list()).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "Service/web",
      "Workload/web",
    ]);
  });

  it("two ops on the same object in one commit are Invalid", async () => {
    const err = await rejection(
      store.commit([put(workload("web")), { type: "delete", kind: "Workload", name: "web" }]),
    );
    expect(isCatenaError(err, ErrorCode.Invalid)).toBe(true);
  });

  it("an unknown kind or an empty name is Invalid", async () => {
    const bad = { ...workload("web"), kind: "Nope" } as unknown as Resource;
    expect(isCatenaError(await rejection(store.commit([put(bad)])), ErrorCode.Invalid)).toBe(true);
    expect(isCatenaError(await rejection(store.commit([put(workload(""))])), ErrorCode.Invalid)).toBe(true);
  });
});

describe("generation", () => {
  it("bumps when the spec changes", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    const { results } = await store.commit([put(workload("web", { image: "b" }))]);
    expect(results[0]?.object.metadata.generation).toBe(2);
  });

  it("does not bump on a labels or annotations change, which still bumps resourceVersion", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    const labelled = await store.commit([put(workload("web", { image: "a" }, { app: "web" }))]);
    expect(labelled.results[0]).toMatchObject({
      action: "updated",
      object: { metadata: { generation: 1, resourceVersion: "2", labels: { app: "web" } } },
    });
    const annotated = await store.commit([
      put(
        resource("Workload", "web", { image: "a" }, { labels: { app: "web" }, annotations: { note: "x" } }),
      ),
    ]);
    expect(annotated.results[0]?.object.metadata).toMatchObject({ generation: 1, resourceVersion: "3" });
  });

  it("does not bump when only the key order of the spec differs", async () => {
    await store.commit([put(workload("web", { a: 1, b: 2 }))]);
    const { results } = await store.commit([put(workload("web", { b: 2, a: 1 }))]);
    expect(results[0]?.action).toBe("unchanged");
  });
});

describe("optimistic concurrency", () => {
  it("two updates with the same resourceVersion: exactly one wins, the other gets Conflict", async () => {
    const { results } = await store.commit([put(workload("web", { v: 0 }))]);
    const version = results[0]?.object.metadata.resourceVersion;
    const outcomes = await Promise.allSettled([
      store.commit([put(workload("web", { v: 1 }), version)]),
      store.commit([put(workload("web", { v: 2 }), version)]),
    ]);
    const won = outcomes.filter((o) => o.status === "fulfilled");
    const lost = outcomes.filter((o) => o.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const err = (lost[0] as PromiseRejectedResult).reason;
    expect(isCatenaError(err, ErrorCode.Conflict)).toBe(true);
    // The message names the object and both versions.
    expect(String(err.message)).toMatch(/Workload\/web.*1.*2/);
    expect(err.details[0]).toMatchObject({ kind: "Workload", name: "web", path: "metadata.resourceVersion" });
    expect((await store.get("Workload", "web"))?.spec).toEqual({ v: 1 });
  });

  it("a stale expectedVersion on delete is Conflict", async () => {
    await store.commit([put(workload("web", { v: 0 }))]);
    await store.commit([put(workload("web", { v: 1 }))]);
    const err = await rejection(
      store.commit([{ type: "delete", kind: "Workload", name: "web", expectedVersion: "1" }]),
    );
    expect(isCatenaError(err, ErrorCode.Conflict)).toBe(true);
  });
});

describe("atomicity", () => {
  it("a batch with one failing op changes nothing: state, revision, watch", async () => {
    await store.commit([put(workload("a", { v: 1 }))]);
    const before = await store.list();
    const watch = store.watch();
    const err = await rejection(
      store.commit([
        put(workload("a", { v: 2 })),
        put(workload("b")),
        { type: "delete", kind: "Workload", name: "missing" },
      ]),
    );
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
    expect(store.revision()).toBe(1);
    expect(await store.list()).toEqual(before);
    await store.commit([put(workload("marker"))]);
    const [first] = await take(watch, 1);
    expect(first?.object.metadata.name).toBe("marker");
    expect(first?.revision).toBe(2);
    watch.close();
  });

  it("all ops of a commit share one revision", async () => {
    const result = await store.commit([put(workload("a")), put(workload("b"))]);
    expect(result.results.map((r) => r.object.metadata.resourceVersion)).toEqual(["1", "1"]);
  });
});

describe("dryRun", () => {
  it("returns the would-be results and changes nothing", async () => {
    await store.commit([put(workload("a", { v: 1 }))]);
    const watch = store.watch();
    const result = await store.commit([put(workload("a", { v: 2 })), put(workload("b"))], { dryRun: true });
    expect(result.revision).toBe(2);
    expect(result.results.map((r) => r.action)).toEqual(["updated", "created"]);
    expect(result.results[0]?.object.metadata).toMatchObject({ generation: 2, resourceVersion: "2" });
    expect(store.revision()).toBe(1);
    expect(await store.get("Workload", "b")).toBeUndefined();
    expect((await store.get("Workload", "a"))?.spec).toEqual({ v: 1 });
    expect(watch.buffered).toBe(0);
    watch.close();
  });

  it("reports the same errors as a real commit", async () => {
    const err = await rejection(store.commit([put(workload("a"), "7")], { dryRun: true }));
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
  });
});

describe("setStatus", () => {
  it("replaces status, bumps resourceVersion, not generation, and emits a status change", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    const watch = store.watch();
    const object = await store.setStatus("Workload", "web", { observedGeneration: 1, phase: "Running" });
    expect(object.status).toEqual({ observedGeneration: 1, phase: "Running" });
    expect(object.metadata).toMatchObject({ generation: 1, resourceVersion: "2" });
    const [change] = await take(watch, 1);
    expect(change).toMatchObject({
      type: "status",
      revision: 2,
      previous: { metadata: { resourceVersion: "1" } },
    });
    watch.close();
  });

  it("status survives a put, which keeps the stored status", async () => {
    await store.commit([put(workload("web", { image: "a" }))]);
    await store.setStatus("Workload", "web", { phase: "Running" });
    const { results } = await store.commit([put(workload("web", { image: "b" }))]);
    expect(results[0]?.object.status).toEqual({ phase: "Running" });
  });

  it("the same status again writes nothing", async () => {
    await store.commit([put(workload("web"))]);
    await store.setStatus("Workload", "web", { phase: "Running" });
    const again = await store.setStatus("Workload", "web", { phase: "Running" });
    expect(again.metadata.resourceVersion).toBe("2");
    expect(store.revision()).toBe(2);
  });

  it("of a missing object is NotFound", async () => {
    const err = await rejection(store.setStatus("Workload", "nope", {}));
    expect(isCatenaError(err, ErrorCode.NotFound)).toBe(true);
  });
});

describe("isolation of returned objects", () => {
  it("returned objects are frozen: mutating one throws, and mutating the input does not change the store", async () => {
    const input = workload("web", { ports: [80] }, { app: "web" });
    const { results } = await store.commit([put(input)]);
    (input.spec.ports as number[]).push(1);
    const returned = results[0]!.object.spec.ports as number[];
    expect(() => returned.push(2)).toThrow(TypeError);
    const got = (await store.get("Workload", "web"))!.spec.ports as number[];
    expect(() => got.push(3)).toThrow(TypeError);
    const [listed] = await store.list();
    expect(() => {
      if (listed?.metadata.labels) listed.metadata.labels.app = "changed";
    }).toThrow(TypeError);
    expect(await store.get("Workload", "web")).toMatchObject({
      spec: { ports: [80] },
      metadata: { labels: { app: "web" } },
    });
  });
});

describe("list", () => {
  it("sorts by kind then name and filters by kind and selector", async () => {
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
    expect((await store.list("Network")).map((o) => o.metadata.name)).toEqual(["z"]);
  });
});

describe("close", () => {
  it("waits for in-flight commits, then fails calls with Closed; idempotent", async () => {
    const inflight = store.commit([put(workload("web"))]);
    const closing = store.close();
    await expect(inflight).resolves.toMatchObject({ revision: 1 });
    await closing;
    await store.close();
    for (const call of [
      () => store.commit([put(workload("x"))]),
      () => store.get("Workload", "web"),
      () => store.list(),
      () => store.setStatus("Workload", "web", {}),
    ]) {
      expect(isCatenaError(await rejection(call()), ErrorCode.Closed)).toBe(true);
    }
    expect(() => store.revision()).toThrow(/closed/);
    expect(() => store.watch()).toThrow(/closed/);
  });

  it("ends every watch after what was buffered", async () => {
    const watch = store.watch();
    await store.commit([put(workload("web"))]);
    await store.close();
    const seen = [];
    for await (const change of watch) seen.push(change.object.metadata.name);
    expect(seen).toEqual(["web"]);
    expect(await watch.closed).toBeUndefined();
  });

  it("destroy fails commits not yet written with Closed and watches with the error", async () => {
    const watch = store.watch();
    const first = store.commit([put(workload("a"))]); // written at once
    const second = rejection(store.commit([put(workload("b"))])); // queued behind the first write
    const boom = new Error("boom");
    await store.destroy(boom);
    await expect(first).resolves.toMatchObject({ revision: 1 });
    expect(isCatenaError(await second, ErrorCode.Closed)).toBe(true);
    expect(await watch.closed).toBe(boom);
  });
});

describe("group commit", () => {
  it("many concurrent commits are all applied, in call order, with consecutive revisions", async () => {
    const n = 200;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => store.commit([put(workload(`w-${i}`, { i }))])),
    );
    expect(results.map((r) => r.revision)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(await store.list()).toHaveLength(n);
  });

  it("a commit validates against earlier commits that are not yet durable", async () => {
    const first = store.commit([put(workload("web", { v: 1 }))]);
    const second = store.commit([put(workload("web", { v: 2 }), "1")]);
    const third = rejection(store.commit([put(workload("web", { v: 3 }), "1")]));
    await expect(first).resolves.toMatchObject({ revision: 1 });
    await expect(second).resolves.toMatchObject({ revision: 2 });
    expect(isCatenaError(await third, ErrorCode.Conflict)).toBe(true);
  });

  it("an unchanged put answers only once the commit it saw is durable", async () => {
    const first = store.commit([put(workload("web"))]);
    const second = await store.commit([put(workload("web"))]);
    expect(second.results[0]?.action).toBe("unchanged");
    expect(store.revision()).toBe(1); // readers see only durable commits
    await first;
  });
});
