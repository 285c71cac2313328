import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { readProxyHeader } from "./proxy-header-reader.js";
import { proxyHeaderBuffer, tcpProxyHeader } from "./proxy-protocol.js";
import { connectUpstream, type RelayStats, relay } from "./tcp-relay.js";
import { connect, type Listener, listen, readAll, sleep } from "./testing/loopback.js";

const listeners: Listener[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) await l.close();
});

async function server(onSocket: (s: Socket) => void): Promise<Listener> {
  const l = await listen((s) => {
    s.on("error", () => s.destroy());
    onSocket(s);
  });
  listeners.push(l);
  return l;
}

/** A hop: every accepted client is relayed to upstreamPort, optionally with a PROXY header. */
async function hop(upstreamPort: number, opts: { proxy?: boolean } = {}) {
  const relays: Promise<RelayStats>[] = [];
  const l = await server((client) => {
    const preamble = opts.proxy
      ? proxyHeaderBuffer(
          tcpProxyHeader(
            { address: client.remoteAddress as string, port: client.remotePort as number },
            { address: client.localAddress as string, port: client.localPort as number },
            { chain: "web-edge", hop: 0 },
          ),
        )
      : undefined;
    relays.push(
      relay(client, { upstream: connectUpstream({ host: "127.0.0.1", port: upstreamPort }), preamble }).done,
    );
  });
  return { port: l.port, relays };
}

