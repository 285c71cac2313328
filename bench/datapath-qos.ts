// QoS hot paths: token bucket decisions per second (next to a bare counter in the same run), and the
// byte shaper's achieved rate against its configuration on real sockets, one connection and eight
// sharing a chain budget. Run: node --import tsx bench/datapath-qos.ts
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { ByteShaper } from "../functions/qos/byte-shaper.js";
import { TokenBucket } from "../functions/qos/token-bucket.js";

const BUDGET_MS = Number(process.env.BENCH_MS ?? 400);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 1500);

function rate(fn: () => number): number {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  let now = start;
  while (now - start < BUDGET_MS) {
    for (let i = 0; i < 1000; i++) sink += fn();
    n += 1000;
    now = performance.now();
  }
  if (sink === -1) console.log(sink);
  return n / ((now - start) / 1000);
}

async function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => s.destroy());
    handler(s);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

async function shapedRate(bytesPerSecond: number, connections: number): Promise<number> {
  let received = 0;
  const sink = await listen((s) => {
    s.on("data", (d: Buffer) => {
      received += d.length;
    });
  });
  const shaper = new ByteShaper({
    shared: { bytesPerSecond, burstBytes: Math.max(16 * 1024, bytesPerSecond / 100) },
  });
  const hop = await listen((c) => {
    const u = connect({ port: sink.port, host: "127.0.0.1", allowHalfOpen: true });
    u.on("error", () => c.destroy());
    c.on("error", () => u.destroy());
    shaper.shape(c, u);
  });
  const clients: Socket[] = [];
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; i < connections; i++) {
    const s = connect({ port: hop.port, host: "127.0.0.1" });
    s.on("error", () => {});
    const write = () => {
      while (!s.destroyed && s.write(chunk)) {
        /* flood */
      }
    };
    s.on("drain", write);
    s.on("connect", write);
    clients.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
  const b0 = received;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const measured = ((received - b0) * 1000) / (performance.now() - t0);
  for (const c of clients) c.destroy();
  hop.server.close();
  sink.server.close();
  return measured;
}

async function main(): Promise<void> {
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(13);
  console.log(`token bucket decisions/s (${BUDGET_MS} ms per cell, node ${process.version})`);
  let counter = 0;
  const floor = rate(() => ++counter & 1);
  const cont = new TokenBucket({ capacity: 1e12, tokensPerSecond: 1e12 });
  const disc = new TokenBucket({ capacity: 1e12, tokensPerFill: 1e9, fillIntervalMs: 50 });
  const denied = new TokenBucket({ capacity: 1, tokensPerSecond: 0.001, initialTokens: 0 });
  console.log(`${"bare counter (floor)".padEnd(34)} ${fmt(floor)}`);
  console.log(`${"take(1), continuous refill".padEnd(34)} ${fmt(rate(() => cont.take(1)))}`);
  console.log(`${"take(1), Envoy fill interval".padEnd(34)} ${fmt(rate(() => disc.take(1)))}`);
  console.log(`${"take(1) refused (returns wait ms)".padEnd(34)} ${fmt(rate(() => denied.take(1)))}`);

  console.log(`\nbyte shaper on 127.0.0.1, ${WINDOW_MS} ms window after 300 ms warm-up`);
  console.log(
    `${"configured B/s".padStart(14)} ${"conns".padStart(5)} ${"measured B/s".padStart(14)} ${"error".padStart(7)}`,
  );
  for (const [bps, conns] of [
    [1_000_000, 1],
    [10_000_000, 1],
    [100_000_000, 1],
    [10_000_000, 8],
  ] as const) {
    const m = await shapedRate(bps, conns);
    console.log(
      `${bps.toLocaleString("en-US").padStart(14)} ${String(conns).padStart(5)} ${Math.round(m).toLocaleString("en-US").padStart(14)} ${`${(((m - bps) / bps) * 100).toFixed(1)}%`.padStart(7)}`,
    );
  }
  process.exit(0);
}

void main();
