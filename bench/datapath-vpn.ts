// The VPN hop's data path next to its peers, in the same run, on loopback: each path is two processes
// with mutual TLS 1.3 between them (Ed25519 certificates from the mesh CA), plain TCP in and out:
//   direct              the targets themselves (no proxy)
//   catena vpn A→B      `catena function vpn` twice: tcp_proxy tunneling_config → HTTP/2 CONNECT over one
//                       TLS session → CONNECT terminator → exit cluster (the real host, real xDS, real SDS)
//   node tls relay      a minimal Node pair: one TLS connection per TCP connection, piped both ways
//   haproxy tls         HAProxy 2.6 twice: `server ... ssl crt` → `bind ... ssl crt verify required`
// Measured: iperf3 throughput over one TCP connection (client → server, and -R), and 64-byte ping-pong
// latency (p50/p99) over 1 and 16 connections (Catena carries the 16 as streams of one TLS session).
// Run: node --import tsx bench/datapath-vpn.ts   (BENCH_SECONDS to change the load; BENCH_ONLY=regex
// and BENCH_REPEAT=N to measure some paths, several times in a row)
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createIdentity } from "../functions/sdk/identity.js";
import { loadHostProtos } from "../functions/sdk/protos.js";
import { MeshCa } from "../services/control/ca/index.js";
import { freePort } from "../services/control/events/nats-server-process.js";
import {
  AdsServer,
  clusterLoadAssignment,
  connectTerminatorListener,
  downstreamTlsSocket,
  edsCluster,
  type Resource,
  Snapshot,
  SnapshotCache,
  tcpProxyListener,
  tlsCertificateSecret,
  validationContextSecret,
} from "../xds/index.js";
import { Children, ECHO_SERVER, pingPong, waitForEcho } from "./support/paths.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPO = fileURLToPath(new URL("../", import.meta.url));
const NET = "127.78.0";
const ip = (n: number) => `${NET}.${n}`;
const TD = "catena.local";
const children = new Children(REPO);

// ---- the load ----

