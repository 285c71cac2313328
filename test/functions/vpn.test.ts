// A VPN hop end to end: instance A of vpn-a tunnels chain traffic as HTTP/2 CONNECT streams over mutual
// TLS 1.3 to instance B of vpn-b, whose terminator routes each stream by authority to its exit cluster.
// Real sockets, a real xDS server serving resources laid out per DESIGN.md "VPN hops, tunnels and
// secrets", certificates from the mesh CA for the CSRs the instances sent in their node metadata, and
// events on the machine's NATS.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventSink,
  type HostEvent,
  MemoryEventSink,
  NatsEventSink,
} from "../../functions/sdk/events.js";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { decodeProxyHeader } from "../../functions/sdk/proxy-protocol.js";
import { silentLogger, TYPE_URL } from "../../xds/index.js";
import { SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";
import {
  BANNER_LENGTH,
  type Backend,
  dial,
  freePort,
  readAll,
  roundTrip,
  sha256,
  sleep,
  startBackend,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";
import {
  clientCertificate,
  csrOf,
  expiredWindow,
  initiatorResources,
  publishFor,
  type RecordingRelay,
  secretResources,
  spiffeId,
  startCa,
  startRecordingRelay,
  startVpnHost,
  type TestCa,
  terminatorResources,
  tryConnect,
  type VpnInstance,
} from "./support/vpn.js";

const MIB = 1024 * 1024;
const ip = (n: number) => `127.77.1.${n}`;
const A: VpnInstance = { fn: "vpn-a", id: "vpn-a-1", address: ip(1) };
const B: VpnInstance = { fn: "vpn-b", id: "vpn-b-1", address: ip(2) };
const C: VpnInstance = { fn: "vpn-c", id: "vpn-c-1", address: ip(3) };
const CLIENT = ip(20);

/** Both a memory sink (assertions) and NATS (the real bus). */
class TeeSink implements EventSink {
  constructor(readonly sinks: EventSink[]) {}
  emit(e: HostEvent): void {
    for (const s of this.sinks) s.emit(e);
  }
  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}

/** A next hop that reads the PROXY v2 header the exit sends, then echoes. */
interface ProxyCapture {
  server: Server;
  port: number;
  headers: ReturnType<typeof decodeProxyHeader>[];
}

async function startProxyCapture(address: string): Promise<ProxyCapture> {
  const c: ProxyCapture = { server: createServer(), port: 0, headers: [] };
  c.server = createServer((s: Socket) => {
    s.on("error", () => s.destroy());
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const r = decodeProxyHeader(buf);
      if (r.state === "need-more") return;
      s.off("data", onData);
      c.headers.push(r);
      if (r.state !== "done") {
        s.destroy();
        return;
      }
      s.write(buf.subarray(r.headerLength));
      s.pipe(s);
    };
    s.on("data", onData);
  });
  c.server.listen(0, address);
  await once(c.server, "listening");
  c.port = (c.server.address() as { port: number }).port;
  return c;
}

describe("vpn: A tunnels to B over mutual TLS 1.3 + HTTP/2 CONNECT", () => {
  const root = uniqueRoot();
  let xds: XdsServer;
  let ca: TestCa;
  let backend: Backend;
  let capture: ProxyCapture;
  let relay: RecordingRelay;
  let a: FunctionHost;
  let b: FunctionHost;
  let c: FunctionHost;
  let nc: NatsConnection;
  const eventsA = new MemoryEventSink();
  const eventsB = new MemoryEventSink();
  let port: number; // chain "sec": A → B → backend
  let relayedPort: number; // chain "relayed": A → relay → B → backend
  let ppPort: number; // chain "pp": A → B → PROXY-capturing next hop
  let tunnelPort: number;
  let warming: { ready: boolean; unbound: string };
  let window = 0;

  const resourcesA = () => [
    ...initiatorResources({
      chain: "sec",
      port,
      service: "web",
      me: A,
      peerFn: B.fn,
      endpoints: [{ address: B.address, port: tunnelPort }],
      authority: `web:${port}`,
    }),
    ...initiatorResources({
      chain: "relayed",
      port: relayedPort,
      service: "web",
      me: A,
      peerFn: B.fn,
      endpoints: [{ address: relay.address, port: relay.port }],
      authority: `web:${relayedPort}`,
    }),
    ...initiatorResources({
      chain: "pp",
      port: ppPort,
      service: "db",
      me: A,
      peerFn: B.fn,
      endpoints: [{ address: B.address, port: tunnelPort }],
      authority: `db:${ppPort}`,
    }),
  ];
  const resourcesB = () =>
    terminatorResources({
      me: B,
      tunnelPort,
      from: [A.fn],
      routes: [
        {
          chain: "sec",
          hop: 0,
          authority: `web:${port}`,
          backends: [{ address: backend.address, port: backend.port }],
        },
        {
          chain: "relayed",
          hop: 0,
          authority: `web:${relayedPort}`,
          backends: [{ address: backend.address, port: backend.port }],
        },
        {
          chain: "pp",
          hop: 0,
          authority: `db:${ppPort}`,
          backends: [{ address: ip(11), port: capture.port }],
          proxyProtocol: true,
        },
      ],
    });
  // vpn-c is configured to tunnel to B, but B only lets vpn-a in.
  const resourcesC = () =>
    initiatorResources({
      chain: "sec",
      port,
      service: "web",
      me: C,
      peerFn: B.fn,
      endpoints: [{ address: B.address, port: tunnelPort }],
      authority: `web:${port}`,
    });

  /** Issues every instance a certificate for a new window and publishes it. */
  async function pushCertificates(): Promise<void> {
    window++;
    const w = ca.window(window);
    const [ca1, cb, cc] = await Promise.all(
      [A, B, C].map(async (i) => ca.ca.issue(await csrOf(xds, i.id), spiffeId(i.fn, i.id), w)),
    );
    publishFor(xds, A.id, [
      ...resourcesA(),
      ...secretResources(A, (ca1 as { certPem: string }).certPem, ca.ca.rootPem),
    ]);
    publishFor(xds, B.id, [
      ...resourcesB(),
      ...secretResources(B, (cb as { certPem: string }).certPem, ca.ca.rootPem),
    ]);
    publishFor(xds, C.id, [
      ...resourcesC(),
      ...secretResources(C, (cc as { certPem: string }).certPem, ca.ca.rootPem),
    ]);
  }

  beforeAll(async () => {
    nc = await connect({ servers: SHARED_NATS_URL });
    xds = await startXds();
    ca = await startCa();
    port = await freePort(A.address);
    relayedPort = await freePort(A.address);
    ppPort = await freePort(A.address);
    tunnelPort = await freePort(B.address);
    backend = await startBackend(0, ip(10));
    capture = await startProxyCapture(ip(11));
    relay = await startRecordingRelay(ip(5), { address: B.address, port: tunnelPort });
    // Config first, secrets later: B's tunnel listener must wait for them.
    publishFor(xds, A.id, resourcesA());
    publishFor(xds, B.id, resourcesB());
    publishFor(xds, C.id, resourcesC());
    const nats = new NatsEventSink({
      url: SHARED_NATS_URL,
      root,
      source: `catena/function/${B.id}`,
      logger: silentLogger,
    });
    await until(() => nats.connected, "NATS connected");
    [a, b, c] = await Promise.all([
      startVpnHost({ xds, me: A, events: eventsA, tunnelKeepaliveMs: 300 }),
      startVpnHost({ xds, me: B, events: new TeeSink([eventsB, nats]) }),
      startVpnHost({ xds, me: C }),
    ]);
    await Promise.all([A, B, C].map((i) => csrOf(xds, i.id)));
    await sleep(300);
    warming = {
      ready: b.ready,
      unbound: await b.whenReady(1).then(
        () => "",
        (e: Error) => e.message,
      ),
    };
    await pushCertificates();
    await Promise.all([a, b, c].map((h) => h.whenReady()));
  });

  afterAll(async () => {
    for (const h of [a, b, c]) h?.destroy();
    await Promise.all([a, b, c].map((h) => h?.close()));
    await relay?.close();
    await backend?.close();
    await new Promise((r) => capture?.server.close(r));
    await xds?.close();
    await ca?.close();
    await nc?.close();
  });

  it("the tunnel listener waited for its secrets (ACKed, not bound, not ready), then bound", () => {
    expect(warming.ready).toBe(false);
    expect(warming.unbound).toMatch(/vpn\/\d+: waiting for secrets/);
    expect(b.listenerAddress(`vpn/${tunnelPort}`)).toEqual({ address: B.address, port: tunnelPort });
    const lt = xds.server.status.node(B.id)?.types.get(TYPE_URL.listener);
    expect(lt?.errorDetail).toBeUndefined();
  });

  it("the instances sent their CSR in node metadata", async () => {
    expect(await csrOf(xds, A.id)).toMatch(/-----BEGIN CERTIFICATE REQUEST-----/);
  });

  it("10 MiB pass intact, and concurrent connections share one TLS connection", async () => {
    const payload = randomBytes(10 * MIB);
    const r = await roundTrip(A.address, port, payload, CLIENT);
    expect(r.banner).toBe("backend-0\n");
    expect(r.echo.length).toBe(payload.length);
    expect(sha256(r.echo)).toBe(sha256(payload));
    const sessionsBefore = b.tunnelStats(`vpn/${tunnelPort}`)?.sessions ?? 0;
    const small = await Promise.all(
      Array.from({ length: 12 }, (_, i) => roundTrip(A.address, port, Buffer.from(`conn-${i}`), CLIENT)),
    );
    for (const [i, s] of small.entries()) expect(s.echo.toString()).toBe(`conn-${i}`);
    expect(b.tunnelStats(`vpn/${tunnelPort}`)?.sessions).toBe(sessionsBefore);
    expect(a.tunnelSessions(`sec/0/next`)).toEqual({ opened: 1, open: 1 });
    expect(b.tunnelStats(`vpn/${tunnelPort}`)?.streams).toBeGreaterThanOrEqual(13);
  });

  it("a server that speaks first is heard before the client sends anything", async () => {
    const s = await dial(A.address, port, CLIENT);
    const [chunk] = (await once(s, "data")) as [Buffer];
    expect(chunk.subarray(0, BANNER_LENGTH).toString()).toBe("backend-0\n");
    s.destroy();
  });

  it("the exit writes PROXY v2 with the original client (x-catena-downstream) and TLVs chain, hop+1", async () => {
    const s = await dial(A.address, ppPort, CLIENT);
    const got: Buffer[] = [];
    s.on("data", (d: Buffer) => got.push(d));
    s.write("hello");
    await until(() => Buffer.concat(got).toString() === "hello", "the echo through the next hop");
    const h = capture.headers.at(-1);
    expect(h?.state).toBe("done");
    if (h?.state !== "done") return;
    expect(h.header.source).toEqual({ address: CLIENT, port: s.localPort });
    expect(h.header.destination?.port).toBe(ppPort);
    expect(h.header.chain).toBe("pp");
    expect(h.header.hop).toBe(1);
    s.destroy();
  });

  it("a TCP relay between A and B never sees the client's bytes in clear", async () => {
    const marker = `MARKER-${randomBytes(8).toString("hex")}`;
    const r = await roundTrip(A.address, relayedPort, Buffer.from(marker.repeat(100)), CLIENT);
    expect(r.echo.toString()).toBe(marker.repeat(100));
    expect(relay.connections).toBeGreaterThanOrEqual(1);
    const seen = relay.seen();
    expect(seen.length).toBeGreaterThan(marker.length * 100);
    expect(seen.includes(marker)).toBe(false);
    expect(seen.includes("backend-0")).toBe(false);
  });

  describe("refusals at B", () => {
    const authority = () => `web:${port}`;

    it("a valid vpn-a certificate is let in (the control case); a peer that vanishes leaves nothing open", async () => {
      const backendBefore = backend.sockets.size;
      const bBefore = b.activeConnections;
      const cert = await clientCertificate(ca.ca, spiffeId(A.fn, "probe"), ca.window(0));
      const r = await tryConnect(B.address, tunnelPort, authority(), {
        certPem: cert.certPem,
        keyPem: cert.identity.privateKeyPem,
        caPem: ca.ca.rootPem,
      });
      expect(r).toMatchObject({ ok: true, status: 200 });
      // tryConnect destroyed its session after the 200: B closes the stream's upstream and the socket.
      await until(
        () => backend.sockets.size === backendBefore && b.activeConnections === bBefore,
        () =>
          `B's state back (backend ${backend.sockets.size}/${backendBefore}, B ${b.activeConnections}/${bBefore})`,
      );
    });

    it("an unknown authority gets 404", async () => {
      const cert = await clientCertificate(ca.ca, spiffeId(A.fn, "probe"), ca.window(0));
      const r = await tryConnect(B.address, tunnelPort, "nowhere:1", {
        certPem: cert.certPem,
        keyPem: cert.identity.privateKeyPem,
        caPem: ca.ca.rootPem,
      });
      expect(r).toMatchObject({ ok: false, status: 404 });
    });

    it("no client certificate: refused", async () => {
      const before = b.tunnelStats(`vpn/${tunnelPort}`)?.refused ?? 0;
      const r = await tryConnect(B.address, tunnelPort, authority(), { caPem: ca.ca.rootPem });
      expect(r.ok).toBe(false);
      expect(r.status).toBeUndefined();
      await until(
        () => (b.tunnelStats(`vpn/${tunnelPort}`)?.refused ?? 0) > before,
        "B counting the refusal",
      );
    });

    it("a certificate from a foreign CA: refused", async () => {
      const foreign = await startCa();
      try {
        const cert = await clientCertificate(foreign.ca, spiffeId(A.fn, "intruder"), foreign.window(0));
        const r = await tryConnect(B.address, tunnelPort, authority(), {
          certPem: cert.certPem,
          keyPem: cert.identity.privateKeyPem,
          caPem: ca.ca.rootPem,
        });
        expect(r.ok).toBe(false);
        expect(r.status).toBeUndefined();
      } finally {
        await foreign.close();
      }
    });

    it("an expired mesh certificate: refused", async () => {
      const cert = await clientCertificate(ca.ca, spiffeId(A.fn, "stale"), expiredWindow());
      const r = await tryConnect(B.address, tunnelPort, authority(), {
        certPem: cert.certPem,
        keyPem: cert.identity.privateKeyPem,
        caPem: ca.ca.rootPem,
      });
      expect(r.ok).toBe(false);
      expect(r.status).toBeUndefined();
    });

    it("a mesh certificate of another function (vpn-c): refused, with a refused event on NATS", async () => {
      const sub = nc.subscribe(`${root}.events.vpn.${B.id}.refused`);
      const seen: Record<string, unknown>[] = [];
      void (async () => {
        for await (const m of sub) seen.push(m.json<Record<string, unknown>>());
      })();
      await nc.flush();
      // Through the real instance C: its connections die at B, so its clients are closed.
      const r = await roundTrip(C.address, port, Buffer.from("let me in"), CLIENT);
      expect(r.echo.length).toBe(0);
      expect(r.banner).toBe("");
      await until(
        () => seen.some((e) => (e.data as { spiffeId?: string })?.spiffeId === spiffeId(C.fn, C.id)),
        () => `a refused event for vpn-c (got ${JSON.stringify(seen)})`,
      );
      const e = seen.find((x) => (x.data as { spiffeId?: string })?.spiffeId === spiffeId(C.fn, C.id));
      expect(e).toMatchObject({ type: "dev.catena.vpn.refused", subject: B.id });
      const data = (e?.data ?? {}) as { peer?: string; reason?: string };
      expect(data.peer).toMatch(new RegExp(`^${C.address.replaceAll(".", "\\.")}:\\d+$`));
      expect(data.reason).toMatch(/not allowed/);
      sub.unsubscribe();
      // The initiating side reports it too.
      expect(c.tunnelSessions("sec/0/next")?.open).toBe(0);
    });

    it("garbage on the tunnel port closes that connection only; other tunnels carry on", async () => {
      const live = await dial(A.address, port, CLIENT);
      const got: Buffer[] = [];
      live.on("data", (d: Buffer) => got.push(d));
      await until(() => Buffer.concat(got).length >= BANNER_LENGTH, "the banner");
      // Random bytes that look like a handshake record, and then plain HTTP/1.1: each closed at once.
      const junk = await dial(B.address, tunnelPort, ip(21));
      const closed = readAll(junk);
      const garbage = randomBytes(64 * 1024);
      garbage[0] = 0x16;
      junk.write(garbage);
      await closed;
      const plain = await dial(B.address, tunnelPort, ip(21));
      const closed2 = readAll(plain);
      plain.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await closed2;
      live.write("still here");
      await until(
        () => Buffer.concat(got).subarray(BANNER_LENGTH).toString() === "still here",
        "the live tunnel",
      );
      live.destroy();
      const r = await roundTrip(A.address, port, Buffer.from("after"), CLIENT);
      expect(r.echo.toString()).toBe("after");
    });
  });

  it("certificates rotated twice under load: no connection dropped, data intact, old sessions drained", async () => {
    const chunk = randomBytes(32 * 1024);
    let stop = false;
    const pingPong = async () => {
      const s = await dial(A.address, port, CLIENT);
      let buffered = Buffer.alloc(0);
      let waiter: (() => void) | undefined;
      let closed = false;
      s.on("data", (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        waiter?.();
      });
      s.once("close", () => {
        closed = true;
        waiter?.();
      });
      const need = async (n: number) => {
        while (buffered.length < n && !closed) await new Promise<void>((r) => (waiter = r));
      };
      await need(BANNER_LENGTH);
      buffered = buffered.subarray(BANNER_LENGTH);
      let rounds = 0;
      while (!stop) {
        s.write(chunk);
        await need(chunk.length);
        if (closed && buffered.length < chunk.length)
          throw new Error(
            `dropped after ${rounds} rounds: A ${JSON.stringify(eventsA.events.filter((e) => e.kind === "vpn" && e.verb !== "applied").slice(-4))} B ${JSON.stringify(eventsB.events.filter((e) => e.kind === "vpn" && e.verb !== "applied").slice(-4))}`,
          );
        expect(buffered.subarray(0, chunk.length).equals(chunk)).toBe(true);
        buffered = buffered.subarray(chunk.length);
        rounds++;
      }
      s.end();
      await once(s, "close");
      return rounds;
    };
    const newConnections = async () => {
      let n = 0;
      while (!stop) {
        const r = await roundTrip(A.address, port, Buffer.from(`new-${n}`), CLIENT);
        expect(r.echo.toString()).toBe(`new-${n}`);
        n++;
        await sleep(20);
      }
      return n;
    };
    const openedBefore = a.tunnelSessions("sec/0/next")?.opened ?? 0;
    const live = [pingPong(), pingPong(), pingPong()];
    const fresh = newConnections();
    await sleep(300);
    await pushCertificates();
    await sleep(600);
    await pushCertificates();
    await sleep(600);
    stop = true;
    const rounds = await Promise.all(live);
    for (const n of rounds) expect(n).toBeGreaterThan(5);
    expect(await fresh).toBeGreaterThan(5);
    // Each rotation made a new session for new streams; the old ones closed once their streams ended.
    expect(a.tunnelSessions("sec/0/next")?.opened).toBeGreaterThanOrEqual(openedBefore + 2);
    await until(() => a.tunnelSessions("sec/0/next")?.open === 1, "old sessions drained");
  });

  it("a certificate for a key that is not the instance's is NACKed, and the last one stays in force", async () => {
    const stranger = await clientCertificate(ca.ca, spiffeId(A.fn, A.id), ca.window(99));
    const status = () => xds.server.status.node(A.id)?.types.get(TYPE_URL.secret);
    publishFor(xds, A.id, [...resourcesA(), ...secretResources(A, stranger.certPem, ca.ca.rootPem)]);
    await until(() => status()?.errorDetail !== undefined, "a NACK of the secret");
    expect(status()?.errorDetail?.message).toMatch(
      /tls_certificate\.certificate_chain: the certificate's public key is not this instance's/,
    );
    const r = await roundTrip(A.address, port, Buffer.from("still fine"), CLIENT);
    expect(r.echo.toString()).toBe("still fine");
    await pushCertificates();
    await until(() => status()?.errorDetail === undefined, "the next ACK");
  });

  it("a silent path: the unanswered PING closes the session; the next connection reconnects", async () => {
    const r1 = await roundTrip(A.address, relayedPort, Buffer.from("one"), CLIENT);
    expect(r1.echo.toString()).toBe("one");
    const disconnectsBefore = eventsA.events.filter((e) => e.verb === "closed").length;
    relay.frozen = true;
    await until(
      () =>
        eventsA.events.some(
          (e, i) =>
            e.verb === "closed" &&
            i >= 0 &&
            /PING/.test(String((e.data as { reason?: string }).reason)) &&
            eventsA.events.filter((x) => x.verb === "closed").length > disconnectsBefore,
        ),
      () => `a disconnected event for the unanswered PING (${JSON.stringify(eventsA.events.slice(-3))})`,
      5000,
    );
    relay.frozen = false;
    const r2 = await roundTrip(A.address, relayedPort, Buffer.from("two"), CLIENT);
    expect(r2.echo.toString()).toBe("two");
  });

  it("events: connected on both sides with the peer's SPIFFE ID", () => {
    // (The host's own xDS `connected` event shares the subject; tunnel events carry a role.)
    const tunnel = (e: HostEvent) =>
      e.kind === "vpn" && e.verb === "established" && (e.data as { role?: string }).role;
    const ca1 = eventsA.events.find(tunnel);
    expect(ca1?.data).toMatchObject({ role: "client", spiffeId: spiffeId(B.fn, B.id) });
    const cb = eventsB.events.find(tunnel);
    expect(cb?.data).toMatchObject({ role: "server", spiffeId: spiffeId(A.fn, A.id) });
    expect(String(((cb?.data ?? {}) as { peer?: string }).peer)).toMatch(/^127\.77\.1\.\d+:\d+$/);
  });
});
