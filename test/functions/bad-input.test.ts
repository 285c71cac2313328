// Hostile and broken peers against a running chain: garbage and oversized PROXY headers, peers that
// are not the previous hop, headers that never complete, half-closed connections, and a thousand
// connections opened and abandoned. The host must close what it cannot trust with nothing sent, pass
// half-closes on, stay healthy, and leak no file descriptor.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { PROXY_V2_SIGNATURE, proxyHeaderBuffer, tcpProxyHeader } from "../../functions/sdk/proxy-protocol.js";
import {
  BANNER_LENGTH,
  type Backend,
  type ChainSpec,
  chainSnapshots,
  dial,
  fdCount,
  freePort,
  publish,
  rbacAllow,
  readAll,
  roundTrip,
  sleep,
  startBackend,
  startHost,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";

const CLIENT = "127.0.0.1";

function httpStatus(addr: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${addr}${path}`, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe.each([
  { placement: "separate" as const, net: 3 },
  { placement: "fused" as const, net: 4 },
])("bad input ($placement)", ({ placement, net }) => {
  const ip = (n: number) => `127.64.${net}.${n}`;
  const hop0 = { id: `bad-fw-${placement}`, address: ip(1) };
  const hop1 = { id: `bad-lb-${placement}`, address: ip(2) };
  const fused = { id: `bad-fused-${placement}`, address: ip(4) };
  let xds: XdsServer;
  let backend: Backend;
  let hosts: FunctionHost[];
  let port: number;
  const ingress = () => (placement === "fused" ? fused.address : hop0.address);

  beforeAll(async () => {
    xds = await startXds();
    port = await freePort(ip(1));
    backend = await startBackend(0, ip(10));
    const spec: ChainSpec = {
      name: `bad-${placement}`,
      port,
      service: "web",
      placement,
      hops: [
        { instances: [hop0], filters: (sp) => [rbacAllow(sp, [{ address: CLIENT, prefixLen: 32 }])] },
        { instances: [hop1], filters: () => [] },
      ],
      fusedInstances: [fused],
      backends: [{ address: backend.address, port: backend.port }],
    };
    const ids = placement === "fused" ? [fused.id] : [hop0.id, hop1.id];
    publish(xds, chainSnapshots(spec), ids);
    const start = (inst: { id: string; address: string }, type: string) =>
      startHost({ xds, type, nodeId: inst.id, address: inst.address, proxyHeaderTimeoutMs: 300 });
    hosts =
      placement === "fused"
        ? [await start(fused, "firewall")]
        : await Promise.all([start(hop0, "firewall"), start(hop1, "loadbalancer")]);
    await Promise.all(hosts.map((h) => h.whenReady()));
  });

  afterAll(async () => {
    for (const h of hosts ?? []) h.destroy();
    await Promise.all((hosts ?? []).map((h) => h.close()));
    await backend?.close();
    await xds?.close();
  });

  /** Sends bytes to hop 1 from `from` and returns what came back before the close. */
  async function toHop1(from: string, bytes: Buffer, end = false): Promise<Buffer> {
    const s = await dial(hop1.address, port, from);
    const got = readAll(s);
    if (end) s.end(bytes);
    else s.write(bytes);
    const out = await got;
    s.destroy();
    return out;
  }

  it.runIf(placement === "separate")(
    "garbage instead of a PROXY header is closed with nothing sent",
    async () => {
      const before = backend.accepted;
      expect((await toHop1(hop0.address, Buffer.from("GET / HTTP/1.1\r\n\r\n"))).length).toBe(0);
      expect(backend.accepted).toBe(before);
    },
  );

  it.runIf(placement === "separate")("an oversized PROXY header is closed with nothing sent", async () => {
    const h = Buffer.alloc(16);
    Buffer.from(PROXY_V2_SIGNATURE).copy(h);
    h[12] = 0x21; // v2, PROXY
    h[13] = 0x11; // TCP4
    h.writeUInt16BE(4000, 14); // far beyond the 1 KiB limit
    expect((await toHop1(hop0.address, Buffer.concat([h, Buffer.alloc(4000)]))).length).toBe(0);
  });

  it.runIf(placement === "separate")(
    "a valid header from a peer that is not the previous hop is refused",
    async () => {
      const header = proxyHeaderBuffer(
        tcpProxyHeader(
          { address: CLIENT, port: 1234 },
          { address: hop0.address, port },
          { chain: "x", hop: 1 },
        ),
      );
      const before = backend.accepted;
      expect((await toHop1(CLIENT, Buffer.concat([header, Buffer.from("hi")]))).length).toBe(0);
      expect(backend.accepted).toBe(before);
    },
  );

  it.runIf(placement === "separate")(
    "a header that never completes is closed after the header timeout",
    async () => {
      const s = await dial(hop1.address, port, hop0.address);
      const got = readAll(s);
      s.write(Buffer.from(PROXY_V2_SIGNATURE).subarray(0, 8));
      const t0 = Date.now();
      expect((await got).length).toBe(0);
      expect(Date.now() - t0).toBeLessThan(3000);
      s.destroy();
    },
  );

  it("a half-closed connection still gets its whole answer", async () => {
    const s = await dial(ingress(), port, CLIENT);
    const got = readAll(s);
    s.write("half");
    await sleep(20);
    s.end("-closed");
    const out = await got;
    expect(out.subarray(BANNER_LENGTH).toString()).toBe("half-closed");
    s.destroy();
  });

  it("1,000 connections opened and abandoned leave the host healthy and leak no descriptor", async () => {
    await roundTrip(ingress(), port, Buffer.from("warm"), CLIENT);
    await until(() => hosts.every((h) => h.activeConnections === 0) && backend.sockets.size === 0, "idle");
    const before = fdCount();
    const sockets = await Promise.all(
      Array.from({ length: 1000 }, () => dial(ingress(), port, CLIENT).catch(() => undefined)),
    );
    // Some send half a request, all vanish without a goodbye.
    sockets.forEach((s, i) => {
      if (i % 2 === 0) s?.write("partial");
    });
    await sleep(50);
    for (const s of sockets) s?.destroy();
    await until(
      () => hosts.every((h) => h.activeConnections === 0) && backend.sockets.size === 0,
      () =>
        `every abandoned connection closed (host: ${hosts.map((h) => h.activeConnections)}, backend: ${backend.sockets.size})`,
      20_000,
    );
    await sleep(100);
    expect(fdCount()).toBeLessThanOrEqual(before + 2);
    for (const h of hosts) expect(await httpStatus(h.adminAddress, "/healthz")).toBe(200);
    const r = await roundTrip(ingress(), port, Buffer.from("still here"), CLIENT);
    expect(r.echo.toString()).toBe("still here");
  });
});
