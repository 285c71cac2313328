// Events reach NATS as CloudEvents: a denied connection becomes dev.catena.firewall.denied on
// <root>.events.firewall.<instance>.denied with the structured-mode content type; a storm of denials is
// rate-limited, with what was held back counted in the next event.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOUDEVENTS_CONTENT_TYPE, NatsEventSink } from "../../functions/sdk/events.js";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import {
  type Backend,
  type ChainSpec,
  chainSnapshots,
  dial,
  freePort,
  publish,
  rbacAllow,
  readAll,
  sleep,
  startBackend,
  startHost,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";

const ADDR = "127.64.6.1";
const NODE = "events-fw";
const root = uniqueRoot();
let xds: XdsServer;
let host: FunctionHost;
let backend: Backend;
let nc: NatsConnection;
let port: number;
let sink: NatsEventSink;

function spec(allowed: string): ChainSpec {
  return {
    name: "ev",
    port,
    service: "web",
    placement: "separate",
    hops: [
      {
        instances: [{ id: NODE, address: ADDR }],
        filters: (sp) => [rbacAllow(sp, [{ address: allowed, prefixLen: 32 }])],
      },
    ],
    backends: [{ address: backend.address, port: backend.port }],
  };
}

beforeAll(async () => {
  nc = await connect({ servers: SHARED_NATS_URL });
  xds = await startXds();
  port = await freePort(ADDR);
  backend = await startBackend(0, "127.64.6.10");
  publish(xds, chainSnapshots(spec("127.0.0.1")), [NODE]);
  sink = new NatsEventSink({
    url: SHARED_NATS_URL,
    root,
    source: `catena/function/${NODE}`,
    logger: console,
  });
  host = await startHost({ xds, type: "firewall", nodeId: NODE, address: ADDR, events: sink });
  await host.whenReady();
  await until(() => sink.connected, "NATS connected");
});

afterAll(async () => {
  host?.destroy();
  await host?.close();
  await backend?.close();
  await xds?.close();
  await nc?.close();
});

describe("events on NATS", () => {
  it("a denied connection is a dev.catena.firewall.denied CloudEvent, rate-limited in a storm", async () => {
    const sub = nc.subscribe(`${root}.events.firewall.${NODE}.denied`);
    const received: { type: string; subject: string; data: { suppressed: number; source: string } }[] = [];
    let contentType = "";
    const reading = (async () => {
      for await (const m of sub) {
        contentType = m.headers?.get("content-type") ?? "";
        received.push(m.json());
      }
    })();
    await nc.flush();
    // 40 denials at once: at most 10 events in the second, the rest counted as suppressed.
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const s = await dial(ADDR, port, "127.0.0.9");
        await readAll(s);
      }),
    );
    await until(() => received.length >= 10, "ten events");
    await sleep(1100);
    const s = await dial(ADDR, port, "127.0.0.9");
    await readAll(s);
    await until(() => received.length >= 11, "the next second's event");
    sub.unsubscribe();
    await reading;
    expect(contentType).toBe(CLOUDEVENTS_CONTENT_TYPE);
    expect(received[0]).toMatchObject({ type: "dev.catena.firewall.denied", subject: NODE });
    expect(received[0]?.data.source).toBe("127.0.0.9");
    expect(received.slice(0, 10).every((e) => e.data.suppressed === 0)).toBe(true);
    expect(received[10]?.data.suppressed).toBe(30);
  });

  it("host events: config applied", async () => {
    const sub = nc.subscribe(`${root}.events.firewall.${NODE}.applied`, { max: 1 });
    await nc.flush();
    publish(xds, chainSnapshots(spec("127.0.0.2")), [NODE]);
    for await (const m of sub) {
      expect(m.json()).toMatchObject({ type: "dev.catena.firewall.applied" });
    }
  });
});
