// Two control servers on one JetStream KV bucket: what is applied to one is read from the other, and
// conflicting applies made to both at once have exactly one winner.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvStore } from "../../services/control/store/kv-store.js";
import { getJson, post, type TestControl } from "../support/control.js";
import { network, type Replicas, service, startReplicas, waitUntil } from "./replicas.js";

let replicas: Replicas;
let a: TestControl;
let b: TestControl;

interface ObjectBody {
  metadata: { resourceVersion: string; generation: number };
  spec: { endpoints: { address: string; port: number }[] };
}

beforeAll(async () => {
  replicas = await startReplicas(2);
  [a, b] = replicas.servers as [TestControl, TestControl];
});

afterAll(async () => {
  await replicas?.stop();
});

describe("two control servers on one bucket", () => {
  it("an apply to one is read from the other, with the same resourceVersion", async () => {
    const applied = await post(a.url, "/v1/apply", {
      items: [
        network("edge", "127.70.0.0/16"),
        service("web", "edge", [{ address: "127.0.0.1", port: 9001 }]),
      ],
    });
    expect(applied.status).toBe(200);
    const items = (applied.body as { items: { object: ObjectBody }[] }).items;
    const version = items[1]?.object.metadata.resourceVersion;
    const read = await waitUntil(async () => {
      const r = await getJson(b.url, "/v1/services/web");
      return r.status === 200 ? (r.body as ObjectBody) : undefined;
    }, "the service on the other server");
    // The status reconcilers may have written since: the spec is the one applied, the version no older.
    expect(read.spec.endpoints).toEqual([{ address: "127.0.0.1", port: 9001 }]);
    expect(Number(read.metadata.resourceVersion)).toBeGreaterThanOrEqual(Number(version));
    // After read barriers both servers hold the very same object. A reconciler may write status
    // between the two barriers, so the pair is retried until nothing lands in between (bounded).
    const same = await waitUntil(async () => {
      await (a.server.store as KvStore).sync();
      await (b.server.store as KvStore).sync();
      const [x, y] = [await a.server.store.get("Service", "web"), await b.server.store.get("Service", "web")];
      return JSON.stringify(x) === JSON.stringify(y) ? x : undefined;
    }, "both servers to hold the same object");
    expect(same?.spec).toEqual(read.spec);
  });

  it("concurrent conflicting applies to both servers: exactly one wins, the other gets 409", async () => {
    await (b.server.store as KvStore).sync();
    const current = (await getJson(b.url, "/v1/services/web")).body as ObjectBody;
    const version = current.metadata.resourceVersion;
    const withVersion = (port: number) => {
      const s = service("web", "edge", [{ address: "127.0.0.1", port }]);
      return { ...s, metadata: { ...s.metadata, resourceVersion: version } };
    };
    const [fromA, fromB] = await Promise.all([
      post(a.url, "/v1/apply", { items: [withVersion(9101)] }),
      post(b.url, "/v1/apply", { items: [withVersion(9202)] }),
    ]);
    expect([fromA.status, fromB.status].sort()).toEqual([200, 409]);
    const winner = fromA.status === 200 ? 9101 : 9202;
    const loser = fromA.status === 200 ? fromB : fromA;
    expect((loser.body as { error: { code: string } }).error.code).toBe("CATENA_CONFLICT");
    await (a.server.store as KvStore).sync();
    await (b.server.store as KvStore).sync();
    for (const server of [a, b]) {
      const object = await server.server.store.get("Service", "web");
      expect((object?.spec as ObjectBody["spec"] | undefined)?.endpoints).toEqual([
        { address: "127.0.0.1", port: winner },
      ]);
      expect(object?.metadata.generation).toBe(2);
    }
  });

  it("status is written once per generation, not once per replica", async () => {
    // Both reconcilers see the same change; compare-and-swap makes the second find it done.
    const watch = (a.server.store as KvStore).watch({ kinds: ["Network"] });
    const statuses: number[] = [];
    const collecting = (async () => {
      for await (const change of watch) {
        if (change.object.metadata.name === "other" && change.type === "status")
          statuses.push(change.revision);
      }
    })();
    const applied = await post(b.url, "/v1/apply", { items: [network("other", "127.71.0.0/16")] });
    expect(applied.status).toBe(200);
    await waitUntil(async () => {
      const o = await a.server.store.get("Network", "other");
      return o?.status?.observedGeneration === 1 || undefined;
    }, "the status of the new network");
    await new Promise((r) => setTimeout(r, 500));
    watch.close();
    await collecting;
    expect(statuses).toHaveLength(1);
    const object = await a.server.store.get("Network", "other");
    expect(object?.status?.conditions?.filter((c) => c.type === "Accepted")).toHaveLength(1);
  });
});
