// Discovery DNS against dnsmasq in the same run, for A lookups over 1,000 services (2 endpoints each):
// 1. queries per second at saturation (dnsperf, 100 queries outstanding), each server twice, alternating;
// 2. p50 / p99 / p99.9 latency at 5,000 queries per second (dnsperf -Q 5000 -v, per-query latencies);
// 3. churn: 1,000 endpoint registrations per second through the API for 10 s (TTL 5 s, so expiries add
//    removals from the 6th second on); for every 20th, the time from sending the registration to the
//    first DNS answer that holds the new address.
// Catena's DNS is the real `catena function discovery` process fed over xDS by a control server (which
// runs in this process, with the API client); dnsmasq serves the same names from a hosts file.
// Run: node --import tsx bench/dns.ts   (BENCH_SECONDS per dnsperf run, default 10)
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as dnsPacket from "dns-packet";
import { freePort } from "../services/control/events/nats-server-process.js";
import { spawnCatena } from "../test/support/cli.js";
import { post, settled, startTestControl } from "../test/support/control.js";

const run = promisify(execFile);
const SERVICES = 1000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CHURN_RATE = Number(process.env.BENCH_CHURN_RATE ?? 1000);
const CHURN_SECONDS = 10;
const MAX_IN_FLIGHT = 64;

const addr = (i: number, k: number) => `10.${k}.${i >> 8}.${i & 255}`;

async function dnsperf(port: number, file: string, args: string[]): Promise<string> {
  const { stdout } = await run("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", file, ...args], {
    maxBuffer: 256 << 20,
  });
  return stdout;
}

async function saturation(port: number, file: string): Promise<number> {
  const out = await dnsperf(port, file, ["-l", String(SECONDS), "-c", "4", "-q", "100"]);
  const qps = /Queries per second:\s+([\d.]+)/.exec(out)?.[1];
  const lost = /Queries lost:\s+(\d+)/.exec(out)?.[1];
  if (!qps) throw new Error(`dnsperf said:\n${out}`);
  if (Number(lost) > 0) console.error(`  (port ${port}: ${lost} queries lost)`);
  return Number(qps);
}

