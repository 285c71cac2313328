// The JetStream KV store next to the embedded store, in the same run, on the machine's NATS:
//
// 1. Store level (in process, no HTTP): 1,000 sequential single-object commits (p50/p99/mean) and
//    one commit of 1,000 objects, for the embedded store, the KV store alone on its bucket, and two
//    KV stores on one bucket taking turns (each commit also waits for the other's). The peer for
//    the KV store: the bare nats.js KV round trips it is built of, 1,000 sequential `kv.put`s and
//    1,000 in parallel. Also: how long a commit on one replica takes to show on the other.
// 2. Through the control server (`POST /v1/apply`: validation, commit, status reconcilers): the
//    same two figures for an embedded-store server and for one of two KV-store replicas.
// 3. xDS convergence after one apply: 1,000 simulated ADS clients (bench/xds-scale-clients.ts,
//    half Delta, half SotW) spread over two KV-store control servers, one endpoint added through one
//    of them; per client, the time from the apply's HTTP response to the ACK of the new version,
//    split by the server the client is on. Peer: the same 1,000 clients on one embedded server.
//
// Run: node --import tsx bench/store-kv.ts
// Env: BENCH_N (1000) objects/commits, BENCH_CLIENTS (1000) ADS clients, BENCH_REPS (5) pushes.
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { freePort } from "../services/control/events/nats-server-process.js";
import type { Resource } from "../services/control/model/resource.js";
import { openEmbeddedStore } from "../services/control/store/embedded-store.js";
import { openKvStore } from "../services/control/store/kv-store.js";
import type { Store } from "../services/control/store/store.js";
import { spawnCatena } from "../test/support/cli.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "../test/support/nats.js";
import { TYPE_URL } from "../xds/type-urls.js";
import type { ClientReport, ClientSpec, FromClients, ToClients } from "./xds-scale-ipc.js";
import { nowMs } from "./xds-scale-ipc.js";

