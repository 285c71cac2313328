import { afterEach, describe, expect, it, vi } from "vitest";
import { clusterLoadAssignment } from "../resources/cluster-load-assignment.js";
import { TYPE_URL } from "../type-urls.js";
import { Snapshot } from "./snapshot.js";
import { SnapshotCache } from "./snapshot-cache.js";

const snap = (port: number) =>
  Snapshot.from([clusterLoadAssignment({ clusterName: "web", endpoints: [{ address: "10.0.0.1", port }] })]);

describe("SnapshotCache", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a burst of setSnapshot calls within the window is published once, last one wins", () => {
    vi.useFakeTimers();
    const cache = new SnapshotCache({ debounceMs: 50 });
    const seen: Snapshot[] = [];
    cache.watch("n1", (s) => seen.push(s));
    const snaps = Array.from({ length: 100 }, (_, i) => snap(1000 + i));
    for (const s of snaps) {
      cache.setSnapshot("n1", s);
      vi.advanceTimersByTime(0.4);
    }
    expect(seen).toHaveLength(0);
    vi.advanceTimersByTime(50);
    expect(seen).toEqual([snaps[99]]);
    expect(cache.snapshot("n1")).toBe(snaps[99]);
  });

  it("a steady stream of changes is published by maxDelayMs", () => {
    vi.useFakeTimers();
    const cache = new SnapshotCache({ debounceMs: 50, maxDelayMs: 200 });
    let pushes = 0;
    cache.watch("n1", () => pushes++);
    for (let i = 0; i < 30; i++) {
      cache.setSnapshot("n1", snap(i));
      vi.advanceTimersByTime(10);
    }
    expect(pushes).toBe(1);
  });

  it("updates within one window add up", () => {
    vi.useFakeTimers();
    const cache = new SnapshotCache({ debounceMs: 50 });
    const seen: Snapshot[] = [];
    cache.watch("n1", (s) => seen.push(s));
    for (const name of ["a", "b", "c"]) {
      cache.updateSnapshot("n1", (cur) =>
        cur.update([clusterLoadAssignment({ clusterName: name, endpoints: [] })]),
      );
    }
    expect(cache.snapshot("n1")).toBeUndefined();
    vi.advanceTimersByTime(50);
    expect(seen).toHaveLength(1);
    expect([...(seen[0]?.resources(TYPE_URL.endpoint).keys() ?? [])].sort()).toEqual(["a", "b", "c"]);
  });

  it("debounce 0 publishes synchronously", () => {
    const cache = new SnapshotCache({ debounceMs: 0 });
    const seen: Snapshot[] = [];
    cache.watch("n1", (s) => seen.push(s));
    const s = snap(1);
    cache.setSnapshot("n1", s);
    expect(seen).toEqual([s]);
  });

  it("watchers of other keys are not called", () => {
    const cache = new SnapshotCache({ debounceMs: 0 });
    let calls = 0;
    cache.watch("n2", () => calls++);
    cache.setSnapshot("n1", snap(1));
    expect(calls).toBe(0);
  });

  it("cancel stops notifications", () => {
    const cache = new SnapshotCache({ debounceMs: 0 });
    let calls = 0;
    const cancel = cache.watch("n1", () => calls++);
    cancel();
    cache.setSnapshot("n1", snap(1));
    expect(calls).toBe(0);
  });

  it("bad options fail in the constructor with the field named", () => {
    expect(() => new SnapshotCache({ debounceMs: -1 })).toThrow(/debounceMs/);
  });

  it("node key defaults to node.id and can group nodes", () => {
    const node = { id: "i-1", cluster: "fw", metadata: {} };
    expect(new SnapshotCache().nodeKey(node)).toBe("i-1");
    expect(new SnapshotCache({ nodeKey: (n) => n.cluster }).nodeKey(node)).toBe("fw");
  });
});
