// TCP relay throughput and connection rate on 127.0.0.1, next to its peers in the same run: a direct
// connection (no hop) and the stock stream.pipe() relay. Run: node --import tsx bench/datapath-relay.ts
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { proxyHeaderBuffer, tcpProxyHeader } from "../functions/sdk/proxy-protocol.js";
import { connectUpstream, relay } from "../functions/sdk/tcp-relay.js";

const MIB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_MIB ?? 256) * MIB;
const CONNS = Number(process.env.BENCH_CONNS ?? 2000);
const CONCURRENCY = 32;

async function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => s.destroy());
    handler(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends BYTES, half-closes, and waits for the sink's one-byte acknowledgement. */
async function throughput(port: number): Promise<number> {
  const s = await dial(port);
  const chunk = Buffer.alloc(256 * 1024, 1);
  const t0 = performance.now();
  const acked = once(s, "data");
  for (let sent = 0; sent < BYTES; sent += chunk.length) {
    if (!s.write(chunk)) await once(s, "drain");
  }
  s.end();
  await acked;
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  return BYTES / MIB / secs;
}

/** Opens CONNS connections (CONCURRENCY at a time), each a one-byte round trip. */
async function connectionRate(port: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next++ < CONNS) {
      const s = await dial(port);
      const echoed = once(s, "data");
      s.write("x");
      await echoed;
      s.destroy();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return CONNS / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  // Sink: counts bytes and acknowledges at EOF; also echoes single bytes for the connection test.
  const sink = await listen((s) => {
    let n = 0;
    s.on("data", (d: Buffer) => {
      n += d.length;
      if (n === 1 && d.length === 1) s.write("y");
    });
    s.on("end", () => s.end("k"));
  });
  const viaRelay = await listen((c) => {
    relay(c, { upstream: connectUpstream({ host: "127.0.0.1", port: sink.port }) });
  });
  // The sink would count the header as payload; the PROXY variant feeds a sink that skips it.
  const proxySink = await listen((s) => {
    let n = 0;
    let skipped = false;
    s.on("data", (d: Buffer) => {
      if (!skipped) {
        skipped = true;
        const len = 16 + d.readUInt16BE(14);
        d = d.subarray(len);
      }
      n += d.length;
      if (n === 1 && d.length === 1) s.write("y");
    });
    s.on("end", () => s.end("k"));
  });
  const viaRelayProxy = await listen((c) => {
    const header = proxyHeaderBuffer(
      tcpProxyHeader(
        { address: c.remoteAddress as string, port: c.remotePort as number },
        { address: c.localAddress as string, port: c.localPort as number },
        { chain: "bench", hop: 0 },
      ),
    );
    relay(c, { upstream: connectUpstream({ host: "127.0.0.1", port: proxySink.port }), preamble: header });
  });
  const viaPipe = await listen((c) => {
    const u = connect({ port: sink.port, host: "127.0.0.1", allowHalfOpen: true });
    u.on("error", () => c.destroy());
    c.on("error", () => u.destroy());
    c.pipe(u);
    u.pipe(c);
  });

  const rows: [string, number][] = [
    ["direct (no hop)", sink.port],
    ["stream.pipe relay", viaPipe.port],
    ["TcpRelay", viaRelay.port],
    ["TcpRelay + PROXY v2", viaRelayProxy.port],
  ];
  console.log(
    `relay on 127.0.0.1 — ${BYTES / MIB} MiB one way; ${CONNS} connections, ${CONCURRENCY} at a time (node ${process.version})`,
  );
  console.log(`${"path".padEnd(22)} ${"MiB/s".padStart(8)} ${"conn/s".padStart(8)}`);
  for (const [name, port] of rows) {
    await throughput(port); // warm-up
    const mbps = await throughput(port);
    const cps = await connectionRate(port);
    console.log(`${name.padEnd(22)} ${mbps.toFixed(0).padStart(8)} ${cps.toFixed(0).padStart(8)}`);
  }
  for (const l of [sink, viaRelay, viaRelayProxy, proxySink, viaPipe]) l.server.close();
  process.exit(0);
}

void main();
