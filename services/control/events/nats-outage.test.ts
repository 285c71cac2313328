// NATS going away and coming back, on private nats-servers (never the machine's).
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer, take, uniqueRoot } from "../../../test/support/nats.js";
import type { EventsLogger } from "./logger.js";
import { createNatsBus, type NatsBus } from "./nats-bus.js";
import { createEventPublisher, type EventPublisher } from "./publisher.js";
import { streamName } from "./subject.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function setup(
  server: TestNatsServer,
  publisherOptions: { bufferSize?: number; logger?: EventsLogger } = {},
) {
  const root = uniqueRoot();
  // Short timers so an outage is noticed and recovered from in test time.
  const bus: NatsBus = createNatsBus({
    servers: server.url,
    root,
    reconnectTimeWaitMs: 100,
    ackTimeoutMs: 1_000,
  });
  cleanups.push(() => bus.destroy());
  const publisher: EventPublisher = createEventPublisher({
    bus,
    root,
    source: "catena/test",
    ...publisherOptions,
  });
  cleanups.push(() => publisher.destroy());
  return { root, bus, publisher };
}

/** Every message in the stream, in stream order, via an ordered consumer. */
async function readAll(url: string, root: string): Promise<{ ids: string[]; stored: number }> {
  const nc: NatsConnection = await connect({ servers: url });
  try {
    const js = jetstream(nc);
    const stream = await js.streams.get(streamName(root));
    const stored = (await stream.info()).state.messages;
    const consumer = await js.consumers.get(streamName(root));
    const msgs = await take(await consumer.consume(), stored, 20_000);
    return { ids: msgs.map((m) => (m.json() as { id: string }).id), stored };
  } finally {
    await nc.close();
  }
}

const event = (i: number) => ({
  kind: "service",
  name: `svc-${i % 7}`,
  verb: "updated",
  id: `e-${i}`,
  data: { i },
});
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `e-${from + k}`);

describe("events across NATS outages", () => {
  it("NATS stopped and restarted while emitting: every event stored exactly once, in order", async () => {
    const server = await startNatsServer({ jetstream: true });
    cleanups.push(() => server.dispose());
    const { root, bus, publisher } = await setup(server);
    await bus.ready();

    let n = 0;
    const emitFor = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        for (let k = 0; k < 25; k++) publisher.emit(event(n++));
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    // Emitting runs on while the server goes down and comes back, twice.
    const emitting = emitFor(2_500);
    await new Promise((r) => setTimeout(r, 600));
    await server.restart({ downForMs: 300 });
    await new Promise((r) => setTimeout(r, 600));
    await server.restart({ downForMs: 50 });
    await emitting;
    await publisher.flush(20_000);

    const { ids: stored } = await readAll(server.url, root);
    expect(n).toBeGreaterThan(1_000);
    expect(stored.length).toBe(n);
    expect(stored).toEqual(ids(0, n));
    expect(publisher.stats()).toMatchObject({ emitted: n, published: n, dropped: 0, failed: 0, buffered: 0 });
    // Two reconnects, each a new round that resent what was in flight (more if an ack timed out).
    expect(bus.counters().rounds).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it("a full buffer while disconnected drops the oldest and counts them; the rest flush in order", async () => {
    const server = await startNatsServer({ jetstream: true });
    cleanups.push(() => server.dispose());
    await server.stop();
    const warnings: string[] = [];
    const logger: EventsLogger = { debug() {}, info() {}, error() {}, warn: (_f, msg) => warnings.push(msg) };
    const { root, publisher } = await setup(server, { bufferSize: 100, logger });

    for (let i = 0; i < 250; i++) publisher.emit(event(i));
    await new Promise((r) => setTimeout(r, 50));
    expect(publisher.stats()).toMatchObject({ emitted: 250, dropped: 150, buffered: 100, connected: false });
    // One line for the whole burst, not one per dropped event.
    expect(warnings).toEqual(["event buffer full; dropping the oldest events"]);

    await server.restart();
    await publisher.flush(15_000);
    expect(publisher.stats()).toMatchObject({ published: 100, dropped: 150, buffered: 0, connected: true });
    const { ids: stored } = await readAll(server.url, root);
    expect(stored).toEqual(ids(150, 250));
    expect(warnings).toEqual([
      "event buffer full; dropping the oldest events",
      "event buffer has room again; oldest events were dropped",
    ]);
  }, 30_000);

  it("starts with NATS down and publishes once it comes up", async () => {
    const server = await startNatsServer({ jetstream: true });
    cleanups.push(() => server.dispose());
    await server.stop();
    const { root, bus, publisher } = await setup(server);
    publisher.emit(event(0));
    expect(bus.status().connected).toBe(false);
    await expect(publisher.flush(300)).rejects.toMatchObject({ code: "CATENA_UNAVAILABLE" });
    await server.restart();
    await publisher.flush(10_000);
    expect((await readAll(server.url, root)).ids).toEqual(["e-0"]);
  }, 30_000);

  it("a bus closed before NATS ever answered stops trying", async () => {
    const server = await startNatsServer({ jetstream: true });
    cleanups.push(() => server.dispose());
    await server.stop();
    const root = uniqueRoot();
    const bus = createNatsBus({ servers: server.url, root, reconnectTimeWaitMs: 100 });
    await expect(bus.publish("elsewhere.a", new Uint8Array(1), {}, "m0")).rejects.toMatchObject({
      code: "CATENA_INVALID",
    });
    const pending = bus.publish(`${root}.events.a.b.c`, new Uint8Array(1), {}, "m1");
    await bus.close(100);
    await expect(pending).rejects.toMatchObject({ code: "CATENA_CLOSED" });
    await expect(bus.publish(`${root}.events.a.b.c`, new Uint8Array(1), {}, "m2")).rejects.toMatchObject({
      code: "CATENA_CLOSED",
    });
  });
});
