// DESIGN.md "Embedded default": NATS when one answers, else our own nats-server, else in-process.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { SHARED_NATS_URL, uniqueRoot } from "../../../test/support/nats.js";
import { connectEventBus, type EventBusConnection, natsServers } from "./connect.js";
import { freePort, probeNats } from "./nats-server-process.js";
import { createEventPublisher } from "./publisher.js";
import { streamName } from "./subject.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "catena-events-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function deadUrl(): Promise<string> {
  return `nats://127.0.0.1:${await freePort()}`;
}

function track(c: EventBusConnection): EventBusConnection {
  cleanups.push(() => c.stop());
  return c;
}

describe("connectEventBus", () => {
  it("uses NATS at natsUrl when it answers", async () => {
    const root = uniqueRoot();
    const c = track(
      await connectEventBus({
        natsUrl: SHARED_NATS_URL,
        root,
        dataDir: await tempDir(),
        startNatsServer: true,
      }),
    );
    expect(c.mode).toBe("nats");
    expect(c.description).toContain(streamName(root));
    cleanups.push(async () => {
      const nc = await connect({ servers: SHARED_NATS_URL });
      await (await jetstreamManager(nc)).streams.delete(streamName(root)).catch(() => {});
      await nc.close();
    });
    const publisher = createEventPublisher({ bus: c.bus, root, source: "t" });
    publisher.emit({ kind: "service", name: "web", verb: "created" });
    await publisher.flush(5_000);
    expect(publisher.stats().published).toBe(1);
  });

  it("takes a comma-separated list of servers (CATENA_NATS_URL of a cluster), as nats.js servers does", async () => {
    const root = uniqueRoot();
    // The first server does not answer: the probe and the connection go on to the next.
    const natsUrl = `${await deadUrl()}, ${SHARED_NATS_URL}`;
    const c = track(
      await connectEventBus({ natsUrl, root, dataDir: await tempDir(), startNatsServer: false }),
    );
    expect(c.mode).toBe("nats");
    cleanups.push(async () => {
      const nc = await connect({ servers: SHARED_NATS_URL });
      await (await jetstreamManager(nc)).streams.delete(streamName(root)).catch(() => {});
      await nc.close();
    });
    const publisher = createEventPublisher({ bus: c.bus, root, source: "t" });
    publisher.emit({ kind: "service", name: "web", verb: "created" });
    await publisher.flush(10_000);
    expect(publisher.stats().published).toBe(1);
    expect(natsServers(" nats://a:1,nats://b:2 ,")).toEqual(["nats://a:1", "nats://b:2"]);
  });

  it("starts its own nats-server with JetStream in the data directory when none answers", async () => {
    const dataDir = await tempDir();
    const root = uniqueRoot();
    const c = track(
      await connectEventBus({ natsUrl: await deadUrl(), root, dataDir, startNatsServer: true }),
    );
    expect(c.mode).toBe("embedded-nats");
    expect(c.description).toMatch(/embedded nats-server at nats:\/\/127\.0\.0\.1:\d+/);
    expect(c.description).toContain(join(dataDir, "nats"));
    const url = /nats:\/\/127\.0\.0\.1:\d+/.exec(c.description)?.[0] as string;
    expect(await probeNats(url)).toBe(true);

    const publisher = createEventPublisher({ bus: c.bus, root, source: "t" });
    publisher.emit({ kind: "service", name: "web", verb: "created" });
    await publisher.flush(10_000);
    expect(publisher.stats().published).toBe(1);

    await c.stop();
    expect(await probeNats(url)).toBe(false);
  });

  it("falls back to the in-process bus when there is no NATS and no nats-server binary", async () => {
    const c = track(
      await connectEventBus({
        natsUrl: await deadUrl(),
        root: "t1",
        dataDir: await tempDir(),
        startNatsServer: true,
        searchPath: "",
      }),
    );
    expect(c.mode).toBe("in-process");
    expect(c.description).toMatch(/in-process/);
  });

  it("without the embedded default (catena control) it waits for NATS rather than going in-process", async () => {
    const c = track(
      await connectEventBus({
        natsUrl: await deadUrl(),
        root: "t1",
        dataDir: await tempDir(),
        startNatsServer: false,
        allowInProcess: false,
      }),
    );
    expect(c.mode).toBe("nats");
    expect(c.bus.status().connected).toBe(false);
    expect(c.description).toMatch(/not answering yet/);
  });
});