const N = Number(process.env.BENCH_N ?? 1000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1000);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const WARMUP = 2;
const SERVICES = 100;
const EDS = TYPE_URL.endpoint;
const HERE = fileURLToPath(new URL(".", import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const roots: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

// --- numbers ------------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

interface Summary {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

function summary(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length),
  };
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("   ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("   "));
  for (const r of rows) console.log(line(r));
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

// --- objects ------------------------------------------------------------------------------------

function network(name: string, i: number): Resource {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind: "Network",
    metadata: { name, labels: { bench: "store-kv" } },
    spec: { cidr: `10.${Math.floor(i / 256) % 256}.${i % 256}.0/24` },
  };
}

function endpointsOf(s: number): { address: string; port: number }[] {
  return Array.from({ length: 10 }, (_, e) => ({
    address: `10.${(s >> 8) & 255}.${s & 255}.${e + 1}`,
    port: 8080,
  }));
}

function service(name: string, endpoints: { address: string; port: number }[]) {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind: "Service",
    metadata: { name },
    spec: { network: "bench", ports: [{ name: "http", port: 80 }], endpoints },
  };
}

// --- 1. store level -----------------------------------------------------------------------------

interface Row {
  label: string;
  single: Summary;
  bulkMs: number;
  note?: string;
}

async function storeRun(label: string, stores: Store[], note?: string): Promise<Row> {
  const put = (o: Resource) => ({ type: "put" as const, object: o });
  for (let i = 0; i < 50; i++)
    await (stores[i % stores.length] as Store).commit([put(network(`warm-${i}`, 60000 + i))]);
  const single: number[] = [];
  for (let i = 0; i < N; i++) {
    const store = stores[i % stores.length] as Store;
    single.push(await timed(() => store.commit([put(network(`single-${i}`, i))])));
  }
  const bulk = Array.from({ length: N }, (_, i) => put(network(`bulk-${i}`, 20000 + i)));
  const bulkMs = await timed(() => (stores[0] as Store).commit(bulk));
  return { label, single: summary(single), bulkMs, ...(note && { note }) };
}

async function storeLevel(): Promise<{ rows: Row[]; visible: Summary }> {
  const rows: Row[] = [];
  const dir = await mkdtemp(join(tmpdir(), "catena-bench-store-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const embedded = await openEmbeddedStore({ dataDir: dir });
  rows.push(await storeRun("embedded store (fdatasync'd log)", [embedded]));
  await embedded.close();

  const nc = await connect({ servers: SHARED_NATS_URL });
  try {
    // The floor: the KV operations the store is made of, with nothing around them.
    const floorBucket = `${uniqueRoot().toUpperCase()}_FLOOR`;
    const kv = await new Kvm(nc).create(floorBucket, { history: 1 });
    cleanups.push(async () => {
      const c = await connect({ servers: SHARED_NATS_URL });
      await (await jetstreamManager(c)).streams.delete(`KV_${floorBucket}`).catch(() => false);
      await c.close();
    });
    const value = JSON.stringify(network("x", 1));
    for (let i = 0; i < 50; i++) await kv.put(`warm.${i}`, value);
    const puts: number[] = [];
    for (let i = 0; i < N; i++) puts.push(await timed(() => kv.put(`single.${i}`, value)));
    const parallel = await timed(() =>
      Promise.all(Array.from({ length: N }, (_, i) => kv.put(`bulk.${i}`, value))),
    );
    rows.push({
      label: "floor: nats.js kv.put",
      single: summary(puts),
      bulkMs: parallel,
      note: "bulk = N puts in parallel",
    });

    const alone = uniqueRoot();
    roots.push(alone);
    const one = await openKvStore({ connection: nc, root: alone });
    rows.push(await storeRun("KV store, one replica", [one]));
    await one.close();

    const shared = uniqueRoot();
    roots.push(shared);
    const a = await openKvStore({ servers: SHARED_NATS_URL, root: shared });
    const b = await openKvStore({ servers: SHARED_NATS_URL, root: shared });
    rows.push(
      await storeRun("KV store, two replicas taking turns", [a, b], "each commit waits for the other's"),
    );
    // Commit on a, seen by b's watch.
    const waiting = new Map<string, (t: number) => void>();
    const watch = b.watch({ kinds: ["Network"] });
    void (async () => {
      for await (const c of watch) waiting.get(c.object.metadata.name)?.(performance.now());
    })();
    const visible: number[] = [];
    for (let i = 0; i < 200; i++) {
      const name = `visible-${i}`;
      const shown = new Promise<number>((r) => waiting.set(name, r));
      const t = performance.now();
      await a.commit([{ type: "put", object: network(name, 30000 + i) }]);
      visible.push((await shown) - t);
    }
    watch.close();
    await a.close();
    await b.close();
    return { rows, visible: summary(visible) };
  } finally {
    await nc.close();
  }
}

// --- control servers as processes ---------------------------------------------------------------

interface Control {
  url: string;
  xdsAddr: string;
  stop(): Promise<void>;
}

async function startControl(store: "embedded" | "nats-kv", root: string): Promise<Control> {
  const dataDir = await mkdtemp(join(tmpdir(), "catena-bench-kv-"));
  const apiPort = await freePort();
  const xdsPort = await freePort();
  const child = spawnCatena(
    [
      "control",
      "--store",
      store,
      "--api-addr",
      `127.0.0.1:${apiPort}`,
      "--xds-addr",
      `127.0.0.1:${xdsPort}`,
      "--data-dir",
      dataDir,
    ],
    { CATENA_NATS_URL: SHARED_NATS_URL, CATENA_NATS_PREFIX: root, CATENA_LOG_LEVEL: "error" },
  );
  child.stdout?.resume();
  child.stderr?.pipe(process.stderr);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  const url = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`control server (${store}) exited during startup`);
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok) break;
    if (Date.now() > deadline) throw new Error(`control server (${store}) not ready`);
    await sleep(100);
  }
  return { url, xdsAddr: `127.0.0.1:${xdsPort}`, stop };
}

async function apply(url: string, items: unknown[]): Promise<void> {
  const res = await fetch(`${url}/v1/apply`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ items }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`apply: HTTP ${res.status}: ${body.slice(0, 300)}`);
}

// --- 2. through the control server --------------------------------------------------------------

async function serverRun(label: string, url: string): Promise<Row> {
  for (let i = 0; i < 50; i++) await apply(url, [network(`warm-${i}`, 60000 + i)]);
  const single: number[] = [];
  for (let i = 0; i < N; i++) single.push(await timed(() => apply(url, [network(`single-${i}`, i)])));
  const bulkMs = await timed(() =>
    apply(
      url,
      Array.from({ length: N }, (_, i) => network(`bulk-${i}`, 20000 + i)),
    ),
  );
  return { label, single: summary(single), bulkMs };
}

