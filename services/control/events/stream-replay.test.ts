// The contract as an integrator sees it: plain nats.js on `<root>.events.>`, the cloudevents SDK,
// and a JetStream ordered consumer replaying the stream afterwards. Against the machine's NATS.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { HTTP, CloudEvent as SdkCloudEvent } from "cloudevents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHARED_NATS_URL, take, uniqueRoot } from "../../../test/support/nats.js";
import { createNatsBus, type NatsBus } from "./nats-bus.js";
import { createEventPublisher, type EventPublisher } from "./publisher.js";
import { streamName } from "./subject.js";

const root = uniqueRoot();
let nc: NatsConnection;
let bus: NatsBus;
let publisher: EventPublisher;

beforeAll(async () => {
  nc = await connect({ servers: SHARED_NATS_URL });
  bus = createNatsBus({ servers: SHARED_NATS_URL, root });
  await bus.ready();
  publisher = createEventPublisher({ bus, root, source: "catena/test" });
});

afterAll(async () => {
  await publisher?.close();
  await bus?.close();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(streamName(root)).catch(() => {});
  await nc?.close();
});

const changes = [
  {
    kind: "ServiceChain",
    name: "web-edge",
    verb: "created",
    id: "ServiceChain/web-edge/1/created",
    data: { r: 1 },
  },
  {
    kind: "ServiceChain",
    name: "web-edge",
    verb: "updated",
    id: "ServiceChain/web-edge/2/updated",
    data: { r: 2 },
  },
  {
    kind: "ServiceChain",
    name: "web-edge",
    verb: "deleted",
    id: "ServiceChain/web-edge/3/deleted",
    data: { r: 3 },
  },
];

describe("events on NATS", () => {
  it("a plain nats.js subscriber receives CloudEvents in structured mode, in order", async () => {
    const sub = nc.subscribe(`${root}.events.>`);
    await nc.flush();
    const received = take(sub, 3);
    for (const c of changes) publisher.emit(c);
    await publisher.flush(5_000);
    const msgs = await received;

    expect(msgs.map((m) => m.subject)).toEqual([
      `${root}.events.servicechain.web-edge.created`,
      `${root}.events.servicechain.web-edge.updated`,
      `${root}.events.servicechain.web-edge.deleted`,
    ]);
    for (const [i, m] of msgs.entries()) {
      expect(m.headers?.get("content-type")).toBe("application/cloudevents+json");
      expect(m.headers?.get("Nats-Msg-Id")).toBe(changes[i]?.id);
      const json = m.string();
      // Both SDK entry points: the constructor (strict validation) and the structured-mode HTTP parser.
      const direct = new SdkCloudEvent(JSON.parse(json));
      const viaHttp = HTTP.toEvent({
        headers: { "content-type": "application/cloudevents+json" },
        body: json,
      });
      for (const ce of [direct, Array.isArray(viaHttp) ? viaHttp[0] : viaHttp]) {
        expect(ce?.specversion).toBe("1.0");
        expect(ce?.type).toBe(`dev.catena.servicechain.${changes[i]?.verb}`);
        expect(ce?.subject).toBe("web-edge");
        expect(ce?.source).toBe("catena/test");
        expect(ce?.id).toBe(changes[i]?.id);
        expect(ce?.datacontenttype).toBe("application/json");
        expect(ce?.data).toEqual(changes[i]?.data);
      }
    }
    expect(publisher.stats()).toMatchObject({ emitted: 3, published: 3, dropped: 0, failed: 0, buffered: 0 });
  });

  it("a JetStream ordered consumer replays them from the stream, in order", async () => {
    const js = jetstream(nc);
    const consumer = await js.consumers.get(streamName(root));
    const messages = await consumer.consume();
    const replayed = await take(messages, 3);
    expect(replayed.map((m) => m.subject.split(".").pop())).toEqual(["created", "updated", "deleted"]);
    expect(replayed.map((m) => (m.json() as { id: string }).id)).toEqual(changes.map((c) => c.id));
    expect(replayed.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it("the same id emitted twice is stored once (replicas publishing the same change)", async () => {
    publisher.emit(changes[0] as (typeof changes)[0]);
    await publisher.flush(5_000);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streamName(root));
    expect(info.state.messages).toBe(3);
    expect(info.config.duplicate_window).toBe(120 * 1e9);
    expect(info.config.max_age).toBe(7 * 24 * 3600 * 1e9);
    expect(info.config.max_bytes).toBe(1024 ** 3);
    expect(info.config.subjects).toEqual([`${root}.events.>`]);
  });
});