async function client(port: number): Promise<Socket> {
  const s = await connect(port);
  s.on("error", () => s.destroy());
  sockets.push(s);
  return s;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("TcpRelay on real sockets", () => {
  it("connects upstream on accept, so a server that speaks first is heard before the client sends", async () => {
    let upstreamAcceptedAt = 0;
    const banner = await server((s) => {
      upstreamAcceptedAt = Date.now();
      s.write("220 smtp.example ESMTP ready\r\n");
    });
    const h = await hop(banner.port);
    const c = await client(h.port);
    const [first] = (await once(c, "data")) as [Buffer];
    expect(first.toString()).toBe("220 smtp.example ESMTP ready\r\n");
    expect(upstreamAcceptedAt).toBeGreaterThan(0);
  });

  it("moves 10 MiB each way at once, intact", async () => {
    const up = randomBytes(10 * 1024 * 1024);
    const down = randomBytes(10 * 1024 * 1024);
    let gotUp: (b: Buffer) => void = () => {};
    const upstreamGot = new Promise<Buffer>((r) => {
      gotUp = r;
    });
    const echo = await server((s) => {
      void readAll(s).then(gotUp);
      s.end(down);
    });
    const h = await hop(echo.port);
    const c = await client(h.port);
    const clientGot = readAll(c);
    c.end(up);
    const [atClient, atUpstream] = await Promise.all([clientGot, upstreamGot]);
    expect(sha(atClient)).toBe(sha(down));
    expect(sha(atUpstream)).toBe(sha(up));
    const stats = await h.relays[0];
    expect(stats).toMatchObject({ bytesUp: up.length, bytesDown: down.length, connected: true });
    expect(stats?.error).toBeUndefined();
  });

  it("propagates a half-close: the client's FIN reaches upstream, which can still answer", async () => {
    const upstream = await server((s) => {
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("end", () => {
        // The request is complete only at EOF; the answer goes back on the still-open half.
        s.end(`got ${Buffer.concat(chunks).toString()}`);
      });
    });
    const h = await hop(upstream.port);
    const c = await client(h.port);
    const answer = readAll(c);
    c.end("request body");
    expect((await answer).toString()).toBe("got request body");
    const stats = await h.relays[0];
    expect(stats?.error).toBeUndefined();
  });

  it("passes on a FIN the client sent while the upstream was still connecting", async () => {
    let ended = false;
    const upstream = await server((s) => {
      s.resume();
      s.on("end", () => {
        ended = true;
        s.end("bye");
      });
    });
    const relays: Promise<RelayStats>[] = [];
    const l = await server((c) => {
      // The upstream connects only after the client's FIN has been read.
      const later = new Promise<Socket>((resolve, reject) =>
        c.once("end", () =>
          connectUpstream({ host: "127.0.0.1", port: upstream.port }).then(resolve, reject),
        ),
      );
      c.resume();
      relays.push(relay(c, { upstream: later }).done);
    });
    const c = await client(l.port);
    const answer = readAll(c);
    c.end();
    expect((await answer).toString()).toBe("bye");
    expect(ended).toBe(true);
    expect((await relays[0])?.error).toBeUndefined();
  });

  it("sends the PROXY v2 header before any client byte", async () => {
    let result: Awaited<ReturnType<typeof readProxyHeader>> | undefined;
    let payload: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    const upstream = await server(async (s) => {
      result = await readProxyHeader(s);
      payload = readAll(s);
      s.end();
    });
    const h = await hop(upstream.port, { proxy: true });
    const c = await client(h.port);
    const clientPort = c.localPort;
    c.end("hello after the header");
    await readAll(c);
    await sleep(10);
    expect(result?.state).toBe("done");
    if (result?.state !== "done") return;
    expect(result.header).toMatchObject({
      command: "PROXY",
      protocol: "TCP4",
      source: { address: "127.0.0.1", port: clientPort },
      destination: { address: "127.0.0.1", port: h.port },
      chain: "web-edge",
      hop: 0,
    });
    expect((await payload).toString()).toBe("hello after the header");
  });

  it("isolates errors: a reset on one connection closes only its own pair", async () => {
    // Upstream sockets by the client that owns them, told apart by their first bytes.
    const upstreamSockets: Socket[] = [];
    const upstream = await server((s) => {
      s.on("data", (d: Buffer) => {
        if (!upstreamSockets.includes(s)) upstreamSockets[d.toString().startsWith("a") ? 0 : 1] = s;
        s.write(d);
      });
    });
    const h = await hop(upstream.port);
    const a = await client(h.port);
    const b = await client(h.port);
    a.write("a1");
    b.write("b1");
    await Promise.all([once(a, "data"), once(b, "data")]);
    expect(upstreamSockets.filter(Boolean)).toHaveLength(2);
    // The upstream sees the abort as a reset (an error), not as a clean end.
    const aUpstreamClosed = new Promise<boolean>((r) => {
      const u = upstreamSockets[0] as Socket;
      let errored = false;
      u.on("error", () => {
        errored = true;
      });
      u.on("close", () => r(errored));
    });
    a.resetAndDestroy();
    expect(await aUpstreamClosed).toBe(true);
    const statsA = await h.relays[0];
    expect(statsA?.error).toBeDefined();
    // b still relays both ways.
    b.write("b2");
    const [echo] = (await once(b, "data")) as [Buffer];
    expect(echo.toString()).toBe("b2");
    expect((upstreamSockets[1] as Socket).destroyed).toBe(false);
  });

  it("closes the client with nothing sent when the upstream refuses", async () => {
    const dead = await listen(() => {});
    const port = dead.port;
    await dead.close();
    const h = await hop(port);
    const c = await client(h.port);
    const got = await readAll(c).catch(() => Buffer.alloc(0));
    expect(got.length).toBe(0);
    const stats = await h.relays[0];
    expect(stats).toMatchObject({ connected: false, bytesUp: 0, bytesDown: 0 });
    expect(stats?.error).toBeInstanceOf(Error);
  });

  it("readProxyHeader refuses a peer that sends no header in time", async () => {
    let result: Awaited<ReturnType<typeof readProxyHeader>> | undefined;
    const l = await server(async (s) => {
      result = await readProxyHeader(s, { timeoutMs: 50 });
      s.destroy();
    });
    const c = await client(l.port);
    await readAll(c);
    expect(result).toMatchObject({ state: "error", reason: "timeout" });
  });
});

describe("tcpProxyHeader", () => {
  it("uses TCP4 for IPv4 and IPv4-mapped peers, TCP6 otherwise", () => {
    expect(
      tcpProxyHeader({ address: "::ffff:10.0.0.1", port: 1 }, { address: "10.0.0.2", port: 2 }).protocol,
    ).toBe("TCP4");
    const mixed = tcpProxyHeader({ address: "10.0.0.1", port: 1 }, { address: "::1", port: 2 });
    expect(mixed).toMatchObject({ protocol: "TCP6", source: { address: "::ffff:10.0.0.1" } });
    expect(proxyHeaderBuffer(mixed).length).toBe(52);
  });
});