async function serverLevel(): Promise<Row[]> {
  const rows: Row[] = [];
  const eRoot = uniqueRoot();
  roots.push(eRoot);
  const embedded = await startControl("embedded", eRoot);
  rows.push(await serverRun("control server, embedded store", embedded.url));
  await embedded.stop();
  const kRoot = uniqueRoot();
  roots.push(kRoot);
  const a = await startControl("nats-kv", kRoot);
  const b = await startControl("nats-kv", kRoot);
  const row = await serverRun("control server, KV store (1 of 2 replicas)", a.url);
  rows.push({ ...row, note: "both replicas reconcile status" });
  await a.stop();
  await b.stop();
  return rows;
}

// --- 3. xDS convergence over two control servers ------------------------------------------------

class Worker {
  readonly proc: ChildProcess;
  readonly #backlog: FromClients[] = [];
  readonly #waiters: { ev: string; resolve: (m: FromClients) => void }[] = [];

  constructor() {
    this.proc = fork(join(HERE, "xds-scale-clients.ts"), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (m: FromClients) => {
      if (m.ev === "failed") throw new Error(`ADS clients: ${m.error}`);
      const i = this.#waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(m);
      else this.#backlog.push(m);
    });
    cleanups.push(async () => {
      this.proc.kill("SIGTERM");
    });
  }

  send(msg: ToClients): void {
    this.proc.send(msg);
  }

  next<E extends FromClients["ev"]>(ev: E, timeoutMs = 120_000): Promise<Extract<FromClients, { ev: E }>> {
    const i = this.#backlog.findIndex((m) => m.ev === ev);
    if (i >= 0) return Promise.resolve(this.#backlog.splice(i, 1)[0] as Extract<FromClients, { ev: E }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${ev}`)), timeoutMs);
      this.#waiters.push({
        ev,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromClients, { ev: E }>);
        },
      });
    });
  }
}

function clientSpecs(prefix: string, from: number, count: number): ClientSpec[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const names: "*" | string[] = i % 4 < 2 ? "*" : ["svc-0", `svc-${1 + (i % 49)}`, `svc-${50 + (i % 50)}`];
    return { id: `${prefix}-${i}`, mode: i % 2 === 0 ? "delta" : "sotw", subs: [{ typeUrl: EDS, names }] };
  });
}

interface Convergence {
  label: string;
  /** Per client and push: ms from the apply's response to the ACK, by the server the client is on. */
  applied: number[];
  other: number[];
  allAcked: number[];
  missing: number;
}

async function convergence(
  label: string,
  workers: [Worker, Worker],
  servers: [Control, Control] | [Control],
): Promise<Convergence> {
  const [first] = servers;
  await apply(first.url, [
    {
      apiVersion: "catena.dev/v1alpha1",
      kind: "Network",
      metadata: { name: "bench" },
      spec: { cidr: "10.0.0.0/8" },
    },
    ...Array.from({ length: SERVICES }, (_, s) => service(`svc-${s}`, endpointsOf(s))),
  ]);
  await sleep(2000); // compiled on every server, status reconciled
  const half = Math.floor(CLIENTS / 2);
  const target = (w: number) => (servers[w] ?? first).xdsAddr;
  const prefix = label.replace(/\W+/g, "-");
  const connected = workers.map((w) => w.next("connected", 300_000));
  workers[0].send({ cmd: "connect", addr: target(0), clients: clientSpecs(prefix, 0, half), batch: 50 });
  workers[1].send({
    cmd: "connect",
    addr: target(1),
    clients: clientSpecs(prefix, half, CLIENTS - half),
    batch: 50,
  });
  await Promise.all(connected);
  await sleep(1500);
  const result: Convergence = { label, applied: [], other: [], allAcked: [], missing: 0 };
  const extra: { address: string; port: number }[] = [];
  for (let r = 0; r < WARMUP + REPS; r++) {
    const marked = workers.map((w) => w.next("marked"));
    for (const w of workers) w.send({ cmd: "mark", waitTypes: [EDS] });
    await Promise.all(marked);
    const dones = workers.map((w) => w.next("done", 30_000).catch(() => undefined));
    extra.push({ address: `10.254.0.${r + 1}`, port: 8080 });
    await apply(first.url, [service("svc-0", [...endpointsOf(0), ...extra])]);
    const at = nowMs();
    const done = await Promise.all(dones);
    await sleep(300);
    const collected = workers.map((w) => w.next("collected"));
    for (const w of workers) w.send({ cmd: "collect" });
    const reports = await Promise.all(collected);
    if (r < WARMUP) continue;
    reports.forEach((rep, w) => {
      for (const c of rep.reports as ClientReport[]) {
        const eds = c.types[EDS];
        if (!eds || eds.messages === 0) {
          result.missing++;
          continue;
        }
        // Worker 0's clients are on the server the apply went to; worker 1's on the other (if any).
        (w === 0 || servers.length === 1 ? result.applied : result.other).push(eds.firstAck - at);
      }
    });
    result.allAcked.push(
      done.every((d) => d) ? Math.max(...done.map((d) => (d as { at: number }).at)) - at : Number.NaN,
    );
    await sleep(300);
  }
  const disconnected = workers.map((w) => w.next("disconnected"));
  for (const w of workers) w.send({ cmd: "disconnect" });
  await Promise.all(disconnected);
  return result;
}

