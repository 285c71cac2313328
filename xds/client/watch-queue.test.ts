import { describe, expect, it } from "vitest";
import { type WatchEvent, WatchQueue } from "./watch-queue.js";

describe("WatchQueue", () => {
  it("coalesces events per name, keeping the latest, in arrival order", async () => {
    const q = new WatchQueue<number>(() => {});
    q.push({ type: "changed", name: "a", version: "1", value: 1 });
    q.push({ type: "changed", name: "b", version: "1", value: 1 });
    q.push({ type: "changed", name: "a", version: "2", value: 2 });
    const it = q[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ name: "b" });
    expect((await it.next()).value).toMatchObject({ name: "a", version: "2" });
  });

  it("waits for the next event", async () => {
    const q = new WatchQueue<number>(() => {});
    const it = q[Symbol.asyncIterator]();
    const pending = it.next();
    q.push({ type: "does-not-exist", name: "x" });
    expect((await pending).value).toEqual({ type: "does-not-exist", name: "x" });
  });

  it("leaving the loop closes the watch", async () => {
    let closed = 0;
    const q = new WatchQueue<number>(() => closed++);
    q.push({ type: "changed", name: "a", version: "1", value: 1 });
    const seen: WatchEvent<number>[] = [];
    for await (const e of q) {
      seen.push(e);
      break;
    }
    expect(seen).toHaveLength(1);
    expect(closed).toBe(1);
    expect(q.closed).toBe(true);
  });

  it("close ends a waiting iterator", async () => {
    const q = new WatchQueue<number>(() => {});
    const it = q[Symbol.asyncIterator]();
    const pending = it.next();
    q.close();
    expect((await pending).done).toBe(true);
  });
});
