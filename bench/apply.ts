// Apply latency and bulk apply time of the control server, next to the floors it stands on,
// measured in the same run: an HTTP round trip to an empty Fastify route, and an fdatasync'd
// append of the same size. Run: node --import tsx bench/apply.ts
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import { freePort } from "../services/control/events/nats-server-process.js";
import { deleteEventStream } from "../test/support/nats.js";

const N = Number(process.env.BENCH_N ?? 1000);
const MAIN = fileURLToPath(new URL("../services/cli/main.ts", import.meta.url));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function summary(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

function network(name: string, i: number) {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind: "Network",
    metadata: { name, labels: { bench: "apply" } },
    spec: { cidr: `10.${Math.floor(i / 256) % 256}.${i % 256}.0/24` },
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "catena-bench-"));
  const root = `bench${randomBytes(3).toString("hex")}`;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(
    process.execPath,
    [
      // BENCH_PROFILE=DIR writes a CPU profile of the control server there.
      ...(process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []),
      "--import",
      "tsx",
      MAIN,
      "control",
      "--api-addr",
      `127.0.0.1:${port}`,
      "--xds-addr",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
    ],
    {
      env: {
        ...process.env,
        CATENA_NATS_PREFIX: root,
        CATENA_LOG_LEVEL: "warn",
      },
      stdio: "inherit",
    },
  );
  try {
    for (;;) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    const post = (body: unknown) =>
      fetch(`${url}/v1/apply`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then(async (res) => {
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      });

    // Warm up JITs and connections.
    for (let i = 0; i < 50; i++) await post(network(`warm-${i}`, 60000 + i));

    const single: number[] = [];
    for (let i = 0; i < N; i++) single.push(await timed(() => post(network(`single-${i}`, i))));
    const bulkItems = Array.from({ length: N }, (_, i) => network(`bulk-${i}`, 20000 + i));
    const bulk = await timed(() => post({ items: bulkItems }));

    // Floors: HTTP round trip to an empty route; an fdatasync'd append of one apply's size.
    const floor = Fastify();
    floor.post("/", async () => ({ ok: true }));
    await floor.listen({ host: "127.0.0.1", port: 0 });
    const floorUrl = `http://127.0.0.1:${(floor.server.address() as { port: number }).port}/`;
    const http: number[] = [];
    const body = JSON.stringify(network("x", 1));
    for (let i = 0; i < N; i++) {
      http.push(
        await timed(() =>
          fetch(floorUrl, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
            (r) => r.arrayBuffer(),
          ),
        ),
      );
    }
    await floor.close();
    const file = await open(join(dataDir, "fsync-floor"), "a");
    const record = Buffer.alloc(400, 1);
    const fsync: number[] = [];
    for (let i = 0; i < N; i++)
      fsync.push(
        await timed(async () => {
          await file.write(record);
          await file.datasync();
        }),
      );
    await file.close();

    const s = summary(single);
    const h = summary(http);
    const f = summary(fsync);
    const fmt = (n: number) => n.toFixed(2).padStart(8);
    console.log(`\n${N} sequential single-object applies (ms)      p50      p99     mean`);
    console.log(`  catena apply (validate + fsync + HTTP)  ${fmt(s.p50)} ${fmt(s.p99)} ${fmt(s.mean)}`);
    console.log(`  floor: empty Fastify POST round trip    ${fmt(h.p50)} ${fmt(h.p99)} ${fmt(h.mean)}`);
    console.log(`  floor: 400-byte append + fdatasync      ${fmt(f.p50)} ${fmt(f.p99)} ${fmt(f.mean)}`);
    console.log(`  ratio apply/(http+fsync) p50            ${fmt(s.p50 / (h.p50 + f.p50))}`);
    console.log(
      `\none apply of ${N} objects: ${bulk.toFixed(1)} ms (${((N / bulk) * 1000).toFixed(0)} objects/s)`,
    );
    console.log(
      `targets: single p99 <= 10 ms -> ${s.p99 <= 10 ? "met" : "MISSED"}; ${N} objects <= 1000 ms -> ${bulk <= 1000 ? "met" : "MISSED"}`,
    );
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.on("exit", r));
    await rm(dataDir, { recursive: true, force: true });
    await deleteEventStream(process.env.CATENA_NATS_URL ?? "nats://127.0.0.1:4222", root).catch(
      () => undefined,
    );
  }
}

await main();
