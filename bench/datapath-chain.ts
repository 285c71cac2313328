import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadHostProtos } from "../functions/sdk/protos.js";
import { freePort } from "../services/control/events/nats-server-process.js";
import {
  AdsServer,
  clusterLoadAssignment,
  edsCluster,
  networkFilter,
  proxyProtocolListenerFilter,
  type Resource,
  Snapshot,
  SnapshotCache,
  TYPE_URL,
  tcpProxyListener,
  typedConfig,
} from "../xds/index.js";
import { Children, dial, ECHO_SERVER, pingPong, waitForEcho } from "./support/paths.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const MIB = 1024 * 1024;
const BULK = Number(process.env.BENCH_MIB ?? 256) * MIB;
const REPO = fileURLToPath(new URL("../", import.meta.url));
const NET = "127.64.200";
const ip = (n: number) => `${NET}.${n}`;
const children = new Children(REPO);
const tempDirs: string[] = [];

// ---- the load ----

/** BULK bytes out and echoed back over one connection: MiB/s of payload. */
async function bulk(host: string, port: number): Promise<number> {
  const s = await dial(host, port);
  const chunk = Buffer.alloc(256 * 1024, 1);
  let received = 0;
  const t0 = performance.now();
  const done = new Promise<void>((resolve) =>
    s.on("data", (c: Buffer) => {
      received += c.length;
      if (received >= BULK) resolve();
    }),
  );
  for (let sent = 0; sent < BULK; sent += chunk.length) if (!s.write(chunk)) await once(s, "drain");
  await done;
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  return BULK / MIB / secs;
}

/** Connections per second: connect, 1-byte round trip, close; 32 workers for SECONDS. */
async function connRate(host: string, port: number): Promise<number> {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        const s = await dial(host, port);
        const echoed = once(s, "data");
        s.write("x");
        await echoed;
        s.destroy();
        n++;
      }
    }),
  );
  return n / SECONDS;
}

// ---- the peers ----

function haproxyConfig(port: number, backend: { host: string; port: number }): string {
  const head = [
    "global",
    "  maxconn 8000",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    "  option tcp-smart-accept",
  ];
  const one = [
    "frontend one",
    `  bind ${ip(11)}:${port}`,
    "  default_backend one_b",
    "backend one_b",
    `  server e ${backend.host}:${backend.port}`,
  ];
  const three = [0, 1, 2].flatMap((h) => [
    `frontend h${h}`,
    `  bind ${ip(21 + h)}:${port}${h > 0 ? " accept-proxy" : ""}`,
    `  default_backend h${h}_b`,
    `backend h${h}_b`,
    // Each hop sends from its own address, as Catena's instances do (and the next hop checks).
    h < 2
      ? `  server n ${ip(22 + h)}:${port} send-proxy-v2 source ${ip(21 + h)}`
      : `  server e ${backend.host}:${backend.port} source ${ip(23)}`,
  ]);
  return [...head, ...one, ...three, ""].join("\n");
}

function catenaSnapshots(port: number, backend: { host: string; port: number }): Map<string, Resource[]> {
  const rbac = (sp: string) =>
    networkFilter(
      "envoy.filters.network.rbac",
      typedConfig(TYPE_URL.networkRbac, {
        stat_prefix: sp,
        rules: {
          action: "ALLOW",
          policies: {
            "allow-0": {
              permissions: [{ any: true }],
              principals: [{ remote_ip: { address_prefix: "127.0.0.0", prefix_len: { value: 8 } } }],
            },
          },
        },
      }),
    );
  const rate = (sp: string) =>
    networkFilter(
      "envoy.filters.network.local_ratelimit",
      typedConfig(TYPE_URL.localRateLimit, {
        stat_prefix: sp,
        token_bucket: {
          max_tokens: 1_000_000,
          tokens_per_fill: { value: 1_000_000 },
          fill_interval: { seconds: 1 },
        },
      }),
    );
  const out = new Map<string, Resource[]>();
  const hops = [ip(31), ip(32), ip(33)];
  hops.forEach((address, h) => {
    const name = `bench/${h}`;
    const last = h === 2;
    out.set(`bench-${h}`, [
      tcpProxyListener({
        name,
        address,
        port,
        filters: h === 0 ? [rbac(name)] : h === 1 ? [rate(name)] : [],
        tcpProxy: { cluster: `${name}/next`, statPrefix: name },
        metadata: { catena: { chain: "bench", hop: h, service: "echo" } },
        ...(h > 0
          ? {
              listenerFilters: [proxyProtocolListenerFilter()],
              filterChainMatch: { directSourcePrefixRanges: [{ address: hops[h - 1] as string }] },
            }
          : {}),
      }),
      edsCluster({ name: `${name}/next`, ...(last ? {} : { upstreamProxyProtocol: "V2" as const }) }),
      clusterLoadAssignment({
        clusterName: `${name}/next`,
        endpoints: [
          last ? { address: backend.host, port: backend.port } : { address: hops[h + 1] as string, port },
        ],
      }),
    ]);
  });
  out.set("bench-fused", [
    tcpProxyListener({
      name: "bench/fused",
      address: ip(41),
      port,
      filters: [rbac("bench/0"), rate("bench/1")],
      tcpProxy: { cluster: "bench/fused/next", statPrefix: "bench/fused" },
      metadata: { catena: { chain: "bench", hop: 0, hops: 3, service: "echo" } },
    }),
    edsCluster({ name: "bench/fused/next" }),
    clusterLoadAssignment({
      clusterName: "bench/fused/next",
      endpoints: [{ address: backend.host, port: backend.port }],
    }),
  ]);
  return out;
}

