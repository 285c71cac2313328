// NATS for tests: a unique subject root per run (so streams never collide on the shared server), and
// private nats-server processes for tests that stop and restart NATS (never the machine's server).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  findExecutable,
  type NatsServerProcess,
  startNatsServerProcess,
} from "../../services/control/events/nats-server-process.js";

/** The machine's NATS with JetStream; shared by every agent and test: never stop it. */
export const SHARED_NATS_URL = process.env.CATENA_NATS_URL ?? "nats://127.0.0.1:4222";

/** `t` and 10 hex digits: a subject root (and `T…_EVENTS` stream) no other run uses. */
export function uniqueRoot(): string {
  return `t${randomBytes(5).toString("hex")}`;
}

export interface TestNatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the process (SIGTERM: a clean JetStream shutdown; SIGKILL: a crash). Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops it (when running) and starts it again on the same port with the same store. */
  restart(options?: { signal?: NodeJS.Signals; downForMs?: number }): Promise<void>;
  /** Stops it and removes its store directory. */
  dispose(): Promise<void>;
}

/** A private nats-server on a free loopback port with its own temporary store directory. */
export async function startNatsServer(options: { jetstream?: boolean } = {}): Promise<TestNatsServer> {
  const binary = findExecutable("nats-server", process.env.PATH ?? "") ?? "/usr/sbin/nats-server";
  const jetstream = options.jetstream ?? true;
  const storeDir = await mkdtemp(join(tmpdir(), "catena-nats-"));
  const start = (port: number) =>
    startNatsServerProcess({ binary, host: "127.0.0.1", port, jetstream, storeDir, readyTimeoutMs: 10_000 });
  let proc: NatsServerProcess | undefined = await start(0);
  const port = proc.port;
  const url = proc.url;
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const p = proc;
    proc = undefined;
    await p?.stop(signal);
  };
  return {
    url,
    port,
    storeDir,
    stop,
    async restart({ signal, downForMs = 0 } = {}) {
      await stop(signal);
      if (downForMs > 0) await new Promise((r) => setTimeout(r, downForMs));
      proc = await start(port);
    },
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/** The first `count` items of an async iterable; rejects after `timeoutMs` with what arrived. */
export async function take<T>(source: AsyncIterable<T>, count: number, timeoutMs = 10_000): Promise<T[]> {
  const out: T[] = [];
  if (count === 0) return out;
  const iterator = source[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms with ${out.length} of ${count} items`)),
      timeoutMs,
    );
  });
  try {
    while (out.length < count) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done) break;
      out.push(next.value);
    }
  } finally {
    clearTimeout(timer);
    await iterator.return?.();
  }
  return out;
}

/** Removes a run's `<ROOT>_EVENTS` stream from a NATS server (missing is fine). */
export async function deleteEventStream(url: string, root: string): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const { streamName } = await import("../../services/control/events/subject.js");
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(streamName(root)).catch(() => false);
  } finally {
    await nc.close();
  }
}

/**
 * Removes a run's KV buckets from a NATS server (missing is fine): `<ROOT>_STATE` (the KV store's)
 * and the shared ones next to it (`_IPAM`, `_INSTANCES`, `_ENDPOINTS`).
 */
export async function deleteStateBucket(url: string, root: string): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const { stateBucketName } = await import("../../services/control/store/kv-cas.js");
  const { sharedBucketName } = await import("../../services/control/store/kv-shared.js");
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const buckets = [
      stateBucketName(root),
      ...(["IPAM", "INSTANCES", "ENDPOINTS", "CA"] as const).map((b) => sharedBucketName(root, b)),
    ];
    for (const bucket of buckets) await jsm.streams.delete(`KV_${bucket}`).catch(() => false);
  } finally {
    await nc.close();
  }
}
