// xDS at scale: how fast one change reaches N ADS clients through the control server, and what a
// push costs in bytes per client, Delta next to SotW. The peer, measured in the same run: the bare
// xDS fan-out (AdsServer + SnapshotCache from xds/, setSnapshot directly, no control server).
//
// 1. Convergence, at 100 and at 1,000 services (10 endpoints each): N simulated ADS clients (half
//    Delta, half SotW; half EDS wildcard, half three named services), spread over two child
//    processes, each on its own connection, every response ACKed. One endpoint is added to a
//    service every client watches (POST /v1/apply); per client, the time from the apply's HTTP
//    response (and from the request start) to the ACK it wrote for the new version (the clock:
//    CLOCK_MONOTONIC, shared by the processes). The control server runs as its own process; so
//    does the floor server, which gets the same Service documents and pushes by setSnapshot.
//    Also: server RSS per connected client (VmRSS before/after connecting) and server CPU per push
//    (utime+stime from /proc/<pid>/stat around the push, idle rate subtracted).
// 2. Bytes: clients subscribed wildcard to CDS, EDS, LDS and RDS; one endpoint changed, then one
//    service added, at 100 services / 1,000 endpoints and 1,000 services / 10,000 endpoints (each
//    scale applied in one request to a fresh control server). Bytes = serialized size of the
//    (Delta)DiscoveryResponses a client reads off its stream for that push.
//
// Run: node --import tsx bench/xds-scale.ts
// Env: BENCH_N clients (1000), BENCH_REPS measured pushes (5), BENCH_SERVICES convergence scales
//      ("100,1000"), BENCH_BYTES_CLIENTS (50),
//      BENCH_PROFILE=DIR writes CPU profiles of the control server and floor processes there.
import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../services/control/events/nats-server-process.js";
import { deleteEventStream, SHARED_NATS_URL, uniqueRoot } from "../test/support/nats.js";
import { TYPE_URL } from "../xds/type-urls.js";
import type {
  ClientReport,
  ClientSpec,
  FloorEndpoint,
  FromClients,
  FromFloor,
  Mode,
  ToClients,
  ToFloor,
  TypeStats,
} from "./xds-scale-ipc.js";
import { nowMs, serviceDoc } from "./xds-scale-ipc.js";

const N = Number(process.env.BENCH_N ?? 1000);
const REPS = Number(process.env.BENCH_REPS ?? 5);
const WARMUP = 2;
const BYTES_CLIENTS = Number(process.env.BENCH_BYTES_CLIENTS ?? 50);
const WORKERS = 2;
const CONVERGENCE_SCALES = (process.env.BENCH_SERVICES ?? "100,1000").split(",").map(Number);
const ENDPOINTS_PER_SERVICE = 10;
const BYTES_SCALES = [100, 1000];
const TARGET_MS = 1000;
const DEBOUNCE_MS = 50; // the control server's snapshot debounce (services/control/xds-server.ts)

const HERE = fileURLToPath(new URL(".", import.meta.url));
const MAIN = fileURLToPath(new URL("../services/cli/main.ts", import.meta.url));
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const EDS = TYPE_URL.endpoint;
const TYPE_SHORT: Record<string, string> = {
  [TYPE_URL.cluster]: "CDS",
  [TYPE_URL.endpoint]: "EDS",
  [TYPE_URL.listener]: "LDS",
  [TYPE_URL.route]: "RDS",
};

// --- small helpers -----------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

/** CPU time (user + system, ms) and resident set (KiB) of a process, from /proc. */
async function procStat(pid: number): Promise<{ cpuMs: number; rssKiB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields after "(comm)": state is field 3, so utime (14) and stime (15) sit at 11 and 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return { cpuMs: (ticks * 1000) / CLK_TCK, rssKiB: Number(rss?.[1] ?? Number.NaN) };
}

/** A forked child speaking the bench IPC: send commands, await events by name. */
class Child<In, Out extends { ev: string }> {
  readonly proc: ChildProcess;
  readonly #backlog: Out[] = [];
  readonly #waiters: { ev: string; resolve: (m: Out) => void; reject: (e: Error) => void }[] = [];
  #dead: Error | undefined;

