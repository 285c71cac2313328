// The runtime supervising real `catena function` processes against a control server in this process:
// a SIGKILLed instance is restarted (traffic recovers, events say so), and scaling by apply under
// traffic drops no established connection.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type NatsConnection, connect as natsConnect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { ServiceSpec } from "../../services/control/model/index.js";
import type { Resource } from "../../services/control/model/resource.js";
import {
  commandLauncher,
  type DemoBackends,
  followStore,
  IpamAddressPool,
  LogMux,
  LoopbackAddressPool,
  Runtime,
  startDemoBackends,
  xdsWithdrawal,
} from "../../services/runtime/index.js";
import { silentLogger } from "../../xds/logger.js";
import { TYPE_URL } from "../../xds/type-urls.js";
import { REPO } from "../support/cli.js";
import { post, startTestControl, type TestControl } from "../support/control.js";
import { SHARED_NATS_URL } from "../support/nats.js";
import { catenaCommand, EchoConnection, httpGet, uniqueCidr, waitFor } from "./support.js";

let control: TestControl;
let backends: DemoBackends;
let runtime: Runtime;
let follower: { stop(): void; done: Promise<void> };
let nc: NatsConnection;
let documents: Resource[];
let networkCidr: string;
const logs: string[] = [];

async function chainIngress(): Promise<{ address: string; port: number } | undefined> {
  const chain = await control.server.store.get("ServiceChain", "web-edge");
  const ready = chain?.status?.conditions?.find((c) => c.type === "Ready");
  const ingress = (chain?.status as { ingress?: { address: string; port: number } } | undefined)?.ingress;
  return ready?.status === "True" ? ingress : undefined;
}

/** Applies the example with edge-lb at `replicas`. */
async function applyLbReplicas(replicas: number): Promise<void> {
  const items = documents.map((d) =>
    d.kind === "ServiceFunction" && d.metadata.name === "edge-lb"
      ? { ...d, spec: { ...(d.spec as object), replicas } }
      : d,
  );
  const res = await post(control.url, "/v1/apply", { items });
  expect(res.status).toBe(200);
}

function lbInstances(): string[] {
  return runtime
    .instances()
    .filter((i) => i.function === "edge-lb")
    .map((i) => i.id);
}

beforeAll(async () => {
  control = await startTestControl();
  nc = await natsConnect({ servers: SHARED_NATS_URL });
  backends = await startDemoBackends([
    { address: "127.0.0.1", port: 0 },
    { address: "127.0.0.1", port: 0 },
  ]);
  const text = await readFile(join(REPO, "deploy/examples/edge-chain/chain.yaml"), "utf8");
  documents = parseAllDocuments(text).map((d) => d.toJSON() as Resource);
  networkCidr = uniqueCidr();
  const edge = documents.find((d) => d.kind === "Network") as Resource;
  edge.spec = { ...edge.spec, cidr: networkCidr };
  const web = documents.find((d) => d.kind === "Service") as Resource;
  (web.spec as ServiceSpec).endpoints = backends.backends.map((b) => ({ address: b.address, port: b.port }));
  runtime = new Runtime({
    launcher: commandLauncher({
      command: catenaCommand(),
      xdsAddr: control.server.xdsAddr,
      env: {
        ...process.env,
        CATENA_NATS_URL: SHARED_NATS_URL,
        CATENA_NATS_PREFIX: control.root,
        CATENA_LOG_LEVEL: "warn",
      },
    }),
    // IPAM in the chain's Network (its range one of this test's own), as `catena up` does.
    addresses: new IpamAddressPool({
      server: control.url,
      networkOf: async () => "edge",
      node: "test",
      logger: silentLogger,
      fallback: new LoopbackAddressPool({ cidr: uniqueCidr() }),
    }),
    withdrawal: xdsWithdrawal(control.server.xds, { timeoutMs: 5000 }),
    logs: new LogMux({ format: "json", write: (line) => logs.push(line) }),
    events: control.server.events,
    backoff: { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 },
  });
  follower = followStore(runtime, control.server.store);
  await applyLbReplicas(1);
  await waitFor("the chain Ready", chainIngress, 90_000);
}, 120_000);

afterAll(async () => {
  follower?.stop();
  await runtime?.close();
  await backends?.close();
  await nc?.close();
  await control?.stop();
}, 60_000);

