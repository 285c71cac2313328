import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Listener, listen, sleep } from "../sdk/testing/loopback.js";
import { ByteShaper, type ByteShaperOptions, type ShapedPair } from "./byte-shaper.js";

// client → relay (shaped) → sink, all on 127.0.0.1.
interface Rig {
  sink: Listener;
  relay: Listener;
  received: number[];
  pairs: ShapedPair[];
  upstreams: Socket[];
  accepted: Socket[];
}

const open: Listener[] = [];
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const l of open.splice(0)) await l.close();
});

async function rig(options: ByteShaperOptions, sinkPaused = false): Promise<Rig> {
  const shaper = new ByteShaper(options);
  const received: number[] = [];
  const sink = await listen((s) => {
    s.on("error", () => s.destroy());
    const i = received.push(0) - 1;
    s.on("data", (c: Buffer) => {
      received[i] = (received[i] as number) + c.length;
    });
    if (sinkPaused) s.pause();
  });
  const r: Rig = { sink, relay: sink, received, pairs: [], upstreams: [], accepted: [] };
  r.relay = await listen((client) => {
    r.accepted.push(client);
    client.on("error", () => client.destroy());
    void connect(sink.port).then((up) => {
      up.on("error", () => up.destroy());
      client.on("close", () => up.destroy());
      up.on("close", () => client.destroy());
      r.upstreams.push(up);
      r.pairs.push(shaper.shape(client, up));
    });
  });
  open.push(r.relay, sink);
  return r;
}

async function client(r: Rig): Promise<Socket> {
  const c = await connect(r.relay.port);
  c.on("error", () => c.destroy());
  clients.push(c);
  return c;
}

/** Writes without pause, honouring the client socket's own back-pressure, until stopped. */
function flood(s: Socket): { stop(): void } {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let stopped = false;
  const write = () => {
    while (!stopped && s.write(chunk)) {
      /* keep writing */
    }
  };
  s.on("drain", write);
  write();
  return { stop: () => (stopped = true) };
}

const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("ByteShaper on real sockets", () => {
  it("holds a shared rate within 10% of its configuration", async () => {
    const rate = 400_000;
    // A small burst: at most one burst of tokens saved up before the window can inflate it.
    const r = await rig({ shared: { bytesPerSecond: rate, burstBytes: 8 * 1024 } });
    const c = await connect(r.relay.port);
    c.on("error", () => c.destroy());
    clients.push(c);
    const f = flood(c);
    await sleep(300); // past the burst
    const b0 = total(r.received);
    const t0 = performance.now();
    await sleep(1200);
    const measured = ((total(r.received) - b0) * 1000) / (performance.now() - t0);
    f.stop();
    expect(measured).toBeGreaterThan(rate * 0.9);
    expect(measured).toBeLessThan(rate * 1.1);
  });

  it("lets the burst through at once, then the rate", async () => {
    const burst = 256 * 1024;
    const r = await rig({ shared: { bytesPerSecond: 100_000, burstBytes: burst } });
    const c = await connect(r.relay.port);
    c.on("error", () => c.destroy());
    clients.push(c);
    const f = flood(c);
    await sleep(150);
    const early = total(r.received);
    f.stop();
    // The whole burst, plus at most ~150 ms of rate, no more.
    expect(early).toBeGreaterThanOrEqual(burst);
    expect(early).toBeLessThan(burst + 100_000 * 0.15 + 16 * 1024);
  });

  it("shares one chain budget across connections, fairly", async () => {
    const rate = 400_000;
    const r = await rig({ shared: { bytesPerSecond: rate, burstBytes: 8 * 1024 } });
    const a = await client(r);
    const b = await client(r);
    const fa = flood(a);
    const fb = flood(b);
    await sleep(300);
    const before = [...r.received];
    const t0 = performance.now();
    await sleep(1200);
    const secs = (performance.now() - t0) / 1000;
    const each = r.received.map((x, i) => (x - (before[i] ?? 0)) / secs);
    fa.stop();
    fb.stop();
    expect(total(each)).toBeGreaterThan(rate * 0.9);
    expect(total(each)).toBeLessThan(rate * 1.1);
    // Waiters split what accrues, so neither connection starves the other.
    for (const x of each) expect(x).toBeGreaterThan(rate * 0.4);
  });

  it("gives each connection its own per-connection budget", async () => {
    const per = 150_000;
    const r = await rig({ perConnection: { bytesPerSecond: per, burstBytes: 4 * 1024 } });
    const a = await client(r);
    const b = await client(r);
    const fa = flood(a);
    const fb = flood(b);
    await sleep(300);
    const before = [...r.received];
    const t0 = performance.now();
    await sleep(1200);
    const secs = (performance.now() - t0) / 1000;
    fa.stop();
    fb.stop();
    for (const [i, x] of r.received.entries()) {
      const measured = (x - (before[i] ?? 0)) / secs;
      expect(measured).toBeGreaterThan(per * 0.9);
      expect(measured).toBeLessThan(per * 1.1);
    }
  });

  it("keeps the relay's buffers bounded when the receiver stops reading, and loses nothing", async () => {
    const r = await rig({ shared: { bytesPerSecond: 50_000_000 } }, true);
    const c = await connect(r.relay.port);
    c.on("error", () => c.destroy());
    clients.push(c);
    const size = 24 * 1024 * 1024;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
    c.end(payload);
    let maxWritable = 0;
    let maxReadable = 0;
    let maxHeld = 0;
    for (let i = 0; i < 40; i++) {
      await sleep(10);
      for (const u of r.upstreams) maxWritable = Math.max(maxWritable, u.writableLength);
      for (const a of r.accepted) maxReadable = Math.max(maxReadable, a.readableLength);
      for (const p of r.pairs) maxHeld = Math.max(maxHeld, p.aToB.held);
    }
    // The sink is not reading: the payload must be stuck in kernel buffers and the client's own
    // write queue, not in the relay.
    expect(c.writableLength).toBeGreaterThan(0);
    expect(maxWritable).toBeLessThanOrEqual(128 * 1024);
    expect(maxReadable).toBeLessThanOrEqual(128 * 1024);
    expect(maxHeld).toBeLessThanOrEqual(64 * 1024);

    // Resume the sink and check every byte arrives intact.
    const hash = createHash("sha256");
    let got = 0;
    const sinkSocket = [...r.sink.sockets][0] as Socket;
    const done = new Promise<void>((resolve) => {
      sinkSocket.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        got += chunk.length;
        if (got === size) resolve();
      });
    });
    sinkSocket.resume();
    await done;
    expect(hash.digest("hex")).toBe(createHash("sha256").update(payload).digest("hex"));
  });
});
