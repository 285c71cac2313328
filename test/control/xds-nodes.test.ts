// Who gets what over xDS from the control server: a proxyless reader sees services; a node that
// claims the wrong type for its ServiceFunction is refused; a function instance is registered as
// addressable and sees none of the services; a NACK becomes an event, a condition and a status row.
import type { Client } from "@grpc/grpc-js";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TYPE_URL } from "../../xds/type-urls.js";
import type { DiscoveryResponse } from "../../xds/wire/discovery.js";
import { getJson, post, settled, startTestControl, type TestControl } from "../support/control.js";
import { SHARED_NATS_URL } from "../support/nats.js";
import { namesOf } from "../xds/support/fixtures.js";
import { req, sotwStream, status, xdsClient } from "../xds/support/raw-stream.js";

let control: TestControl;
let client: Client;
let nc: NatsConnection;

const MANIFEST = {
  items: [
    {
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "n" },
      spec: { cidr: "127.90.0.0/16" },
    },
    {
      apiVersion: "catena.dev/v1alpha1",
      kind: "Service",
      metadata: { name: "web" },
      spec: {
        network: "n",
        ports: [{ name: "http", port: 80 }],
        endpoints: [{ address: "127.0.0.1", port: 9001 }],
      },
    },
    {
      apiVersion: "catena.dev/v1alpha1",
      kind: "ServiceFunction",
      metadata: { name: "fw" },
      spec: { type: "firewall" },
    },
    {
      apiVersion: "catena.dev/v1alpha1",
      kind: "ServiceFunction",
      metadata: { name: "dns" },
      spec: { type: "discovery" },
    },
  ],
};

beforeAll(async () => {
  control = await startTestControl();
  nc = await connect({ servers: SHARED_NATS_URL });
  expect((await post(control.url, "/v1/apply", MANIFEST)).status).toBe(200);
  await settled(control);
  client = xdsClient(Number(control.server.xdsAddr.split(":").pop()));
});

afterAll(async () => {
  client?.close();
  await nc?.close();
  await control?.stop();
});

const names = (r: DiscoveryResponse) => namesOf(r.resources);

describe("xDS nodes", () => {
  it("a proxyless reader gets the service's assignment", async () => {
    const s = sotwStream(client);
    s.send(
      req({
        node: { id: "reader", cluster: "proxyless", metadata: {} },
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["web"],
      }),
    );
    const r = await s.next();
    expect(names(r)).toEqual(["web"]);
    s.close();
  });

  it("refuses a node whose claimed type differs from its ServiceFunction's", async () => {
    const s = sotwStream(client);
    s.send(
      req({
        node: { id: "imposter", cluster: "fw", metadata: { type: "loadbalancer" } },
        typeUrl: TYPE_URL.listener,
      }),
    );
    const end = await s.ended;
    expect(end.code).toBe(status.PERMISSION_DENIED);
    expect(end.details).toContain("ServiceFunction fw has type firewall");
  });

  it("registers a function instance as addressable, with an event, and gives it none of the services", async () => {
    const sub = nc.subscribe(`${control.root}.events.xds.fw-1.connected`, { max: 1 });
    await nc.flush(); // the server has the subscription before the event can be published
    const s = sotwStream(client);
    s.send(
      req({
        node: { id: "fw-1", cluster: "fw", metadata: { type: "firewall", address: "127.90.0.5" } },
        typeUrl: TYPE_URL.endpoint,
        resourceNames: ["web"],
      }),
    );
    for await (const m of sub) expect(m.subject).toBe(`${control.root}.events.xds.fw-1.connected`);
    const instances = (await getJson(control.url, "/v1/instances")).body as {
      items: { id: string; address: string }[];
    };
    expect(instances.items).toContainEqual(
      expect.objectContaining({ id: "fw-1", address: "127.90.0.5", function: "fw" }),
    );
    // It asked for `web` by name; its snapshot holds only its own hops, so nothing named web comes.
    const r = await s.next(1000).catch(() => undefined);
    expect(r ? names(r) : []).not.toContain("web");
    s.close();
  });

  it("turns a NACK into an event, a Programmed=False condition and a status row", async () => {
    const sub = nc.subscribe(`${control.root}.events.xds.dns-1.nacked`, { max: 1 });
    const s = sotwStream(client);
    const node = { id: "dns-1", cluster: "dns", metadata: { type: "discovery" } };
    s.send(req({ node, typeUrl: TYPE_URL.endpoint }));
    const r = await s.next();
    expect(names(r)).toContain("web");
    s.send(
      req({
        typeUrl: TYPE_URL.endpoint,
        versionInfo: "",
        responseNonce: r.nonce,
        errorDetail: { code: 3, message: "web: endpoints[0]: refused for the test" },
      }),
    );
    for await (const m of sub) {
      const event = JSON.parse(m.string()) as { type: string; data: { message: string; version: string } };
      expect(event.type).toBe("dev.catena.xds.nacked");
      expect(event.data.message).toContain("refused for the test");
      expect(event.data.version).toBe(r.versionInfo);
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      const fn = (await getJson(control.url, "/v1/servicefunctions/dns")).body as {
        status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
      };
      const programmed = fn.status?.conditions?.find((c) => c.type === "Programmed");
      if (programmed) {
        expect(programmed).toMatchObject({ status: "False", reason: "Nacked" });
        expect(programmed.message).toContain("refused for the test");
        break;
      }
      if (Date.now() > deadline) throw new Error("no Programmed condition");
      await new Promise((res) => setTimeout(res, 50));
    }
    const nodes = (await getJson(control.url, "/v1/xds/nodes")).body as {
      items: { id: string; types: { typeUrl: string; nacked?: string; error?: string }[] }[];
    };
    const eds = nodes.items.find((n) => n.id === "dns-1")?.types.find((t) => t.typeUrl === TYPE_URL.endpoint);
    expect(eds).toMatchObject({ nacked: r.versionInfo });
    expect(eds?.error).toContain("refused for the test");
    s.close();
  });
});
