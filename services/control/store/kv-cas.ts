// Compare-and-swap on a JetStream KV bucket: the one primitive that several control servers need to
// share anything (IPAM leases, registrations). A key's revision is the stream sequence of its last
// entry; a write that names the revision it read succeeds only if the key has not moved since, so
// concurrent writers never overwrite each other silently.
//
// Server versions: in a clustered stream, nats-server before 2.9.21 does not serialize writes that
// expect a revision above 0 (nats-server#4320; on 2.9.10 several concurrent `update`s of one key all
// succeeded, every time). It does serialize creates of a key that never existed (expected 0). So on
// such a cluster only `create` of a fresh key is safe; `update`, `delete` and `create` of a deleted
// key (nats.js then expects the delete marker's revision) are not. A single server is fine.
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { CatenaError, ErrorCode } from "../errors.js";

/** `CATENA_STATE` for root `catena`, `T1_STATE` for `t1`: named like the events stream. */
export function stateBucketName(root: string): string {
  return `${root.toUpperCase().replace(/[^A-Z0-9_-]/g, "_")}_STATE`;
}

/** True when a write failed only because the key's revision was not the expected one. */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

export interface OpenBucketOptions {
  /** Replicas when the bucket is created here. Default: 3 on a clustered server, else 1. */
  replicas?: number;
  /** Kept per key; 1 is enough for CAS (the expected revision is the last one). */
  history?: number;
  warn?: (msg: string, fields?: object) => void;
}

/**
 * Binds to the bucket when it exists (an operator may have created it with their own limits), else
 * creates it. Two servers creating it at once is fine: JetStream accepts an identical config twice.
 */
export async function openBucket(
  nc: NatsConnection,
  bucket: string,
  options: OpenBucketOptions = {},
): Promise<KV> {
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const exists = await jsm.streams.info(`KV_${bucket}`).then(
    () => true,
    (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
      throw err;
    },
  );
  if (exists) return kvm.open(bucket);
  const clustered = typeof nc.info?.cluster === "string" && nc.info.cluster !== "";
  const replicas = options.replicas ?? (clustered ? 3 : 1);
  // A cluster that is still forming cannot place three replicas yet: try for a while, then say so
  // (never fall back to one replica silently: that bucket would die with its server).
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await kvm.create(bucket, { history: options.history ?? 1, replicas });
    } catch (err) {
      if (Date.now() > deadline || !(err instanceof JetStreamApiError)) {
        throw new CatenaError(
          ErrorCode.Unavailable,
          `cannot create KV bucket ${bucket} with ${replicas} replicas (${err instanceof Error ? err.message : String(err)}); create it beforehand, e.g. nats kv add ${bucket} --history 1 --replicas N`,
          [],
          { cause: err },
        );
      }
      options.warn?.("KV bucket: cannot create it yet, retrying", { bucket, replicas, error: err.message });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export interface CasEntry<T> {
  value: T;
  revision: number;
}

export interface KvCasCodec<T> {
  encode(value: T): string | Uint8Array;
  decode(bytes: Uint8Array): T;
}

export function jsonCodec<T>(): KvCasCodec<T> {
  return {
    encode: (value) => JSON.stringify(value),
    decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)) as T,
  };
}

/** What `modify` does with a key: write this value, delete the key, or leave it as it is. */
export type CasDecision<T> = { put: T } | { delete: true } | { keep: true };

export interface KvCasOptions<T> {
  codec?: KvCasCodec<T>;
  /** Attempts of one `modify` before it gives up with Conflict. Default 100. */
  maxAttempts?: number;
}

/**
 * Typed CAS over one bucket. `create`/`update`/`delete` answer `undefined`/`false` when another
 * writer got there first (the caller decides: retry, pick another key, give up); other failures
 * (NATS down, timeouts) throw. A deleted key reads as absent, and `create` may take it again.
 */
export class KvCas<T> {
  readonly kv: KV;
  readonly #codec: KvCasCodec<T>;
  readonly #maxAttempts: number;

  constructor(kv: KV, options: KvCasOptions<T> = {}) {
    this.kv = kv;
    this.#codec = options.codec ?? jsonCodec<T>();
    this.#maxAttempts = options.maxAttempts ?? 100;
  }

  /** The key's value and revision; undefined when it is absent or deleted. */
  async read(key: string): Promise<CasEntry<T> | undefined> {
    const entry = await this.kv.get(key);
    if (entry?.operation !== "PUT") return undefined;
    return { value: this.#codec.decode(entry.value), revision: entry.revision };
  }

  /** Writes only when the key is absent (or deleted); the new revision, or undefined when taken. */
  async create(key: string, value: T): Promise<number | undefined> {
    try {
      return await this.kv.create(key, this.#codec.encode(value));
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }

  /** Writes only when the key is still at `revision`; the new revision, or undefined on conflict. */
  async update(key: string, value: T, revision: number): Promise<number | undefined> {
    try {
      return await this.kv.put(key, this.#codec.encode(value), { previousSeq: revision });
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }

  /** Deletes only when the key is still at `revision`; false on conflict. */
  async delete(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.delete(key, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /**
   * Read-modify-write until it sticks: `decide` sees the current value (undefined when absent) and
   * may run several times, so it must not have side effects. Resolves with the value left in the
   * bucket (undefined when deleted or absent). Throws CatenaError Conflict after maxAttempts.
   */
  async modify(
    key: string,
    decide: (current: T | undefined) => CasDecision<T>,
  ): Promise<CasEntry<T> | undefined> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const current = await this.read(key);
      const decision = decide(current?.value);
      if ("keep" in decision) return current;
      if ("delete" in decision) {
        if (!current || (await this.delete(key, current.revision))) return undefined;
      } else {
        const revision = current
          ? await this.update(key, decision.put, current.revision)
          : await this.create(key, decision.put);
        if (revision !== undefined) return { value: decision.put, revision };
      }
      // Lost to another writer: a little jitter keeps two hot writers from colliding in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
    }
    throw new CatenaError(
      ErrorCode.Conflict,
      `${key}: still contended after ${this.#maxAttempts} compare-and-swap attempts`,
      [{ path: key, message: "too much contention" }],
    );
  }
}