describe("runtime supervision", () => {
  it("kill -9 of an instance: restarted with backoff, traffic recovers, events published", async () => {
    const ingress = await waitFor("the chain Ready", chainIngress);
    await httpGet(ingress.address, ingress.port);
    const seen: string[] = [];
    const sub = nc.subscribe(`${control.root}.events.runtime.edge-fw-0.>`);
    void (async () => {
      for await (const m of sub) seen.push(m.subject.split(".").pop() as string);
    })();
    await nc.flush();

    const victim = runtime.instances().find((i) => i.id === "edge-fw-0");
    expect(victim?.pid).toBeDefined();
    process.kill(victim?.pid as number, "SIGKILL");

    const back = await waitFor(
      "edge-fw-0 restarted",
      () =>
        runtime.instances().find((i) => i.id === "edge-fw-0" && i.restarts === 1 && i.pid !== victim?.pid),
      30_000,
    );
    // Same id, same address (IPAM is idempotent per instance): the chain's ingress does not move.
    expect(back.address).toBe(victim?.address);
    expect(back.address.startsWith(networkCidr.replace(/0\/24$/, ""))).toBe(true);
    await waitFor(
      "traffic through the restarted ingress",
      () =>
        httpGet(ingress.address, ingress.port, 2000).then(
          () => true,
          () => false,
        ),
      60_000,
      100,
    );
    await waitFor(
      "exited and restarted events on NATS",
      () => seen.includes("exited") && seen.includes("restarted"),
    );
    sub.unsubscribe();
    const exited = control.server.events
      .recent({ type: "dev.catena.runtime.exited" }, 10)
      .find((e) => e.subject === "edge-fw-0");
    expect(exited?.data).toMatchObject({ signal: "SIGKILL", restarts: 1, function: "edge-fw" });
  }, 90_000);

  it("scale 1 → 3 → 1 by apply under traffic: no established connection drops, and scale-down refuses no new one", async () => {
    const ingress = await waitFor("the chain Ready", chainIngress);
    expect(lbInstances()).toEqual(["edge-lb-0"]);
    const connections: EchoConnection[] = [];
    const openSome = async (n: number) => {
      for (let i = 0; i < n; i++)
        connections.push(await EchoConnection.open(ingress.address, ingress.port, 40));
    };
    // New connections the whole time, paced well under the QoS hop's 200 per second.
    let shortOk = 0;
    const shortFailed: string[] = [];
    let traffic = true;
    let phase = "1";
    const shortLoop = (async () => {
      while (traffic) {
        await httpGet(ingress.address, ingress.port).then(
          () => shortOk++,
          (err: Error) => shortFailed.push(`${phase}: ${err.message}`),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    await openSome(3);
    phase = "1→3";
    await applyLbReplicas(3);
    await waitFor(
      "three lb instances connected",
      () => control.server.xds.instances.list("edge-lb").length === 3,
      60_000,
    );
    await waitFor("the three bound and the qos hop routing to them", () =>
      ["edge-lb-0", "edge-lb-1", "edge-lb-2", "edge-qos-0"].every((n) => {
        const type = n.startsWith("edge-lb") ? TYPE_URL.listener : TYPE_URL.endpoint;
        const t = control.server.xds.status.node(n)?.types.get(type);
        return t?.ackedVersion !== undefined && t.ackedVersion === t.sentVersion;
      }),
    );
    // Spread over the three: round robin at the qos hop.
    phase = "3";
    await openSome(6);
    await waitFor("echoes on every connection", () => connections.every((c) => c.received >= 3), 20_000);
    const lbAddress = (id: string) => runtime.instances().find((i) => i.id === id)?.address;
    const leaving = [lbAddress("edge-lb-1"), lbAddress("edge-lb-2")];
    // Established connections run through the instances about to leave: their drain is what is tested.
    const throughLeaving = backends.clients().filter((c) => leaving.includes(c)).length;
    expect(throughLeaving).toBeGreaterThan(0);

    phase = "3→1";
    await applyLbReplicas(1);
    await waitFor(
      "two lb instances withdrawn",
      () => control.server.xds.instances.list("edge-lb").length === 1,
      20_000,
    );
    expect(lbInstances()).toEqual(["edge-lb-0"]);
    // The leaving instances drain: their connections keep flowing until the clients end them.
    const before = connections.map((c) => c.received);
    await waitFor(
      "echoes after scale-down",
      () => connections.every((c, i) => c.received >= (before[i] as number) + 5),
      20_000,
    );
    await Promise.all(connections.map((c) => c.finish()));
    traffic = false;
    await shortLoop;

    for (const c of connections) {
      expect(c.dropped).toBeUndefined();
      expect(c.received).toBe(c.sent);
    }
    // New connections while new instances come up may meet one whose listener is not bound yet: the
    // compiler routes to an instance once it is connected, not once it ACKed its listener (known gap).
    const failedWhile = (p: string) => shortFailed.filter((f) => f.startsWith(`${p}:`));
    if (failedWhile("1→3").length > 0) console.info(`refused while scaling up: ${failedWhile("1→3").length}`);
    expect(shortFailed.filter((f) => !f.startsWith("1→3:"))).toEqual([]);
    expect(shortOk).toBeGreaterThan(10);
    // Once their connections ended, the drained processes exit.
    await waitFor(
      "leaving processes gone",
      () => runtime.pids().length === runtime.instances().length,
      20_000,
    );
    // The leaving instances' addresses went back to IPAM.
    const usage = (await (await fetch(`${control.url}/v1/ipam/networks/edge`)).json()) as {
      leases: { owner: string }[];
    };
    expect(usage.leases.map((l) => l.owner).sort()).toEqual([
      "cni/edge-fw-0/lo",
      "cni/edge-lb-0/lo",
      "cni/edge-qos-0/lo",
    ]);
    const scaled = control.server.events
      .recent({ type: "dev.catena.runtime.scaled" }, 20)
      .filter((e) => e.subject === "edge-lb")
      .map((e) => e.data as { from: number; to: number });
    expect(scaled).toEqual(
      expect.arrayContaining([
        { function: "edge-lb", from: 1, to: 3 },
        { function: "edge-lb", from: 3, to: 1 },
      ]),
    );
  }, 180_000);
});