  constructor(module: string, label: string, profile?: string) {
    this.proc = fork(join(HERE, module), [], {
      execArgv: [
        // One directory per process: its tsx loader thread writes a profile of its own there too.
        ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${join(profile, label)}`] : []),
        "--import",
        "tsx",
      ],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.proc.on("message", (m: Out) => {
      if (m.ev === "failed") {
        this.#fail(new Error(`${label}: ${(m as unknown as { error: string }).error}`));
        return;
      }
      const i = this.#waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(m);
      else this.#backlog.push(m);
    });
    this.proc.on("exit", (code, signal) => this.#fail(new Error(`${label} exited (${code ?? signal})`)));
  }

  send(msg: In): void {
    this.proc.send(msg as object);
  }

  next<E extends Out["ev"]>(ev: E, timeoutMs = 60_000): Promise<Extract<Out, { ev: E }>> {
    const i = this.#backlog.findIndex((m) => m.ev === ev);
    if (i >= 0) return Promise.resolve(this.#backlog.splice(i, 1)[0] as Extract<Out, { ev: E }>);
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const j = this.#waiters.indexOf(waiter);
        if (j >= 0) this.#waiters.splice(j, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${ev}`));
      }, timeoutMs);
      const waiter = {
        ev,
        resolve: (m: Out) => {
          clearTimeout(timer);
          resolve(m as Extract<Out, { ev: E }>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}

type Workers = Child<ToClients, FromClients>[];

async function allWorkers<E extends FromClients["ev"]>(
  workers: Workers,
  msg: ToClients | ((i: number) => ToClients),
  ev: E,
  timeoutMs = 60_000,
): Promise<Extract<FromClients, { ev: E }>[]> {
  const replies = workers.map((w) => w.next(ev, timeoutMs));
  workers.forEach((w, i) => {
    w.send(typeof msg === "function" ? msg(i) : msg);
  });
  return Promise.all(replies);
}

async function collect(workers: Workers): Promise<ClientReport[]> {
  return (await allWorkers(workers, { cmd: "collect" }, "collected")).flatMap((r) => r.reports);
}

// --- the model ---------------------------------------------------------------------------------

function endpointsOf(s: number, count = ENDPOINTS_PER_SERVICE): FloorEndpoint[] {
  return Array.from({ length: count }, (_, e) => ({
    address: `10.${(s >> 8) & 255}.${s & 255}.${e + 1}`,
    port: 8080,
  }));
}

const network = {
  apiVersion: "catena.dev/v1alpha1",
  kind: "Network",
  metadata: { name: "bench" },
  spec: { cidr: "10.0.0.0/8" },
};

const service = serviceDoc;

// --- the control server as a process -----------------------------------------------------------

interface ControlProc {
  url: string;
  xdsAddr: string;
  pid: number;
  stop(): Promise<void>;
}

const roots: string[] = [];
const dirs: string[] = [];
const stoppers: (() => Promise<void>)[] = [];

async function startControl(label: string): Promise<ControlProc> {
  const dataDir = await mkdtemp(join(tmpdir(), "catena-bench-xds-"));
  dirs.push(dataDir);
  const root = uniqueRoot();
  roots.push(root);
  const apiPort = await freePort();
  const xdsPort = await freePort();
  const profile = process.env.BENCH_PROFILE;
  const proc = spawn(
    process.execPath,
    [
      ...(profile ? ["--cpu-prof", `--cpu-prof-dir=${join(profile, `control-${label}`)}`] : []),
      "--import",
      "tsx",
      MAIN,
      "control",
      "--api-addr",
      `127.0.0.1:${apiPort}`,
      "--xds-addr",
      `127.0.0.1:${xdsPort}`,
      "--data-dir",
      dataDir,
    ],
    {
      env: {
        ...process.env,
        CATENA_NATS_URL: SHARED_NATS_URL,
        CATENA_NATS_PREFIX: root,
        CATENA_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  // The server's log (JSON lines) goes to its data directory, out of the table's way.
  proc.stdout?.pipe(createWriteStream(join(dataDir, "control.log")));
  let exited = false;
  const exit = new Promise<void>((r) =>
    proc.once("exit", () => {
      exited = true;
      r();
    }),
  );
  const stop = async () => {
    if (exited) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exit;
    clearTimeout(timer);
  };
  stoppers.push(stop);
  const url = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`control server (${label}) exited during startup; log in ${dataDir}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`control server (${label}) not ready in 30 s`);
    await sleep(100);
  }
  return { url, xdsAddr: `127.0.0.1:${xdsPort}`, pid: proc.pid as number, stop };
}

async function apply(url: string, items: unknown[]): Promise<void> {
  const res = await fetch(`${url}/v1/apply`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ items }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`apply: HTTP ${res.status}: ${body.slice(0, 500)}`);
}

// --- convergence -------------------------------------------------------------------------------

interface Sample {
  mode: Mode;
  wildcard: boolean;
  /** ms from the trigger (apply response, or setSnapshot for the floor) to the client's ACK. */
  ack: number;
  /** ms from the apply request's start to the ACK (control server only). */
  ackFromRequest: number;
  recv: number;
  edsResources: number;
}

interface PushResult {
  samples: Sample[];
  allAcked: number;
  allAckedFromRequest: number;
  httpMs: number;
  cpuMs: number;
  bytesPerClient: number;
  missing: number;
}

interface SideResult {
  kind: "control" | "floor";
  services: number;
  pushes: PushResult[];
  connectMs: number;
  rssPerClientKiB: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** After the pushes: what stays once the initial sync's garbage had more time to go. */
  rssEndMiB: number;
  idleCpuMsPerS: number;
  serverAcks: string;
}

function convergenceClients(prefix: string, services: number): ClientSpec[][] {
  const perWorker: ClientSpec[][] = Array.from({ length: WORKERS }, () => []);
  for (let i = 0; i < N; i++) {
    const kind = i % 4; // delta wildcard, sotw wildcard, delta named, sotw named
    const mode: Mode = kind % 2 === 0 ? "delta" : "sotw";
    const names: "*" | string[] =
      kind < 2 ? "*" : ["svc-0", `svc-${1 + (i % 49)}`, `svc-${50 + (i % (services - 50))}`];
    perWorker[Math.floor(i / 4) % WORKERS]?.push({
      id: `${prefix}-${i}`,
      mode,
      subs: [{ typeUrl: EDS, names }],
    });
  }
  return perWorker;
}

/**
 * One push to every connected client. `trigger` starts it and resolves with the moments that
 * count: the trigger time (apply response / setSnapshot) and the request start.
 */
async function push(
  workers: Workers,
  pid: number,
  idleCpuMsPerS: number,
  trigger: () => Promise<{ at: number; requestStart: number }>,
): Promise<PushResult> {
  await allWorkers(workers, { cmd: "mark", waitTypes: [EDS] }, "marked");
  const dones = workers.map((w) => w.next("done", 30_000));
  const cpu0 = (await procStat(pid)).cpuMs;
  const w0 = nowMs();
  const { at, requestStart } = await trigger();
  const finished = await Promise.allSettled(dones);
  // Let the server take in the last ACKs before reading its CPU time.
  await sleep(500);
  const cpu1 = (await procStat(pid)).cpuMs;
  const windowMs = nowMs() - w0;
  const reports = await collect(workers);
  const samples: Sample[] = [];
  let missing = 0;
  let bytes = 0;
  for (const r of reports) {
    const eds = r.types[EDS];
    if (!eds || eds.messages === 0) {
      missing++;
      continue;
    }
    bytes += Object.values(r.types).reduce((a, t) => a + t.bytes, 0);
    samples.push({
      mode: r.mode,
      wildcard: r.wildcard,
      ack: eds.firstAck - at,
      ackFromRequest: eds.firstAck - requestStart,
      recv: eds.firstRecv - at,
      edsResources: eds.resources,
    });
  }
  if (finished.some((f) => f.status === "rejected")) {
    console.error(`  warning: ${missing} of ${reports.length} clients never received the push`);
  }
  const odd = samples.filter((x) => x.edsResources !== 1).length;
  if (odd > 0) console.error(`  warning: ${odd} clients received other than the one changed resource`);
  const last = Math.max(...samples.map((s) => s.ack + at));
  return {
    samples,
    allAcked: missing > 0 ? Number.POSITIVE_INFINITY : last - at,
    allAckedFromRequest: missing > 0 ? Number.POSITIVE_INFINITY : last - requestStart,
    httpMs: at - requestStart,
    cpuMs: cpu1 - cpu0 - (idleCpuMsPerS * windowMs) / 1000,
    bytesPerClient: bytes / Math.max(1, samples.length),
    missing,
  };
}

async function connectAll(workers: Workers, addr: string, perWorker: ClientSpec[][]): Promise<number> {
  const t = nowMs();
  await allWorkers(
    workers,
    (i) => ({ cmd: "connect", addr, clients: perWorker[i] ?? [], batch: 100 }),
    "connected",
    240_000,
  );
  return nowMs() - t;
}

/**
 * Waits until the process is quiet (under 5% of a core over 500 ms: the initial sync's ACKs and
 * its garbage are behind it), then returns its idle CPU rate (ms per s) over 1.5 s.
 */
async function settle(pid: number, maxMs = 30_000): Promise<number> {
  const deadline = nowMs() + maxMs;
  let last = (await procStat(pid)).cpuMs;
  for (;;) {
    await sleep(500);
    const now = (await procStat(pid)).cpuMs;
    const busy = now - last;
    last = now;
    if (busy <= 25 || nowMs() > deadline) break;
  }
  await sleep(1500);
  return (((await procStat(pid)).cpuMs - last) * 1000) / 1500;
}

async function convergenceControl(workers: Workers, services: number): Promise<SideResult> {
  const ctl = await startControl(`convergence-${services}`);
  const base = Array.from({ length: services }, (_, s) => service(`svc-${s}`, endpointsOf(s)));
  await apply(ctl.url, [network, ...base]);
  await settle(ctl.pid); // compiled and published, status reconciled
  const before = await procStat(ctl.pid);
  const connectMs = await connectAll(workers, ctl.xdsAddr, convergenceClients("ctl", services));
  const idle = await settle(ctl.pid);
  const after = await procStat(ctl.pid);
  const extra: FloorEndpoint[] = [];
  const pushes: PushResult[] = [];
  for (let r = 0; r < WARMUP + REPS; r++) {
    extra.push({ address: `10.254.${Math.floor(r / 250)}.${(r % 250) + 1}`, port: 8080 });
    const body = [service("svc-0", [...endpointsOf(0), ...extra])];
    const result = await push(workers, ctl.pid, idle, async () => {
      const requestStart = nowMs();
      await apply(ctl.url, body);
      return { at: nowMs(), requestStart };
    });
    if (r >= WARMUP) pushes.push(result);
    await sleep(300);
  }
  const end = await procStat(ctl.pid);
  // The server's own view: every node ACKed what it was sent last.
  const nodes = (await (await fetch(`${ctl.url}/v1/xds/nodes`)).json()) as {
    items: { id: string; connected: boolean; types: { sent?: string; acked?: string }[] }[];
  };
  const ours = nodes.items.filter((n) => n.connected && n.id.startsWith("ctl-"));
  const acked = ours.filter((n) => n.types.every((t) => t.sent !== undefined && t.acked === t.sent));
  await allWorkers(workers, { cmd: "disconnect" }, "disconnected");
  await ctl.stop();
  return {
    kind: "control",
    services,
    pushes,
    connectMs,
    rssPerClientKiB: (after.rssKiB - before.rssKiB) / N,
    rssBeforeMiB: before.rssKiB / 1024,
    rssAfterMiB: after.rssKiB / 1024,
    rssEndMiB: end.rssKiB / 1024,
    idleCpuMsPerS: idle,
    serverAcks: `${acked.length}/${ours.length}`,
  };
}

async function convergenceFloor(workers: Workers, services: number): Promise<SideResult> {
  const floor = new Child<ToFloor, FromFloor>(
    "xds-scale-floor.ts",
    `floor-${services}`,
    process.env.BENCH_PROFILE,
  );
  stoppers.push(() => floor.stop());
  try {
    const { port } = await floor.next("listening");
    const pid = floor.proc.pid as number;
    const ready = floor.next("ready");
    floor.send({
      cmd: "init",
      services: Array.from({ length: services }, (_, s) => service(`svc-${s}`, endpointsOf(s))),
    });
    await ready;
    await sleep(500);
    const before = await procStat(pid);
    const connectMs = await connectAll(workers, `127.0.0.1:${port}`, convergenceClients("floor", services));
    const idle = await settle(pid);
    const after = await procStat(pid);
    const extra: FloorEndpoint[] = [];
    const pushes: PushResult[] = [];
    for (let r = 0; r < WARMUP + REPS; r++) {
      extra.push({ address: `10.254.${Math.floor(r / 250)}.${(r % 250) + 1}`, port: 8080 });
      const doc = service("svc-0", [...endpointsOf(0), ...extra]);
      const result = await push(workers, pid, idle, async () => {
        const pushed = floor.next("pushed");
        floor.send({ cmd: "push", service: doc });
        const { start } = await pushed;
        return { at: start, requestStart: start };
      });
      if (r >= WARMUP) pushes.push(result);
      await sleep(300);
    }
    const end = await procStat(pid);
    const acks = floor.next("acks");
    floor.send({ cmd: "acks" });
    const { connected, acked } = await acks;
    await allWorkers(workers, { cmd: "disconnect" }, "disconnected");
    return {
      kind: "floor",
      services,
      pushes,
      connectMs,
      rssPerClientKiB: (after.rssKiB - before.rssKiB) / N,
      rssBeforeMiB: before.rssKiB / 1024,
      rssAfterMiB: after.rssKiB / 1024,
      rssEndMiB: end.rssKiB / 1024,
      idleCpuMsPerS: idle,
      serverAcks: `${acked}/${connected}`,
    };
  } finally {
    await floor.stop();
  }
}

// --- bytes -------------------------------------------------------------------------------------

interface BytesCell {
  perType: Record<string, { bytes: number; resources: number; messages: number }>;
  total: number;
}

interface BytesScale {
  services: number;
  applyMs: number;
  initial: Record<Mode, BytesCell>;
  endpointChanged: Record<Mode, BytesCell>;
  serviceAdded: Record<Mode, BytesCell>;
  allAckedMs: { endpointChanged: number; serviceAdded: number };
  httpMs: { endpointChanged: number; serviceAdded: number };
}

const ALL_TYPES = [TYPE_URL.cluster, TYPE_URL.endpoint, TYPE_URL.listener, TYPE_URL.route];

/** Mean per client of each mode; every client of a mode must have received the same. */
function bytesByMode(reports: ClientReport[]): Record<Mode, BytesCell> {
  const out = {} as Record<Mode, BytesCell>;
  for (const mode of ["delta", "sotw"] as const) {
    const mine = reports.filter((r) => r.mode === mode);
    const perType: BytesCell["perType"] = {};
    let total = 0;
    for (const r of mine) {
      for (const [t, s] of Object.entries(r.types) as [string, TypeStats][]) {
        const cell = perType[t] ?? { bytes: 0, resources: 0, messages: 0 };
        perType[t] = cell;
        cell.bytes += s.bytes / mine.length;
        cell.resources += s.resources / mine.length;
        cell.messages += s.messages / mine.length;
        total += s.bytes / mine.length;
      }
    }
    const totals = new Set(mine.map((r) => Object.values(r.types).reduce((a, t) => a + t.bytes, 0)));
    if (totals.size > 1)
      console.error(`  note: ${mode} clients received differing byte counts: ${[...totals]}`);
    out[mode] = { perType, total };
  }
  return out;
}

async function bytesAt(workers: Workers, services: number): Promise<BytesScale> {
  const ctl = await startControl(`bytes-${services}`);
  try {
    const items = Array.from({ length: services }, (_, s) => service(`svc-${s}`, endpointsOf(s)));
    const t = nowMs();
    await apply(ctl.url, [network, ...items]);
    const applyMs = nowMs() - t;
    await settle(ctl.pid); // compiled and published, status reconciled: one initial snapshot for all
    const perWorker: ClientSpec[][] = Array.from({ length: WORKERS }, () => []);
    for (let i = 0; i < BYTES_CLIENTS; i++) {
      perWorker[Math.floor(i / 2) % WORKERS]?.push({
        id: `bytes-${i}`,
        mode: i % 2 === 0 ? "delta" : "sotw",
        subs: ALL_TYPES.map((typeUrl) => ({ typeUrl, names: "*" as const })),
      });
    }
    await connectAll(workers, ctl.xdsAddr, perWorker);
    await sleep(500);
    const initial = bytesByMode(await collect(workers));

    const measure = async (waitTypes: string[], change: () => Promise<void>) => {
      await allWorkers(workers, { cmd: "mark", waitTypes }, "marked");
      const dones = workers.map((w) => w.next("done", 30_000));
      const start = nowMs();
      await change();
      const httpMs = nowMs() - start;
      const at = (await Promise.all(dones)).map((d) => d.at);
      const allAcked = Math.max(...at) - start;
      await sleep(500); // anything after the first response of each type (SotW make-before-break)
      return { cells: bytesByMode(await collect(workers)), allAcked, httpMs };
    };
    // One endpoint changes: svc-7's fourth endpoint moves.
    const moved = endpointsOf(7);
    moved[3] = { address: "10.253.0.7", port: 8080 };
    const ep = await measure([EDS], () => apply(ctl.url, [service("svc-7", moved)]));
    // One service is added: new Cluster, ClusterLoadAssignment, Listener and RouteConfiguration.
    const added = await measure(ALL_TYPES, () => apply(ctl.url, [service("svc-added", endpointsOf(4000))]));
    await allWorkers(workers, { cmd: "disconnect" }, "disconnected");
    return {
      services,
      applyMs,
      initial,
      endpointChanged: ep.cells,
      serviceAdded: added.cells,
      allAckedMs: { endpointChanged: ep.allAcked, serviceAdded: added.allAcked },
      httpMs: { endpointChanged: ep.httpMs, serviceAdded: added.httpMs },
    };
  } finally {
    await ctl.stop();
  }
}

// --- report ------------------------------------------------------------------------------------

function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return "never";
  return n.toFixed(digits);
}

function kib(bytes: number): string {
  return bytes >= 10_240 ? `${(bytes / 1024).toFixed(1)} KiB` : `${Math.round(bytes)} B`;
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("   ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("   "));
  for (const r of rows) console.log(line(r));
}

function convergenceRows(sides: SideResult[]): string[][] {
  const pooled = (s: SideResult, pick: (x: Sample) => boolean = () => true) =>
    s.pushes.flatMap((p) => p.samples.filter(pick).map((x) => x.ack)).sort((a, b) => a - b);
  const pct = (p: number, pick?: (x: Sample) => boolean) =>
    sides.map((s) => fmt(percentile(pooled(s, pick), p)));
  const byMode = (mode: Mode) =>
    sides.map((s) => {
      const xs = pooled(s, (x) => x.mode === mode);
      return `${fmt(percentile(xs, 50))} / ${fmt(percentile(xs, 99))}`;
    });
  const perPush = (f: (p: PushResult) => number, agg: (xs: number[]) => number) =>
    sides.map((s) => fmt(agg(s.pushes.map(f))));
  const controlOnly = (f: (s: SideResult) => string) => sides.map((s) => (s.kind === "control" ? f(s) : "-"));
  const max = (xs: number[]) => Math.max(...xs);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return [
    ["per-client delay to ACK, p50 (ms)", ...pct(50)],
    ["per-client delay to ACK, p99 (ms)", ...pct(99)],
    ["per-client delay to ACK, max (ms)", ...pct(100)],
    ["  Delta clients p50 / p99 (ms)", ...byMode("delta")],
    ["  SotW clients p50 / p99 (ms)", ...byMode("sotw")],
    [
      "  first response received, p50 (ms)",
      ...sides.map((s) => fmt(median(s.pushes.flatMap((p) => p.samples.map((x) => x.recv))))),
    ],
    ["all ACKed, median push (ms)", ...perPush((p) => p.allAcked, median)],
    ["all ACKed, worst push (ms)", ...perPush((p) => p.allAcked, max)],
    [
      "all ACKed from request start, median (ms)",
      ...controlOnly((s) => fmt(median(s.pushes.map((p) => p.allAckedFromRequest)))),
    ],
    ["apply HTTP round trip, median (ms)", ...controlOnly((s) => fmt(median(s.pushes.map((p) => p.httpMs))))],
    [
      "snapshot debounce after the apply (ms)",
      ...sides.map((s) => (s.kind === "control" ? `${DEBOUNCE_MS}` : "0")),
    ],
    ["server CPU per push, mean (ms)", ...perPush((p) => p.cpuMs, mean)],
    [
      "bytes received per client per push",
      ...sides.map((s) => kib(mean(s.pushes.map((p) => p.bytesPerClient)))),
    ],
    [
      "clients missing a push (all pushes)",
      ...sides.map((s) => String(s.pushes.reduce((a, p) => a + p.missing, 0))),
    ],
    [
      "server RSS: before, after connect, after pushes (MiB)",
      ...sides.map((s) => `${fmt(s.rssBeforeMiB, 0)}, ${fmt(s.rssAfterMiB, 0)}, ${fmt(s.rssEndMiB, 0)}`),
    ],
    ["server RSS per connected client (KiB)", ...sides.map((s) => fmt(s.rssPerClientKiB))],
    [
      "  same, measured after the pushes (KiB)",
      ...sides.map((s) => fmt(((s.rssEndMiB - s.rssBeforeMiB) * 1024) / N)),
    ],
    ["server idle CPU with N clients (ms/s)", ...sides.map((s) => fmt(s.idleCpuMsPerS))],
    [`connect + initial sync of ${N} clients (ms)`, ...sides.map((s) => fmt(s.connectMs, 0))],
    ["server's status: nodes ACKed last push", ...sides.map((s) => s.serverAcks)],
  ];
}

function bytesRows(scales: BytesScale[]): string[][] {
  const cell = (c: BytesCell) => kib(c.total);
  const types = (c: BytesCell) =>
    ALL_TYPES.map((t) => {
      const x = c.perType[t];
      return x ? `${TYPE_SHORT[t]} ${Math.round(x.resources)}` : `${TYPE_SHORT[t]} 0`;
    }).join(" ");
  const row = (label: string, pick: (s: BytesScale) => Record<Mode, BytesCell>) => [
    label,
    ...scales.flatMap((s) => [cell(pick(s).delta), cell(pick(s).sotw)]),
  ];
  const resRow = (label: string, pick: (s: BytesScale) => Record<Mode, BytesCell>) => [
    label,
    ...scales.flatMap((s) => [types(pick(s).delta), types(pick(s).sotw)]),
  ];
  return [
    row("initial sync (connect)", (s) => s.initial),
    row("one endpoint changed", (s) => s.endpointChanged),
    resRow("  resources sent", (s) => s.endpointChanged),
    row("one service added", (s) => s.serviceAdded),
    resRow("  resources sent", (s) => s.serviceAdded),
    ...(["cluster", "listener"] as const).map((k) => [
      `  of which ${TYPE_SHORT[TYPE_URL[k]]} bytes`,
      ...scales.flatMap((s) => [
        kib(s.serviceAdded.delta.perType[TYPE_URL[k]]?.bytes ?? 0),
        kib(s.serviceAdded.sotw.perType[TYPE_URL[k]]?.bytes ?? 0),
      ]),
    ]),
  ];
}

// --- main --------------------------------------------------------------------------------------

async function cleanup(workers: Workers): Promise<void> {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const stop of stoppers) await stop().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  for (const root of roots) await deleteEventStream(SHARED_NATS_URL, root).catch(() => undefined);
}

async function main(): Promise<void> {
  const started = nowMs();
  const workers: Workers = Array.from(
    { length: WORKERS },
    (_, i) => new Child<ToClients, FromClients>("xds-scale-clients.ts", `client worker ${i}`),
  );
  let interrupted = false;
  process.once("SIGINT", () => {
    interrupted = true;
    void cleanup(workers).finally(() => process.exit(130));
  });
  try {
    await Promise.all(workers.map((w) => w.next("ready")));
    console.log(
      `xds-scale: ${N} ADS clients in ${WORKERS} processes, each on its own connection; ` +
        `${REPS} measured pushes after ${WARMUP} warm-ups; ${availableParallelism()} cores, ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(" ")} at start`,
    );
    const sides: SideResult[] = [];
    for (const services of CONVERGENCE_SCALES) {
      sides.push(await convergenceControl(workers, services));
      sides.push(await convergenceFloor(workers, services));
    }
    const scales: BytesScale[] = [];
    for (const s of BYTES_SCALES) scales.push(await bytesAt(workers, s));

    console.log(
      `\n1. Convergence: ${N} clients (${N / 2} Delta + ${N / 2} SotW; half EDS wildcard, half 3 named),` +
        ` ${ENDPOINTS_PER_SERVICE} endpoints per service; one endpoint added to svc-0, which every client watches.`,
    );
    console.log(
      "   Delay = client's ACK write - trigger (control: apply's HTTP response; floor: setSnapshot call).\n",
    );
    table(
      ["", ...sides.map((s) => `${s.kind === "control" ? "control" : "floor"} ${s.services} svc`)],
      convergenceRows(sides),
    );
    console.log(
      "   control = control server process (HTTP apply); floor = bare AdsServer + SnapshotCache process.",
    );
    for (const services of CONVERGENCE_SCALES) {
      const [c, f] = ["control", "floor"].map((k) =>
        sides.find((s) => s.kind === k && s.services === services)?.pushes.map((p) => p.bytesPerClient),
      );
      if (JSON.stringify(c) !== JSON.stringify(f))
        console.log(`   note: at ${services} services control and floor sent different bytes: ${c} vs ${f}`);
    }
    for (const c of sides.filter((x) => x.kind === "control")) {
      const times = c.pushes.map((p) => p.allAckedFromRequest);
      const worst = Math.max(...times);
      const met = times.filter((t) => t <= TARGET_MS).length;
      console.log(
        `   target (${c.services} services): all ${N} ACKed within ${TARGET_MS} ms of the apply's request -> ` +
          `${met === times.length ? "met" : "MISSED"} in ${met}/${times.length} pushes ` +
          `(median ${fmt(median(times))} ms, worst ${fmt(worst)} ms)`,
      );
    }

    console.log(
      `\n2. Bytes per client for one push (serialized DiscoveryResponses), ${BYTES_CLIENTS} clients` +
        ` (half Delta, half SotW) wildcard on CDS, EDS, LDS, RDS; ${ENDPOINTS_PER_SERVICE} endpoints per service.\n`,
    );
    table(
      ["", ...scales.flatMap((s) => [`${s.services} svc Delta`, `${s.services} svc SotW`])],
      bytesRows(scales),
    );
    console.log("");
    for (const s of scales) {
      console.log(
        `   ${s.services} services (${s.services * ENDPOINTS_PER_SERVICE} endpoints): one apply ${fmt(s.applyMs, 0)} ms;` +
          ` all ${BYTES_CLIENTS} ACKed (from request start; of which the apply's HTTP round trip):` +
          ` endpoint change ${fmt(s.allAckedMs.endpointChanged)} (${fmt(s.httpMs.endpointChanged)}) ms,` +
          ` service added ${fmt(s.allAckedMs.serviceAdded)} (${fmt(s.httpMs.serviceAdded)}) ms`,
      );
    }
    const d100 = scales[0]?.endpointChanged.delta.total ?? 0;
    const d1000 = scales[scales.length - 1]?.endpointChanged.delta.total ?? 0;
    console.log(
      `   Delta bytes for one endpoint change, ${BYTES_SCALES[0]} -> ${BYTES_SCALES[BYTES_SCALES.length - 1]} services: ` +
        `${kib(d100)} -> ${kib(d1000)} (${d1000 <= d100 * 1.05 ? "does not grow" : "GROWS"})`,
    );
    console.log(
      `\n(total ${fmt((nowMs() - started) / 1000)} s; NATS roots used, streams deleted: ${roots.join(" ")})`,
    );
  } finally {
    if (!interrupted) await cleanup(workers);
  }
}

await main();
