// The in-process bus and the publisher's local fan-out (what the HTTP SSE endpoint reads).
import { describe, expect, it } from "vitest";
import { take, uniqueRoot } from "../../../test/support/nats.js";
import { createMemoryBus } from "./memory-bus.js";
import { createEventPublisher } from "./publisher.js";
import { eventSubject } from "./subject.js";
import type { CatenaEvent } from "./types.js";

const decoder = new TextDecoder();

describe("memory bus", () => {
  it("wildcard subscriptions receive the right events", async () => {
    const bus = createMemoryBus();
    const root = uniqueRoot();
    const all = bus.subscribe(`${root}.events.>`);
    const services = bus.subscribe(`${root}.events.service.*.*`);
    const webCreated = bus.subscribe(`${root}.events.*.web.created`);
    const otherRoot = bus.subscribe("other.events.>");
    const publisher = createEventPublisher({ bus, root, source: "catena/test" });
    const events: CatenaEvent[] = [
      { kind: "Service", name: "web", verb: "created" },
      { kind: "ServiceChain", name: "web", verb: "created" },
      { kind: "service", name: "db", verb: "deleted" },
      { kind: "firewall", name: "fw-1", verb: "denied" },
    ];
    for (const e of events) publisher.emit(e);
    await publisher.flush(1_000);

    const subjects = (msgs: { subject: string }[]) => msgs.map((m) => m.subject);
    const s = (e: CatenaEvent) => eventSubject(root, e.kind, e.name, e.verb);
    expect(subjects(await take(all, 4))).toEqual(events.map(s));
    expect(subjects(await take(services, 2))).toEqual([s(events[0]!), s(events[2]!)]);
    expect(subjects(await take(webCreated, 2))).toEqual([s(events[0]!), s(events[1]!)]);

    // Same envelope as on NATS: content type header, structured CloudEvent body.
    const again = bus.subscribe(`${root}.events.firewall.>`);
    publisher.emit({ kind: "firewall", name: "fw-1", verb: "denied", id: "x1" });
    const [msg] = await take(again, 1);
    expect(msg?.headers["content-type"]).toBe("application/cloudevents+json");
    expect(JSON.parse(decoder.decode(msg?.data))).toMatchObject({
      id: "x1",
      type: "dev.catena.firewall.denied",
    });

    await bus.close();
    // The closed bus ends its subscriptions.
    expect(await take(otherRoot, 1)).toEqual([]);
    await expect(bus.publish("a.b", new Uint8Array(), {}, "m")).rejects.toMatchObject({
      code: "CATENA_CLOSED",
    });
    await publisher.close();
  });
});