async function main(): Promise<void> {
  loadHostProtos();
  const backend = { host: ip(100), port: await freePort(ip(100)) };
  children.run(process.execPath, ["-e", ECHO_SERVER, backend.host, String(backend.port)]);
  const port = await freePort(ip(11));

  const dir = mkdtempSync(join(tmpdir(), "catena-bench-"));
  tempDirs.push(dir);
  const cfg = join(dir, "haproxy.cfg");
  writeFileSync(cfg, haproxyConfig(port, backend));
  children.run("/usr/sbin/haproxy", ["-f", cfg, "-db"]);

  const cache = new SnapshotCache({ debounceMs: 0 });
  const ads = new AdsServer({ cache });
  const xdsPort = await ads.listen("127.0.0.1:0");
  for (const [id, rs] of catenaSnapshots(port, backend)) cache.setSnapshot(id, Snapshot.from(rs));
  const catena = (id: string, address: string) =>
    children.run(
      process.execPath,
      [
        "--import",
        "tsx",
        "services/cli/main.ts",
        "function",
        "firewall",
        "--function",
        "bench",
        "--node-id",
        id,
      ],
      {
        CATENA_XDS_ADDR: `127.0.0.1:${xdsPort}`,
        CATENA_ADDRESS: address,
        CATENA_ADMIN_ADDR: `${address}:0`,
        CATENA_LOG_LEVEL: "warn",
        CATENA_NATS_URL: "nats://127.0.0.1:1",
      },
    );
  catena("bench-0", ip(31));
  catena("bench-1", ip(32));
  catena("bench-2", ip(33));
  catena("bench-fused", ip(41));

  const targets = [
    { name: "direct", host: backend.host, port: backend.port },
    { name: "haproxy 1 hop", host: ip(11), port },
    { name: "haproxy 3 hops", host: ip(21), port },
    { name: "catena 3 hops (separate)", host: ip(31), port },
    { name: "catena fused", host: ip(41), port },
  ];
  for (const t of targets) await waitForEcho(t.host, t.port);

  const rows: string[][] = [];
  for (const t of targets) {
    const p1 = await pingPong(t.host, t.port, 1, SECONDS);
    const p16 = await pingPong(t.host, t.port, 16, SECONDS);
    const tput = await bulk(t.host, t.port);
    const cps = await connRate(t.host, t.port);
    rows.push([
      t.name,
      p1.p50.toFixed(0),
      p1.p99.toFixed(0),
      p16.p50.toFixed(0),
      p16.p99.toFixed(0),
      p16.rps.toFixed(0),
      tput.toFixed(0),
      cps.toFixed(0),
    ]);
    console.error(`done: ${t.name}`);
  }
  const head = [
    "path",
    "1c p50 µs",
    "1c p99 µs",
    "16c p50 µs",
    "16c p99 µs",
    "16c req/s",
    "bulk MiB/s",
    "conn/s",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(
    `datapath-chain: ${SECONDS}s per measurement, bulk ${BULK / MIB} MiB echoed, loopback, 2 cores shared`,
  );
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  await ads.close();
  cache.close();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    children.killAll();
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
