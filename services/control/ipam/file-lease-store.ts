// The embedded lease store: a map in memory, made durable with a log of framed records in the data
// directory (group-committed: one write and one fdatasync per batch, as the embedded object store
// does), compacted into a snapshot at open. CAS decisions are taken synchronously on the map, so
// concurrent callers in this process never both win a key; a caller's promise resolves only once
// its record is on disk.

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { CatenaError, ErrorCode } from "../errors.js";
import { decodeFrames, encodeFrame } from "../store/record-frame.js";
import type { LeaseEntry, LeaseStore } from "./lease-store.js";

type LogRecord<T> = { k: string; r: number; v: T } | { k: string; r: number; d: true };

interface Snapshot<T> {
  revision: number;
  entries: [string, LeaseEntry<T>][];
}

export class FileLeaseStore<T> implements LeaseStore<T> {
  readonly #entries = new Map<string, LeaseEntry<T>>();
  readonly #dir: string;
  #revision = 0;
  #log: FileHandle | undefined;
  #queue: { record: LogRecord<T>; done: (err?: Error) => void }[] = [];
  #writing = false;
  #failed: Error | undefined;
  #closed = false;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open<T>(dir: string): Promise<FileLeaseStore<T>> {
    const store = new FileLeaseStore<T>(dir);
    await store.#load();
    return store;
  }

  async read(key: string): Promise<LeaseEntry<T> | undefined> {
    return this.#entries.get(key);
  }

  async create(key: string, value: T): Promise<number | undefined> {
    this.#usable();
    if (this.#entries.has(key)) return undefined;
    const revision = ++this.#revision;
    this.#entries.set(key, { value, revision });
    await this.#append({ k: key, r: revision, v: value });
    return revision;
  }

  async delete(key: string, revision: number): Promise<boolean> {
    this.#usable();
    if (this.#entries.get(key)?.revision !== revision) return false;
    this.#entries.delete(key);
    await this.#append({ k: key, r: ++this.#revision, d: true });
    return true;
  }

  async list(prefix: string): Promise<{ key: string; entry: LeaseEntry<T> }[]> {
    const out: { key: string; entry: LeaseEntry<T> }[] = [];
    for (const [key, entry] of this.#entries) if (key.startsWith(prefix)) out.push({ key, entry });
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#writing || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    await this.#log?.close();
    this.#log = undefined;
  }

  #usable(): void {
    if (this.#closed) throw new CatenaError(ErrorCode.Closed, "the lease store is closed");
    // After a failed write the file's tail is unknown; refuse rather than guess.
    if (this.#failed)
      throw new CatenaError(ErrorCode.Unavailable, "the lease log could not be written", [], {
        cause: this.#failed,
      });
  }

  #append(record: LogRecord<T>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ record, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.#writing) void this.#drain();
    });
  }

  /** The single writer: every queued record in one write and one fdatasync. */
  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          const log = this.#log;
          if (!log) throw new Error("lease log not open");
          await log.write(Buffer.concat(batch.map((b) => encodeFrame(b.record))));
          await log.datasync();
          for (const b of batch) b.done();
        } catch (err) {
          this.#failed = err instanceof Error ? err : new Error(String(err));
          const failure = new CatenaError(ErrorCode.Unavailable, "the lease log could not be written", [], {
            cause: err,
          });
          for (const b of batch) b.done(failure);
        }
      }
    } finally {
      this.#writing = false;
    }
  }

  async #load(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const snapshotPath = join(this.#dir, "leases.snapshot");
    const logPath = join(this.#dir, "leases.log");
    const snapshot = await readFile(snapshotPath).catch(() => undefined);
    if (snapshot) {
      const frame = decodeFrames(snapshot).frames[0]?.value as Snapshot<T> | undefined;
      if (!frame) throw new CatenaError(ErrorCode.Internal, `${snapshotPath} is corrupt`);
      this.#revision = frame.revision;
      for (const [key, entry] of frame.entries) this.#entries.set(key, entry);
    }
    const log = await readFile(logPath).catch(() => undefined);
    if (log) {
      // A torn tail is a write that never returned: its caller never saw success.
      for (const { value } of decodeFrames(log).frames) {
        const record = value as LogRecord<T>;
        if (record.r <= this.#revision && snapshot) continue;
        if ("d" in record) this.#entries.delete(record.k);
        else this.#entries.set(record.k, { value: record.v, revision: record.r });
        if (record.r > this.#revision) this.#revision = record.r;
      }
    }
    // Compact: the snapshot replaces snapshot and log atomically, then the log starts empty.
    const tmp = `${snapshotPath}.tmp`;
    const handle = await open(tmp, "w", 0o600);
    try {
      await handle.write(encodeFrame({ revision: this.#revision, entries: [...this.#entries] }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, snapshotPath);
    await rm(logPath, { force: true });
    await syncDir(this.#dir);
    this.#log = await open(logPath, "a", 0o600);
    await syncDir(this.#dir);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
