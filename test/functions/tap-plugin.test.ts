// A third-party function deployed by manifest: the example `tap` plugin, configured in its own
// vocabulary, runs in a chain compiled by the control server (no change there) and publishes a
// summary of each connection; a config it rejects is NACKed with the plugin's own message.
import { once } from "node:events";
import { connect, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import tap, { parseTapConfig } from "../../functions/examples/tap/index.js";
import { MemoryEventSink } from "../../functions/sdk/events.js";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { object } from "../support/manifest.js";

const NET = 1 + Math.floor(Math.random() * 200);
const ADDRESS = `127.67.${NET}.10`;

let control: TestControl;
let backend: Server;
let host: FunctionHost;
const events = new MemoryEventSink();
let port = 0;

function manifest(hopConfig: Record<string, unknown>) {
  return {
    items: [
      object("Network", "tapnet", { cidr: "127.67.0.0/16" }),
      object("Service", "tapped", {
        network: "tapnet",
        ports: [{ name: "tcp", port }],
        endpoints: [{ address: "127.0.0.1", port: (backend.address() as { port: number }).port }],
      }),
      object("ServiceFunction", "edge-tap", {
        type: "tap",
        plugin: "./functions/examples/tap/index.ts",
        config: { label: "edge" },
      }),
      object("ServiceChain", "tapped-edge", {
        service: "tapped",
        ingress: { port },
        hops: [{ function: "edge-tap", config: hopConfig }],
      }),
    ],
  };
}

async function until(what: string, probe: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  backend = createServer((s) => {
    s.on("error", () => undefined);
    s.pipe(s);
  });
  backend.listen(0, "127.0.0.1");
  await once(backend, "listening");
  const probe = createServer().listen(0, ADDRESS);
  await once(probe, "listening");
  port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  control = await startTestControl();
  const res = await post(control.url, "/v1/apply", manifest({ minBytes: 4 }));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  host = await startTestHost({
    type: "tap",
    functionName: "edge-tap",
    nodeId: "edge-tap-1",
    xdsServers: [control.server.xdsAddr],
    address: ADDRESS,
    plugins: [tap],
    events,
  });
});

afterAll(async () => {
  host?.destroy();
  await control?.stop();
  backend?.close();
});

describe("third-party function: tap", () => {
  it("parses its own vocabulary, naming each bad field", () => {
    expect(parseTapConfig({ minBytes: 10, label: "x" })).toEqual({
      ok: true,
      value: { minBytes: 10, label: "x" },
    });
    const bad = parseTapConfig({ minBytes: -1, colour: "red" });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.map((e) => e.path).sort()).toEqual(["colour", "minBytes"]);
  });

  it("runs in a chain deployed by manifest and publishes a summary per connection", async () => {
    await until("the tap listener", () => host.listenerAddress("tapped-edge/0") !== undefined);
    const s = connect({ host: ADDRESS, port });
    s.setEncoding("utf8");
    let echoed = "";
    s.on("data", (d: string) => {
      echoed += d;
    });
    s.write("hello tap");
    await until("the echo", () => echoed === "hello tap", 5000);
    s.end();
    await until("a summary event", () => events.events.some((e) => e.verb === "summarized"), 5000);
    const summary = events.events.find((e) => e.verb === "summarized");
    expect(summary).toMatchObject({ kind: "tap", name: "edge-tap-1" });
    expect(summary?.data).toMatchObject({ label: "edge", chain: "tapped-edge", bytesUp: 9, bytesDown: 9 });
  });

  it("a config the plugin rejects is NACKed with its message", async () => {
    const res = await post(control.url, "/v1/apply", manifest({ minBytes: "lots" }));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await until("a NACK", async () => {
      const nodes = (await getJson(control.url, "/v1/xds/nodes")).body as {
        items: { id: string; types: { typeUrl: string; error?: string }[] }[];
      };
      const lds = nodes.items
        .find((n) => n.id === "edge-tap-1")
        ?.types.find((t) => t.typeUrl === TYPE_URL.listener);
      return lds?.error?.includes("minBytes: must be a whole number") ?? false;
    });
  });
});