async function latencyAt(
  port: number,
  file: string,
  qps: number,
): Promise<{ p50: number; p99: number; p999: number; n: number }> {
  const out = await dnsperf(port, file, ["-l", String(SECONDS), "-Q", String(qps), "-v"]);
  const ms = out
    .split("\n")
    .filter((l) => l.startsWith("> "))
    .map((l) => Number(l.split(" ").at(-1)) * 1000)
    .sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), p999: q(0.999), n: ms.length };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "catena-bench-dns-"));
  // dnsmasq drops to an unprivileged user before it reads its hosts file.
  await chmod(dir, 0o755);
  const control = await startTestControl();
  const children: ChildProcess[] = [];
  try {
    // 1,000 services, 2 static endpoints each.
    const docs = [
      `apiVersion: catena.dev/v1alpha1\nkind: Network\nmetadata: {name: bench}\nspec: {cidr: 10.0.0.0/8}`,
    ];
    for (let i = 1; i <= SERVICES; i++) {
      docs.push(
        `apiVersion: catena.dev/v1alpha1\nkind: Service\nmetadata: {name: svc-${i}}\nspec:\n  network: bench\n  ports: [{name: http, port: 80}]\n  endpoints: [{address: ${addr(i, 1)}, port: 80}, {address: ${addr(i, 2)}, port: 80}]`,
      );
    }
    const applied = await post(control.url, "/v1/apply", docs.join("\n---\n"));
    if (applied.status !== 200) throw new Error(JSON.stringify(applied.body));
    await settled(control, 30_000);

    // One discovery instance answering in its own process, one with two DNS worker processes.
    const startCatena = async (nodeId: string, extra: string[]) => {
      const port = await freePort();
      const child = spawnCatena([
        "function",
        "discovery",
        "--function",
        "dns",
        "--node-id",
        nodeId,
        "--xds-addr",
        control.server.xdsAddr,
        "--dns-addr",
        `127.0.0.1:${port}`,
        ...extra,
      ]);
      children.push(child);
      // Drain its output (a full pipe would stall it); warnings go to ours.
      child.stdout?.resume();
      child.stderr?.on("data", (d: Buffer) => process.stderr.write(d));
      return { port, child };
    };
    const { port: catenaPort } = await startCatena("bench-dns", []);
    const { port: workersPort, child: workers } = await startCatena("bench-dns-w2", ["--dns-workers", "2"]);

    const hosts = join(dir, "hosts");
    const lines: string[] = [];
    for (let i = 1; i <= SERVICES; i++)
      lines.push(`${addr(i, 1)} svc-${i}.catena`, `${addr(i, 2)} svc-${i}.catena`);
    await writeFile(hosts, `${lines.join("\n")}\n`);
    const dnsmasqPort = await freePort();
    const dnsmasq = spawn(
      "/usr/sbin/dnsmasq",
      [
        "-k",
        "--no-resolv",
        "--no-hosts",
        `--addn-hosts=${hosts}`,
        `--port=${dnsmasqPort}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--cache-size=10000",
        "--local=/catena/",
        "--pid-file",
      ],
      { stdio: "ignore" },
    );
    children.push(dnsmasq);

    const queries = join(dir, "queries");
    const names = Array.from({ length: SERVICES }, (_, i) => `svc-${i + 1}.catena A`);
    for (let i = names.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [names[i], names[j]] = [names[j] as string, names[i] as string];
    }
    await writeFile(queries, `${names.join("\n")}\n`);

    // Both answer every name before anything is measured.
    for (const port of [catenaPort, workersPort, dnsmasqPort]) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const out = await run("dig", [
          "@127.0.0.1",
          "-p",
          String(port),
          "+short",
          "+time=1",
          "+tries=1",
          `svc-${SERVICES}.catena`,
        ]).catch(() => ({ stdout: "" }));
        if (out.stdout.trim().split("\n").length === 2) break;
        if (Date.now() > deadline) throw new Error(`DNS server on ${port} does not answer`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    if (process.env.BENCH_ONLY === "churn") return await churn(control.url, catenaPort);
    console.log(
      `A lookups over ${SERVICES} services (2 endpoints each), dnsperf ${SECONDS} s per run, 2 cores shared`,
    );
    const servers = [
      ["catena", catenaPort],
      ["catena --dns-workers 2", workersPort],
      ["dnsmasq", dnsmasqPort],
    ] as const;
    const sat = new Map<string, number[]>(servers.map(([name]) => [name, []]));
    for (let round = 0; round < 2; round++)
      for (const [name, port] of servers) sat.get(name)?.push(await saturation(port, queries));
    const best = (name: string) => Math.max(...(sat.get(name) ?? [0]));
    const f = (n: number) => n.toFixed(3);
    const rows: string[] = [];
    for (const [name, port] of servers) {
      const l = await latencyAt(port, queries, 5000);
      const runs = (sat.get(name) ?? []).map((x) => Math.round(x)).join(", ");
      rows.push(
        `| ${name} | ${Math.round(best(name))} (${runs}) | ${(best(name) / best("dnsmasq")).toFixed(2)}x | ${f(l.p50)} | ${f(l.p99)} | ${f(l.p999)} |`,
      );
    }
    console.log(
      "\n| server | qps at saturation (best of 2) | vs dnsmasq | p50 ms @5k qps | p99 ms @5k qps | p99.9 ms @5k qps |",
    );
    console.log("|---|---|---|---|---|---|");
    for (const r of rows) console.log(r);

    // The churn is measured on one instance; the other would only take CPU from it.
    workers.kill("SIGTERM");
    await churn(control.url, catenaPort);
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await control.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** 1,000 registrations per second; every 20th is timed from POST to the first DNS answer holding it. */
async function churn(url: string, dnsPort: number): Promise<void> {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  const pending = new Map<number, { name: string; bytes: Buffer; sent: number }>();
  const latencies: number[] = [];
  const posts: number[] = [];
  let nextId = 1;
  socket.on("message", (msg) => {
    const id = msg.readUInt16BE(0);
    const p = pending.get(id);
    if (!p) return;
    // The answer holds the address when its 4 bytes are there (past the header): decoding every
    // answer to a poll would load this process, which is also the control server being measured.
    if (msg.indexOf(p.bytes, 12) >= 0) {
      latencies.push(performance.now() - p.sent);
      pending.delete(id);
    }
  });
  // Poll every pending probe every 5 ms (each probe has its own id): finer polling of many pending
  // probes would itself load the DNS server and the control process it shares the machine with.
  const poller = setInterval(() => {
    for (const [id, p] of pending) {
      socket.send(
        dnsPacket.encode({ type: "query", id, questions: [{ type: "A", name: p.name }] }),
        dnsPort,
        "127.0.0.1",
      );
    }
  }, 5);

  // node:http with keep-alive: fetch (undici) cost more CPU than the server it was measuring.
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  const total = CHURN_RATE * CHURN_SECONDS;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  // Paced at CHURN_RATE with at most MAX_IN_FLIGHT requests open: a server that falls behind shows
  // as a lower achieved rate, not as an ever-growing queue in the client.
  while (sent < total) {
    const due = Math.floor(((performance.now() - started) / 1000) * CHURN_RATE);
    while (sent < Math.min(due, total) && inflight.size < MAX_IN_FLIGHT) {
      const i = sent++;
      const service = `svc-${(i % SERVICES) + 1}`;
      const address = `10.${100 + Math.floor(i / 65536)}.${(i >> 8) & 255}.${i & 255}`;
      const t0 = performance.now();
      const probe = i % 20 === 0;
      const p = register(agent, url, service, { address, port: 80, ttlSeconds: 5 })
        .then((status) => {
          posts.push(performance.now() - t0);
          if (status >= 300) failed++;
          else if (probe)
            pending.set(nextId++ & 0xffff, {
              name: `${service}.catena`,
              bytes: Buffer.from(address.split(".").map(Number)),
              sent: t0,
            });
        })
        .catch(() => {
          failed++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - started) / 1000;
  // CPU of this process (control server, its API and the HTTP client) per registration: what the
  // machine's load does not inflate as much as wall time.
  const cpu = process.cpuUsage(cpu0);
  const cpuPerRegistration = (cpu.user + cpu.system) / 1000 / total;
  const deadline = Date.now() + 5000;
  while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  clearInterval(poller);
  socket.close();
  agent.destroy();
  latencies.sort((a, b) => a - b);
  posts.sort((a, b) => a - b);
  const pq = (p: number) =>
    (posts[Math.min(posts.length - 1, Math.floor(p * posts.length))] ?? Number.NaN).toFixed(1);
  const q = (p: number) =>
    (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN).toFixed(1);
  console.log(
    `\nchurn: ${total} registrations in ${elapsed.toFixed(1)} s (${Math.round(total / elapsed)}/s, ${failed} failed); ` +
      `registration → DNS answer over ${latencies.length} probes (${pending.size} never seen): ` +
      `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; the POST itself: p50 ${pq(0.5)} ms, p99 ${pq(0.99)} ms; ` +
      `control server CPU ${cpuPerRegistration.toFixed(2)} ms per registration (HTTP client included)`,
  );
}

function register(agent: Agent, base: string, service: string, body: unknown): Promise<number> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(`/v1/services/${service}/endpoints`, base),
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

await main();
