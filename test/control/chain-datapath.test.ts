// End to end: a chain applied to the control server, run by real function hosts (functions/sdk)
// that take their listeners and clusters from it over xDS, carries TCP from a client to the
// Service's backends. Proves the two sides of "Hop resources" agree, separate and fused.
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { object } from "../support/manifest.js";

// A third octet of its own, so these addresses are nobody else's.
const NET = 66 + Math.floor(Math.random() * 100);
const ip = (n: number) => `127.66.${NET}.${n}`;
const CLIENT = "127.0.0.1";
const DENIED = "127.0.0.9";

let control: TestControl;
let backends: Server[] = [];
let hosts: FunctionHost[] = [];
let port = 0;

/** Speaks first ("backend-<i>\n", as SMTP or SSH would), then echoes. */
async function backend(i: number): Promise<Server> {
  const server = createServer((s) => {
    s.on("error", () => undefined);
    s.write(`backend-${i}\n`);
    s.pipe(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

function manifest(placement: "separate" | "fused") {
  const backendPorts = backends.map((b) => (b.address() as { port: number }).port);
  return {
    items: [
      object("Network", "e2e", { cidr: "127.66.0.0/16" }),
      object("Service", "e2e-web", {
        network: "e2e",
        ports: [{ name: "tcp", port }],
        endpoints: backendPorts.map((p) => ({ address: "127.0.0.1", port: p })),
      }),
      object("ServiceFunction", "e2e-fw", { type: "firewall" }),
      object("ServiceFunction", "e2e-qos", { type: "qos" }),
      object("ServiceFunction", "e2e-lb", { type: "loadbalancer" }),
      object("ServiceChain", "e2e", {
        service: "e2e-web",
        ingress: { port },
        placement,
        hops: [
          {
            function: "e2e-fw",
            config: { defaultAction: "deny", allow: [{ from: [{ cidr: `${CLIENT}/32` }], ports: [port] }] },
          },
          {
            function: "e2e-qos",
            config: {
              connectionsPerSecond: 1000,
              maxConnections: 100,
              bandwidth: { bytesPerSecond: 1048576 },
            },
          },
          { function: "e2e-lb", config: { policy: "round_robin" } },
        ],
      }),
    ],
  };
}

interface Condition {
  type: string;
  status: string;
  reason: string;
}

async function until(
  what: string,
  probe: () => Promise<boolean> | boolean,
  ms = 15_000,
  explain: () => Promise<string> = async () => "",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${await explain()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The chain's status and every node's xDS state, for a failure message. */
async function explainChain(): Promise<string> {
  const chain = (await getJson(control.url, "/v1/servicechains/e2e")).body as { status?: unknown };
  const nodes = (await getJson(control.url, "/v1/xds/nodes")).body;
  return JSON.stringify({ status: chain.status, nodes });
}

async function ready(): Promise<boolean> {
  const body = (await getJson(control.url, "/v1/servicechains/e2e")).body as {
    status?: { conditions?: Condition[] };
  };
  return body.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Connects from `from`, and returns what the far end said first plus the echo of `say`. */
async function roundTrip(from: string, say: string): Promise<{ banner: string; echo: string } | "closed"> {
  const s: Socket = connect({ host: ip(1), port, localAddress: from });
  let data = "";
  s.setEncoding("utf8");
  s.on("data", (d: string) => {
    data += d;
  });
  const ended = new Promise<void>((r) => {
    s.on("close", () => r());
    s.on("error", () => r());
  });
  await until("a banner or a close", () => data.includes("\n") || s.destroyed || s.readableEnded, 5000);
  if (!data.includes("\n")) {
    await ended;
    return "closed";
  }
  s.write(say);
  await until("the echo", () => data.length >= data.indexOf("\n") + 1 + say.length, 5000);
  s.destroy();
  const cut = data.indexOf("\n") + 1;
  return { banner: data.slice(0, cut), echo: data.slice(cut) };
}

beforeAll(async () => {
  backends = [await backend(0), await backend(1)];
  port = await freePort(ip(1));
  control = await startTestControl();
  const res = await post(control.url, "/v1/apply", manifest("separate"));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const start = (type: string, functionName: string, nodeId: string, address: string) =>
    startTestHost({ type, functionName, nodeId, address, xdsServers: [control.server.xdsAddr] });
  hosts = await Promise.all([
    start("firewall", "e2e-fw", "e2e-fw-1", ip(1)),
    start("qos", "e2e-qos", "e2e-qos-1", ip(2)),
    start("loadbalancer", "e2e-lb", "e2e-lb-1", ip(3)),
  ]);
});

afterAll(async () => {
  for (const h of hosts) h.destroy();
  await Promise.all(hosts.map((h) => h.close().catch(() => undefined)));
  await control?.stop();
  for (const b of backends) b.close();
});

describe.each(["separate", "fused"] as const)("a chain run by function hosts (%s)", (placement) => {
  beforeAll(async () => {
    if (placement === "fused") {
      const res = await post(control.url, "/v1/apply", manifest("fused"));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      await until(
        "the fused listener",
        () => hosts[0]?.listenerAddress("e2e/fused") !== undefined,
        15_000,
        explainChain,
      );
    }
    await until("chain Ready", ready, 15_000, explainChain);
  });

  it("carries TCP to the backends, server-first protocols included, balanced across them", async () => {
    const seen = new Set<string>();
    await until("both backends", async () => {
      const r = await roundTrip(CLIENT, "ping");
      if (r === "closed") return false;
      expect(r.echo).toBe("ping");
      seen.add(r.banner);
      return seen.size === 2;
    });
    expect([...seen].sort()).toEqual(["backend-0\n", "backend-1\n"]);
  });

  it("the firewall closes a connection from a source it does not allow, saying nothing", async () => {
    expect(await roundTrip(DENIED, "ping")).toBe("closed");
  });

  it("listeners sit where the placement says", () => {
    if (placement === "separate") {
      expect(hosts.map((h, i) => h.listenerAddress(`e2e/${i}`))).toEqual([
        { address: ip(1), port },
        { address: ip(2), port },
        { address: ip(3), port },
      ]);
    } else {
      expect(hosts[0]?.listenerAddress("e2e/fused")).toEqual({ address: ip(1), port });
      expect(hosts.map((h, i) => h.listenerAddress(`e2e/${i}`))).toEqual([undefined, undefined, undefined]);
    }
  });
});