describe("publisher fan-out", () => {
  const mix: CatenaEvent[] = [
    { kind: "ServiceChain", name: "web-edge", verb: "created" },
    { kind: "Service", name: "web", verb: "created" },
    { kind: "ServiceChain", name: "web-edge", verb: "ready" },
    { kind: "xds", name: "fw-1", verb: "nacked" },
    { kind: "Service", name: "web", verb: "deleted" },
  ];

  it("subscribe with a filter receives only matching events", async () => {
    const publisher = createEventPublisher({ bus: createMemoryBus(), root: "t1", source: "s" });
    const byKind = publisher.subscribe({ kind: "service" });
    const byTypePrefix = publisher.subscribe({ type: "dev.catena.servicechain.*" });
    const byTypeExact = publisher.subscribe({ type: "dev.catena.service.created" });
    const byName = publisher.subscribe({ name: "web-edge" });
    const both = publisher.subscribe({ kind: "ServiceChain", type: "dev.catena.servicechain.ready" });
    const everything = publisher.subscribe();
    for (const e of mix) publisher.emit(e);
    // A last event per watch marks the end: what comes before it is everything it received.
    publisher.emit({ kind: "service", name: "web-edge", verb: "ready" });

    const types = async (w: AsyncIterable<{ type: string }>, n: number) =>
      (await take(w, n)).map((e) => e.type);
    expect(await types(byKind, 3)).toEqual([
      "dev.catena.service.created",
      "dev.catena.service.deleted",
      "dev.catena.service.ready",
    ]);
    expect(await types(byTypePrefix, 2)).toEqual([
      "dev.catena.servicechain.created",
      "dev.catena.servicechain.ready",
    ]);
    expect(byTypePrefix.dropped).toBe(0);
    expect(await types(byTypeExact, 1)).toEqual(["dev.catena.service.created"]);
    expect(await types(byName, 3)).toEqual([
      "dev.catena.servicechain.created",
      "dev.catena.servicechain.ready",
      "dev.catena.service.ready",
    ]);
    expect(await types(both, 1)).toEqual(["dev.catena.servicechain.ready"]);
    expect(await types(everything, 6)).toHaveLength(6);
    await publisher.close();
  });

  it("recent returns the tail, filtered and limited, oldest first", async () => {
    const publisher = createEventPublisher({
      bus: createMemoryBus(),
      root: "t1",
      source: "s",
      recentSize: 4,
    });
    for (const e of mix) publisher.emit(e);
    // Only the last 4 are kept.
    expect(publisher.recent().map((e) => `${e.subject}/${e.type}`)).toEqual([
      "web/dev.catena.service.created",
      "web-edge/dev.catena.servicechain.ready",
      "fw-1/dev.catena.xds.nacked",
      "web/dev.catena.service.deleted",
    ]);
    expect(publisher.recent(undefined, 2).map((e) => e.type)).toEqual([
      "dev.catena.xds.nacked",
      "dev.catena.service.deleted",
    ]);
    expect(publisher.recent({ kind: "service" }, 1).map((e) => e.type)).toEqual([
      "dev.catena.service.deleted",
    ]);
    expect(publisher.recent({ name: "nobody" })).toEqual([]);
    await publisher.close();
  });

  it("a slow subscriber never blocks the publisher: it loses its oldest events and sees how many", async () => {
    const publisher = createEventPublisher({
      bus: createMemoryBus(),
      root: "t1",
      source: "s",
      subscriberQueueSize: 5,
    });
    const slow = publisher.subscribe();
    for (let i = 0; i < 20; i++) publisher.emit({ kind: "qos", name: "q", verb: "throttled", id: `q${i}` });
    await publisher.flush(1_000);
    expect(publisher.stats()).toMatchObject({ emitted: 20, published: 20, dropped: 0 });
    expect(slow.dropped).toBe(15);
    expect((await take(slow, 5)).map((e) => e.id)).toEqual(["q15", "q16", "q17", "q18", "q19"]);
    await publisher.close();
  });

  it("leaving the loop unsubscribes; close ends every watch", async () => {
    const publisher = createEventPublisher({ bus: createMemoryBus(), root: "t1", source: "s" });
    const watch = publisher.subscribe();
    publisher.emit(mix[0]!);
    for await (const _ of watch) break;
    expect(watch.closed).toBe(true);
    const open = publisher.subscribe();
    await publisher.close();
    expect(await take(open, 1)).toEqual([]);
    // After close, emit is still safe: counted, not thrown.
    publisher.emit(mix[1]!);
    expect(publisher.stats().failed).toBe(1);
    await publisher.close();
    await publisher.destroy();
  });

  it("emit never throws, even for events that cannot be encoded", async () => {
    const publisher = createEventPublisher({ bus: createMemoryBus(), root: "t1", source: "s" });
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    expect(() => publisher.emit({ kind: "x", name: "y", verb: "z", data: cyclic })).not.toThrow();
    expect(() => publisher.emit({ kind: "x", name: "y", verb: "z", data: 1n })).not.toThrow();
    expect(() => publisher.emit(null as unknown as CatenaEvent)).not.toThrow();
    expect(publisher.stats()).toMatchObject({ emitted: 0, failed: 3 });
    await publisher.close();
  });

  it("options are checked eagerly with a coded error naming the field", () => {
    const bus = createMemoryBus();
    expect(() => createEventPublisher({ bus, root: "a.*", source: "s" })).toThrow(
      expect.objectContaining({ code: "CATENA_INVALID" }),
    );
    expect(() => createEventPublisher({ bus, root: "t1", source: "s", bufferSize: 0 })).toThrow(
      expect.objectContaining({
        code: "CATENA_INVALID",
        details: [expect.objectContaining({ path: "bufferSize" })],
      }),
    );
  });
});
