// A three-hop chain (firewall → qos → loadbalancer) of function hosts in front of three TCP backends,
// configured by a real xDS server with resources laid out per DESIGN.md "Hop resources". Every case
// runs twice: each hop its own host (separate), and the whole chain in one host (fused).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryEventSink } from "../../functions/sdk/events.js";
import type { FunctionHost } from "../../functions/sdk/host.js";
import {
  BANNER_LENGTH,
  type Backend,
  bandwidth,
  type ChainSpec,
  chainSnapshots,
  connectionLimit,
  dial,
  freePort,
  localRateLimit,
  publish,
  rbacAllow,
  readAll,
  roundTrip,
  sha256,
  sleep,
  startBackend,
  startHost,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";

const MIB = 1024 * 1024;
const RATE = 4 * MIB;
// An eighth of a second of burst: slack for a busy event loop, which would otherwise lose rate.
const BURST = 512 * 1024;
const CLIENT = "127.0.0.1";
const DENIED_CLIENT = "127.0.0.9";

interface Placement {
  placement: "separate" | "fused";
  /** Third octet of this placement's addresses, so the two runs never share one. */
  net: number;
}

describe.each<Placement>([
  { placement: "separate", net: 1 },
  { placement: "fused", net: 2 },
])("chain of three hops ($placement)", ({ placement, net }) => {
  const ip = (n: number) => `127.64.${net}.${n}`;
  const fwInst = { id: `fw-${placement}`, address: ip(1) };
  const qosInst = { id: `qos-${placement}`, address: ip(2) };
  const lbInst = { id: `lb-${placement}`, address: ip(3) };
  const fusedInst = { id: `fused-${placement}`, address: ip(4) };
  let xds: XdsServer;
  let backends: Backend[];
  let hosts: FunctionHost[];
  let events: MemoryEventSink;
  let port: number;
  let spec: ChainSpec;
  const ingress = () => (placement === "fused" ? fusedInst.address : fwInst.address);
  const ids = placement === "fused" ? [fusedInst.id] : [fwInst.id, qosInst.id, lbInst.id];

  const chainSpec = (o: { allow: string[]; extraQos?: boolean }): ChainSpec => ({
    name: `web-${placement}`,
    port,
    service: "web",
    placement,
    hops: [
      {
        instances: [fwInst],
        filters: (sp) => [
          rbacAllow(
            sp,
            o.allow.map((a) => ({ address: a, prefixLen: 32 })),
          ),
        ],
      },
      {
        instances: [qosInst],
        filters: (sp) => [
          localRateLimit(sp, 1000),
          ...(o.extraQos ? [connectionLimit(sp, 1000)] : []),
          bandwidth(sp, RATE, BURST, "CHAIN"),
        ],
      },
      { instances: [lbInst], filters: () => [] },
    ],
    fusedInstances: [fusedInst],
    backends: backends.map((b) => ({ address: b.address, port: b.port })),
    lb: { policy: "ROUND_ROBIN", healthIntervalMs: 200 },
  });

  beforeAll(async () => {
    xds = await startXds();
    port = await freePort(ip(1));
    backends = await Promise.all([0, 1, 2].map((i) => startBackend(i, ip(10 + i))));
    spec = chainSpec({ allow: [CLIENT] });
    publish(xds, chainSnapshots(spec), ids);
    events = new MemoryEventSink();
    hosts =
      placement === "fused"
        ? [
            await startHost({
              xds,
              type: "firewall",
              nodeId: fusedInst.id,
              address: fusedInst.address,
              events,
            }),
          ]
        : await Promise.all([
            startHost({ xds, type: "firewall", nodeId: fwInst.id, address: fwInst.address, events }),
            startHost({ xds, type: "qos", nodeId: qosInst.id, address: qosInst.address, events }),
            startHost({ xds, type: "loadbalancer", nodeId: lbInst.id, address: lbInst.address, events }),
          ]);
    await Promise.all(hosts.map((h) => h.whenReady()));
    // Every endpoint passed its first health check.
    await sleep(300);
  });

  afterAll(async () => {
    for (const h of hosts ?? []) h.destroy();
    await Promise.all((hosts ?? []).map((h) => h.close()));
    await Promise.all((backends ?? []).map((b) => b.close()));
    await xds?.close();
  });

  it("10 MiB of random bytes pass intact", async () => {
    const payload = randomBytes(10 * MIB);
    const r = await roundTrip(ingress(), port, payload, CLIENT);
    expect(r.banner).toMatch(/^backend-\d\n$/);
    expect(r.echo.length).toBe(payload.length);
    expect(sha256(r.echo)).toBe(sha256(payload));
  });

  it("a server that speaks first is heard before the client sends anything", async () => {
    const s = await dial(ingress(), port, CLIENT);
    const [chunk] = (await new Promise((resolve) => s.once("data", (c: Buffer) => resolve([c])))) as [Buffer];
    expect(chunk.subarray(0, BANNER_LENGTH).toString()).toMatch(/^backend-\d\n$/);
    s.destroy();
  });

  it("connections spread over every backend (round robin)", async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await roundTrip(ingress(), port, Buffer.from("x"), CLIENT);
      expect(r.echo.toString()).toBe("x");
      seen.set(r.banner, (seen.get(r.banner) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(["backend-0\n", "backend-1\n", "backend-2\n"]);
    for (const n of seen.values()) expect(n).toBeGreaterThanOrEqual(5);
  });

  it("the last hop connects to backends from its own address", () => {
    const last = placement === "fused" ? fusedInst.address : lbInst.address;
    const peers = new Set(backends.flatMap((b) => b.peers));
    expect(peers).toEqual(new Set([last]));
  });

  it("a client from a denied source is closed with nothing sent", async () => {
    // Health probes connect too, but send nothing: count bytes, not connections.
    const before = backends.reduce((n, b) => n + b.bytesIn, 0);
    const s = await dial(ingress(), port, DENIED_CLIENT);
    const got = readAll(s);
    s.write("hello");
    expect((await got).length).toBe(0);
    s.destroy();
    expect(backends.reduce((n, b) => n + b.bytesIn, 0)).toBe(before);
    await until(
      () => events.events.some((e) => e.kind === "firewall" && e.verb === "denied"),
      "a firewall denied event",
    );
    const denied = events.events.find((e) => e.kind === "firewall" && e.verb === "denied");
    expect(denied?.data).toMatchObject({ source: DENIED_CLIENT, chain: `web-${placement}` });
  });

  it("bytes are shaped to the configured rate (within 10%)", async () => {
    // Steady state: the time between the echo's 2nd and 6th MiB (burst and start-up excluded).
    const payload = randomBytes(7 * MIB);
    const s = await dial(ingress(), port, CLIENT);
    let received = 0;
    let t2 = 0;
    let t6 = 0;
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      received += c.length;
      if (!t2 && received >= 2 * MIB) t2 = performance.now();
      if (!t6 && received >= 6 * MIB) t6 = performance.now();
    });
    const ended = new Promise((r) => s.once("end", r));
    s.end(payload);
    await ended;
    s.destroy();
    expect(sha256(Buffer.concat(chunks).subarray(BANNER_LENGTH))).toBe(sha256(payload));
    const rate = (4 * MIB) / ((t6 - t2) / 1000);
    expect(rate).toBeGreaterThan(RATE * 0.9);
    expect(rate).toBeLessThan(RATE * 1.1);
  });

  it("a config change under live traffic drops no established connection", async () => {
    const chunk = randomBytes(16 * 1024);
    let stop = false;
    const pingPong = async () => {
      const s = await dial(ingress(), port, CLIENT);
      let buffered = Buffer.alloc(0);
      let waiter: (() => void) | undefined;
      s.on("data", (c: Buffer) => {
        buffered = Buffer.concat([buffered, c]);
        waiter?.();
      });
      const need = async (n: number) => {
        while (buffered.length < n) await new Promise<void>((r) => (waiter = r));
      };
      await need(BANNER_LENGTH);
      buffered = buffered.subarray(BANNER_LENGTH);
      let rounds = 0;
      let closed = false;
      s.once("close", () => {
        closed = true;
        waiter?.();
      });
      while (!stop) {
        s.write(chunk);
        await Promise.race([need(chunk.length), new Promise((r) => s.once("close", r))]);
        if (closed) throw new Error(`connection dropped after ${rounds} rounds`);
        expect(buffered.subarray(0, chunk.length).equals(chunk)).toBe(true);
        buffered = buffered.subarray(chunk.length);
        rounds++;
      }
      s.end();
      await new Promise((r) => s.once("close", r));
      return rounds;
    };
    const live = [pingPong(), pingPong(), pingPong(), pingPong()];
    await sleep(300);
    // Add a filter to the qos hop and let a second client in through the firewall.
    publish(xds, chainSnapshots(chainSpec({ allow: [CLIENT, DENIED_CLIENT], extraQos: true })), ids);
    await until(() => events.events.some((e) => e.verb === "draining"), "a listener draining");
    let admitted = false;
    for (let i = 0; i < 50 && !admitted; i++) {
      const r = await roundTrip(ingress(), port, Buffer.from("y"), DENIED_CLIENT);
      admitted = r.echo.toString() === "y";
      if (!admitted) await sleep(50);
    }
    expect(admitted).toBe(true);
    await sleep(300);
    stop = true;
    const rounds = await Promise.all(live);
    for (const n of rounds) expect(n).toBeGreaterThan(2);
    // Back to the original config.
    publish(xds, chainSnapshots(chainSpec({ allow: [CLIENT] })), ids);
    await until(() => hosts.every((h) => h.activeConnections === 0), "old generations drained");
  });

  it("after a backend dies, no new connection goes to it once the health check has run", async () => {
    const dead = backends[2] as Backend;
    await dead.close();
    await sleep(600); // three health intervals
    for (let i = 0; i < 12; i++) {
      const r = await roundTrip(ingress(), port, Buffer.from("z"), CLIENT);
      expect(r.echo.toString()).toBe("z");
      expect(r.banner).not.toBe("backend-2\n");
    }
    await dead.restart();
  });
});