async function xdsLevel(): Promise<Convergence[]> {
  const workers: [Worker, Worker] = [new Worker(), new Worker()];
  await Promise.all(workers.map((w) => w.next("ready")));
  const out: Convergence[] = [];
  const eRoot = uniqueRoot();
  roots.push(eRoot);
  const single = await startControl("embedded", eRoot);
  out.push(await convergence("one server, embedded store", workers, [single]));
  await single.stop();
  const kRoot = uniqueRoot();
  roots.push(kRoot);
  const a = await startControl("nats-kv", kRoot);
  const b = await startControl("nats-kv", kRoot);
  out.push(await convergence("two servers, KV store", workers, [a, b]));
  await a.stop();
  await b.stop();
  return out;
}

// --- report -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`store-kv bench: N=${N}, ${CLIENTS} ADS clients, ${REPS} pushes; NATS ${SHARED_NATS_URL}`);
  const { rows: storeRows, visible } = await storeLevel();
  const serverRows = await serverLevel();
  const conv = await xdsLevel();

  console.log(`\n1. Store level: ${N} sequential single-object commits (ms), and one commit of ${N} objects`);
  table(
    ["", "p50", "p99", "max", "mean", `bulk ${N} (ms)`, "objects/s", "note"],
    storeRows.map((r) => [
      r.label,
      fmt(r.single.p50),
      fmt(r.single.p99),
      fmt(r.single.max),
      fmt(r.single.mean),
      fmt(r.bulkMs, 1),
      fmt((N * 1000) / r.bulkMs, 0),
      r.note ?? "",
    ]),
  );
  console.log(
    `   a commit on one KV replica seen by the other's watch (from commit start, ms): p50 ${fmt(visible.p50)}, p99 ${fmt(visible.p99)}, max ${fmt(visible.max)}`,
  );

  console.log(
    `\n2. Through the control server (POST /v1/apply): ${N} sequential single-object applies, one of ${N}`,
  );
  table(
    ["", "p50", "p99", "max", "mean", `bulk ${N} (ms)`, "objects/s", "note"],
    serverRows.map((r) => [
      r.label,
      fmt(r.single.p50),
      fmt(r.single.p99),
      fmt(r.single.max),
      fmt(r.single.mean),
      fmt(r.bulkMs, 1),
      fmt((N * 1000) / r.bulkMs, 0),
      r.note ?? "",
    ]),
  );

  console.log(
    `\n3. xDS convergence: ${CLIENTS} ADS clients, one endpoint added; ms from the apply's response to each ACK`,
  );
  const cell = (xs: number[]) => {
    const s = summary(xs);
    return xs.length === 0 ? "-" : `${fmt(s.p50, 1)} / ${fmt(s.p99, 1)} / ${fmt(s.max, 1)}`;
  };
  table(
    [
      "",
      "clients on the applied-to server p50/p99/max",
      "clients on the other server p50/p99/max",
      "all ACKed, median push",
      "missing",
    ],
    conv.map((c) => [
      c.label,
      cell(c.applied),
      cell(c.other),
      fmt(summary(c.allAcked.filter(Number.isFinite)).p50, 1),
      String(c.missing),
    ]),
  );
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const root of roots) {
    await deleteEventStream(SHARED_NATS_URL, root).catch(() => undefined);
    await deleteStateBucket(SHARED_NATS_URL, root).catch(() => undefined);
  }
}