/** iperf3 through host:port, one stream: Gbit/s received (retried while the server ends the last test). */
async function iperf(host: string, port: number, reverse: boolean): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      return await iperfOnce(host, port, reverse);
    } catch (err) {
      if (i >= 20 || !/busy/.test(String(err))) throw err;
      console.error(`iperf3 server busy (${i + 1}); retrying`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function iperfOnce(host: string, port: number, reverse: boolean): Promise<number> {
  const args = ["-c", host, "-p", String(port), "-t", String(SECONDS), "-J", ...(reverse ? ["-R"] : [])];
  const c = spawn("iperf3", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  c.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const [code] = (await once(c, "exit")) as [number];
  const j = JSON.parse(out) as { error?: string; end?: { sum_received?: { bits_per_second: number } } };
  if (code !== 0 || j.error) throw new Error(`iperf3 ${args.join(" ")}: ${j.error ?? `exit ${code}`}`);
  return (j.end?.sum_received?.bits_per_second ?? 0) / 1e9;
}

// ---- targets ----

// A minimal Node TLS relay pair: "in" takes TCP and opens one mutual-TLS 1.3 connection per client to
// "out", which connects to the target. Config: JSON {addr, peer, cert, key, ca, routes: [{port, peerPort, target}]}.
const NODE_RELAY = `
const net=require("net"),tls=require("tls"),fs=require("fs");
const mode=process.argv[1],cfg=JSON.parse(process.argv[2]);
const creds={cert:fs.readFileSync(cfg.cert),key:fs.readFileSync(cfg.key),ca:fs.readFileSync(cfg.ca),minVersion:"TLSv1.3",maxVersion:"TLSv1.3"};
const pair=(a,b)=>{const kill=()=>{a.destroy();b.destroy()};a.on("error",kill);b.on("error",kill);a.pipe(b);b.pipe(a)};
for(const r of cfg.routes){
  if(mode==="in")net.createServer({noDelay:true},c=>{const t=tls.connect({...creds,host:cfg.peer,port:r.peerPort,localAddress:cfg.addr,checkServerIdentity:()=>undefined});t.setNoDelay(true);pair(c,t)}).listen(r.port,cfg.addr);
  else tls.createServer({...creds,requestCert:true,rejectUnauthorized:true},t=>{t.setNoDelay(true);const u=net.connect({host:r.target.host,port:r.target.port,noDelay:true,localAddress:cfg.addr});pair(t,u)}).listen(r.peerPort,cfg.addr);
}`;

interface Targets {
  iperf: { host: string; port: number };
  echo: { host: string; port: number };
}

function haproxyConfigs(
  dir: string,
  ports: { iperf: number; echo: number; tIperf: number; tEcho: number },
  t: Targets,
): { ingress: string; egress: string } {
  const head = [
    "global",
    "  maxconn 8000",
    "  ssl-default-bind-options ssl-min-ver TLSv1.3",
    "  ssl-default-server-options ssl-min-ver TLSv1.3",
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
  ];
  const routes = [
    ["iperf", ports.iperf, ports.tIperf, t.iperf],
    ["echo", ports.echo, ports.tEcho, t.echo],
  ] as const;
  const ingress = [
    ...head,
    ...routes.flatMap(([n, port, tport]) => [
      `frontend in_${n}`,
      `  bind ${ip(31)}:${port}`,
      `  default_backend in_${n}_b`,
      `backend in_${n}_b`,
      `  server b ${ip(32)}:${tport} ssl crt ${join(dir, "hi.pem")} ca-file ${join(dir, "ca.pem")} verify required source ${ip(31)}`,
    ]),
    "",
  ].join("\n");
  const egress = [
    ...head,
    ...routes.flatMap(([n, , tport, target]) => [
      `frontend out_${n}`,
      `  bind ${ip(32)}:${tport} ssl crt ${join(dir, "ho.pem")} ca-file ${join(dir, "ca.pem")} verify required`,
      `  default_backend out_${n}_b`,
      `backend out_${n}_b`,
      `  server t ${target.host}:${target.port} source ${ip(32)}`,
    ]),
    "",
  ].join("\n");
  return { ingress, egress };
}

// ---- Catena's resources (as the compiler lays them out) ----

const spiffe = (fn: string, id: string) => `spiffe://${TD}/function/${fn}/${id}`;
const mtls = (fn: string, id: string, peer: string) => ({
  certificateSecret: spiffe(fn, id),
  validationSecret: "ROOTCA",
  sanUriPrefixes: [`spiffe://${TD}/function/${peer}/`],
  alpnProtocols: ["h2"],
  tlsVersion: "TLSv1_3" as const,
});

function catenaResources(
  ports: { iperf: number; echo: number; tunnel: number },
  t: Targets,
): { a: Resource[]; b: Resource[] } {
  const a: Resource[] = [];
  const routes = [
    { chain: "iperf", port: ports.iperf, target: t.iperf },
    { chain: "echo", port: ports.echo, target: t.echo },
  ];
  for (const r of routes) {
    const name = `${r.chain}/0`;
    a.push(
      tcpProxyListener({
        name,
        address: ip(11),
        port: r.port,
        tcpProxy: {
          cluster: `${name}/next`,
          statPrefix: name,
          tunnelingHostname: `${r.chain}:${r.port}`,
          tunnelingHeaders: { "x-catena-downstream": "%DOWNSTREAM_REMOTE_ADDRESS%" },
        },
        metadata: { catena: { chain: r.chain, hop: 0, service: r.chain } },
      }),
      edsCluster({ name: `${name}/next`, http2: true, upstreamTls: mtls("vpn-a", "bench-a", "vpn-b") }),
      clusterLoadAssignment({
        clusterName: `${name}/next`,
        endpoints: [{ address: ip(12), port: ports.tunnel }],
      }),
    );
  }
  const b: Resource[] = [
    connectTerminatorListener({
      name: `vpn/${ports.tunnel}`,
      address: ip(12),
      port: ports.tunnel,
      transportSocket: downstreamTlsSocket(mtls("vpn-b", "bench-b", "vpn-a")),
      routes: routes.map((r) => ({
        name: `${r.chain}/0`,
        domains: [`${r.chain}:${r.port}`],
        cluster: `${r.chain}/0/exit`,
      })),
    }),
  ];
  for (const r of routes)
    b.push(
      edsCluster({ name: `${r.chain}/0/exit`, metadata: { catena: { chain: r.chain, hop: 1 } } }),
      clusterLoadAssignment({
        clusterName: `${r.chain}/0/exit`,
        endpoints: [{ address: r.target.host, port: r.target.port }],
      }),
    );
  return { a, b };
}

async function main(): Promise<void> {
  loadHostProtos();
  const dir = mkdtempSync(join(tmpdir(), "catena-bench-vpn-"));
  try {
    await bench(dir);
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    else console.error(`kept ${dir}`);
  }
}

async function bench(dir: string): Promise<void> {
  const targets: Targets = {
    iperf: { host: ip(100), port: await freePort(ip(100)) },
    echo: { host: ip(101), port: await freePort(ip(101)) },
  };
  children.run("iperf3", ["-s", "-B", targets.iperf.host, "-p", String(targets.iperf.port)]);
  children.run(process.execPath, ["-e", ECHO_SERVER, targets.echo.host, String(targets.echo.port)]);

  // Certificates: one mesh CA (Ed25519) for every path.
  const ca = await MeshCa.open({ dataDir: dir, trustDomain: TD });
  writeFileSync(join(dir, "ca.pem"), ca.rootPem);
  const window = {
    index: 1,
    notBefore: new Date(Date.now() - 120_000),
    notAfter: new Date(Date.now() + 3_600_000),
    renewAt: new Date(Date.now() + 1_800_000),
  };
  const pemPair = async (name: string, fn: string) => {
    const id = await createIdentity(name);
    const cert = await ca.issue(id.csrPem, spiffe(fn, name), window);
    writeFileSync(join(dir, `${name}.crt`), cert.certPem);
    writeFileSync(join(dir, `${name}.key`), id.privateKeyPem, { mode: 0o600 });
    writeFileSync(join(dir, `${name}.pem`), `${cert.certPem.trim()}\n${id.privateKeyPem.trim()}\n`, {
      mode: 0o600,
    });
  };
  await Promise.all([
    pemPair("ni", "vpn-a"),
    pemPair("no", "vpn-b"),
    pemPair("hi", "vpn-a"),
    pemPair("ho", "vpn-b"),
  ]);

  // Catena: two `catena function vpn` processes; their certificates issued for the CSRs they send.
  const cat = {
    iperf: await freePort(ip(11)),
    echo: await freePort(ip(11)),
    tunnel: await freePort(ip(12)),
  };
  const cache = new SnapshotCache({ debounceMs: 0 });
  const ads = new AdsServer({ cache });
  const xdsPort = await ads.listen("127.0.0.1:0");
  const { a, b } = catenaResources(cat, targets);
  const vpn = (fn: string, id: string, address: string) =>
    children.run(
      process.execPath,
      ["--import", "tsx", "services/cli/main.ts", "function", "vpn", "--function", fn, "--node-id", id],
      {
        CATENA_XDS_ADDR: `127.0.0.1:${xdsPort}`,
        CATENA_ADDRESS: address,
        CATENA_ADMIN_ADDR: `${address}:0`,
        CATENA_LOG_LEVEL: "warn",
        CATENA_NATS_URL: "nats://127.0.0.1:1",
      },
    );
  vpn("vpn-a", "bench-a", ip(11));
  vpn("vpn-b", "bench-b", ip(12));
  const csr = async (id: string): Promise<string> => {
    for (let i = 0; i < 600; i++) {
      const c = ads.status.node(id)?.node.metadata.csr;
      if (typeof c === "string" && c) return c;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no CSR from ${id}`);
  };
  const secrets = async (fn: string, id: string): Promise<Resource[]> => {
    const cert = await ca.issue(await csr(id), spiffe(fn, id), window);
    return [
      tlsCertificateSecret({ name: spiffe(fn, id), certificateChain: cert.certPem }),
      validationContextSecret({ name: "ROOTCA", trustedCa: ca.rootPem }),
    ];
  };
  cache.setSnapshot("bench-a", Snapshot.from([...a, ...(await secrets("vpn-a", "bench-a"))]));
  cache.setSnapshot("bench-b", Snapshot.from([...b, ...(await secrets("vpn-b", "bench-b"))]));

  // Node TLS relay pair.
  const nodePorts = {
    iperf: await freePort(ip(21)),
    echo: await freePort(ip(21)),
    tIperf: await freePort(ip(22)),
    tEcho: await freePort(ip(22)),
  };
  const nodeRoutes = [
    { port: nodePorts.iperf, peerPort: nodePorts.tIperf, target: targets.iperf },
    { port: nodePorts.echo, peerPort: nodePorts.tEcho, target: targets.echo },
  ];
  const nodeCfg = (me: string, addr: string, peer: string) =>
    JSON.stringify({
      addr,
      peer,
      cert: join(dir, `${me}.crt`),
      key: join(dir, `${me}.key`),
      ca: join(dir, "ca.pem"),
      routes: nodeRoutes,
    });
  children.run(process.execPath, ["-e", NODE_RELAY, "out", nodeCfg("no", ip(22), "")]);
  children.run(process.execPath, ["-e", NODE_RELAY, "in", nodeCfg("ni", ip(21), ip(22))]);

  // HAProxy pair.
  const hPorts = {
    iperf: await freePort(ip(31)),
    echo: await freePort(ip(31)),
    tIperf: await freePort(ip(32)),
    tEcho: await freePort(ip(32)),
  };
  const h = haproxyConfigs(dir, hPorts, targets);
  writeFileSync(join(dir, "in.cfg"), h.ingress);
  writeFileSync(join(dir, "out.cfg"), h.egress);
  children.run("/usr/sbin/haproxy", ["-f", join(dir, "out.cfg"), "-db"]);
  children.run("/usr/sbin/haproxy", ["-f", join(dir, "in.cfg"), "-db"]);

  // Direct goes last: measured after a direct run (20+ Gbit/s on loopback), the tunnel ran a third
  // slower for the rest of the run, repeatably, while HAProxy and the Node pair did not change; so
  // every proxied path is measured before it.
  const paths = [
    {
      name: "catena vpn A→B",
      iperf: { host: ip(11), port: cat.iperf },
      echo: { host: ip(11), port: cat.echo },
    },
    {
      name: "node tls relay",
      iperf: { host: ip(21), port: nodePorts.iperf },
      echo: { host: ip(21), port: nodePorts.echo },
    },
    {
      name: "haproxy tls",
      iperf: { host: ip(31), port: hPorts.iperf },
      echo: { host: ip(31), port: hPorts.echo },
    },
    { name: "direct", iperf: targets.iperf, echo: targets.echo },
  ];
  for (const p of paths) await waitForEcho(p.echo.host, p.echo.port, 60_000, 1000);
  // BENCH_ONLY=catena (a regular expression over the path names) measures only the paths that match.
  const only = process.env.BENCH_ONLY;
  if (only) paths.splice(0, paths.length, ...paths.filter((p) => new RegExp(only).test(p.name)));
  // BENCH_REPEAT=N measures each path N times in a row (rows "name #2"...): does a path slow down with use?
  const repeat = Number(process.env.BENCH_REPEAT ?? 1);
  if (repeat > 1)
    paths.splice(
      0,
      paths.length,
      ...paths.flatMap((p) =>
        Array.from({ length: repeat }, (_, i) => ({ ...p, name: i === 0 ? p.name : `${p.name} #${i + 1}` })),
      ),
    );

  const results = new Map<
    string,
    { up: number; down: number; p1: { p50: number; p99: number }; p16: { p50: number; p99: number } }
  >();
  for (const p of paths) {
    const up = await iperf(p.iperf.host, p.iperf.port, false);
    const down = await iperf(p.iperf.host, p.iperf.port, true);
    const p1 = await pingPong(p.echo.host, p.echo.port, 1, SECONDS);
    const p16 = await pingPong(p.echo.host, p.echo.port, 16, SECONDS);
    results.set(p.name, { up, down, p1, p16 });
    console.error(`done: ${p.name}`);
  }
  const hap = results.get("haproxy tls");
  const rows = [...results].map(([name, r]) => [
    name,
    r.up.toFixed(2),
    r.down.toFixed(2),
    hap ? (r.up / hap.up).toFixed(2) : "",
    r.p1.p50.toFixed(0),
    r.p1.p99.toFixed(0),
    r.p16.p50.toFixed(0),
    r.p16.p99.toFixed(0),
    hap ? (r.p1.p50 / hap.p1.p50).toFixed(2) : "",
  ]);
  const head = [
    "path",
    "iperf3 Gbit/s",
    "-R Gbit/s",
    "x haproxy",
    "1c p50 µs",
    "1c p99 µs",
    "16c p50 µs",
    "16c p99 µs",
    "p50 x haproxy",
  ];
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(
    `datapath-vpn: ${SECONDS}s per measurement, one iperf3 stream, 64-byte ping-pong, loopback, 2 cores shared, mTLS 1.3 Ed25519 between two processes per path`,
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
  });
