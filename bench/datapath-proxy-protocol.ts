// PROXY v2 header decode and encode per second, next to the floor they stand on in the same run:
// copying the same number of bytes out of a Buffer. Run: node --import tsx bench/datapath-proxy-protocol.ts
import {
  decodeProxyHeader,
  encodeProxyHeader,
  type ProxyHeader,
  ProxyHeaderParser,
  proxyHeaderBuffer,
} from "../functions/sdk/proxy-protocol.js";

const BUDGET_MS = Number(process.env.BENCH_MS ?? 500);

function rate(fn: () => void): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < BUDGET_MS) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

const headers: [string, ProxyHeader][] = [
  [
    "TCP4, no TLVs",
    {
      command: "PROXY",
      protocol: "TCP4",
      source: { address: "10.1.2.3", port: 40000 },
      destination: { address: "10.9.8.7", port: 8080 },
    },
  ],
  [
    "TCP4 + chain/hop",
    {
      command: "PROXY",
      protocol: "TCP4",
      source: { address: "10.1.2.3", port: 40000 },
      destination: { address: "10.9.8.7", port: 8080 },
      chain: "web-edge",
      hop: 2,
    },
  ],
  [
    "TCP6 + chain/hop + CRC32C",
    {
      command: "PROXY",
      protocol: "TCP6",
      source: { address: "2001:db8::1", port: 40000 },
      destination: { address: "2001:db8::2", port: 8080 },
      chain: "web-edge",
      hop: 2,
      checksum: true,
    },
  ],
];

const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(12);
console.log(`PROXY v2 operations/s (${BUDGET_MS} ms per cell, node ${process.version})`);
console.log(
  `${"header".padEnd(28)} ${"bytes".padStart(5)} ${"decode".padStart(12)} ${"parser.feed".padStart(12)} ${"encode".padStart(12)} ${"copy (floor)".padStart(12)}`,
);
for (const [name, h] of headers) {
  const wire = Buffer.concat([proxyHeaderBuffer(h), Buffer.from("GET / HTTP/1.1\r\n\r\n")]);
  const len = wire.length - 18;
  const out = Buffer.allocUnsafe(256);
  const copy = Buffer.allocUnsafe(256);
  let sink = 0;
  const decode = rate(() => {
    const r = decodeProxyHeader(wire);
    if (r.state === "done") sink += r.headerLength;
  });
  const feed = rate(() => {
    const r = new ProxyHeaderParser().feed(wire);
    if (r.state === "done") sink += r.headerLength;
  });
  const encode = rate(() => {
    sink += encodeProxyHeader(h, out, 0);
  });
  const floor = rate(() => {
    sink += wire.copy(copy, 0, 0, len);
  });
  if (sink < 0) console.log(sink);
  console.log(
    `${name.padEnd(28)} ${String(len).padStart(5)} ${fmt(decode)} ${fmt(feed)} ${fmt(encode)} ${fmt(floor)}`,
  );
}
