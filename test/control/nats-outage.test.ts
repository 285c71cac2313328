// NATS stopped and restarted while the control server takes applies: afterwards the JetStream
// stream holds a `created` event for every acknowledged apply, in apply order, each once.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { streamName } from "../../services/control/events/subject.js";
import { post, startTestControl, type TestControl } from "../support/control.js";
import { startNatsServer, type TestNatsServer, take } from "../support/nats.js";

let nats: TestNatsServer | undefined;
let control: TestControl | undefined;

afterAll(async () => {
  await control?.stop();
  await nats?.dispose();
});

describe("events across a NATS outage", () => {
  it("loses no acknowledged change", async () => {
    nats = await startNatsServer({ jetstream: true });
    control = await startTestControl({ natsUrl: nats.url });
    const acked: string[] = [];
    const apply = async (i: number) => {
      const name = `net-${i}`;
      const res = await post(control!.url, "/v1/apply", {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Network",
        metadata: { name },
        spec: { cidr: `10.${Math.floor(i / 256)}.${i % 256}.0/24` },
      });
      expect(res.status).toBe(200);
      acked.push(name);
    };
    let i = 0;
    for (; i < 40; i++) await apply(i);
    const outage = nats.restart({ signal: "SIGKILL", downForMs: 1500 });
    // Applies go on while NATS is down and while it comes back.
    const during = (async () => {
      for (const end = i + 60; i < end; i++) {
        await apply(i);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await Promise.all([outage, during]);
    for (const end = i + 20; i < end; i++) await apply(i);
    await control.server.events.flush(20_000);

    const nc = await connect({ servers: nats.url });
    try {
      // nats-server 2.9 has no multi-subject filters: read the whole stream and filter here.
      const total = (await (await jetstreamManager(nc)).streams.info(streamName(control.root))).state
        .messages;
      const consumer = await jetstream(nc).consumers.get(streamName(control.root));
      const all = await take(await consumer.consume(), total, 20_000);
      const created = all
        .map((m) => m.subject)
        .filter(
          (subject) => subject.startsWith(`${control?.root}.events.network.`) && subject.endsWith(".created"),
        )
        .map((subject) => subject.split(".")[3]);
      expect(created).toEqual(acked);
    } finally {
      await nc.close();
    }
  }, 90_000);
});
