// The embedded store: state in memory, made durable in a data directory by an append-only log
// of commit records (group-committed: one write + fdatasync per batch) and a snapshot.
//
// Files in dataDir:
//   LOCK           owner of the directory (data-dir-lock.ts)
//   snapshot       one frame: {v, revision, objects}; replaced atomically (tmp, fsync, rename, fsync dir)
//   log            frames {v, rev, w: [{put: object} | {del: "Kind/name"}]}, one per commit
// Recovery: snapshot, then the log records with rev > snapshot revision, up to the first torn
// or corrupt record, which is truncated away. Compaction writes a snapshot and empties the log;
// a crash in between is harmless because replay skips records the snapshot already holds.

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { CatenaError, ErrorCode } from "../errors.js";
import { type Kind, objectKey, type ResourceStatus, type StoredResource } from "../model/resource.js";
import { acquireDataDirLock, type DataDirLock } from "./data-dir-lock.js";
import { matchesSelector } from "./label-selector.js";
import { decodeFrames, encodeFrame } from "./record-frame.js";
import type { Change, CommitResult, LabelSelector, OpResult, Store, StoreOp, WatchOptions } from "./store.js";
import { QueuedWatch } from "./watch.js";
import { checkIdentity, deepFreeze, planPut, planStatus } from "./write-rules.js";

export interface StoreLogger {
  warn(msg: string, fields?: object): void;
}

export interface EmbeddedStoreOptions {
  dataDir: string;
  logger?: StoreLogger;
  /** Log size in bytes past which a snapshot is written and the log emptied. Default 8 MiB. */
  compactAfterBytes?: number;
  /**
   * Changes buffered for one watch whose consumer does not keep up. Beyond it that watch fails
   * with CatenaError Unavailable (its loop throws; watch again with `initial: true`); commits
   * never wait for watchers. Default 10,000.
   */
  watchBufferLimit?: number;
}

export interface EmbeddedStore extends Store {
  readonly dataDir: string;
  watch(options?: WatchOptions): QueuedWatch<Change>;
  /**
   * Aborts: commits not yet written fail with CatenaError Closed, watches fail with `err`. The
   * write already in flight completes (it cannot be recalled). Idempotent.
   */
  destroy(err?: Error): Promise<void>;
}

export const SNAPSHOT_FILE = "snapshot";
export const LOG_FILE = "log";
const FORMAT_VERSION = 1;

interface Defaults {
  compactAfterBytes: number;
  watchBufferLimit: number;
  logger: StoreLogger;
}

function defaultOptions(): Defaults {
  return {
    compactAfterBytes: 8 * 1024 * 1024,
    watchBufferLimit: 10_000,
    logger: { warn: (msg, fields) => process.emitWarning(`${msg} ${JSON.stringify(fields ?? {})}`) },
  };
}

function checkOptions(options: EmbeddedStoreOptions): Defaults & { dataDir: string } {
  const invalid = (field: string, message: string) =>
    new CatenaError(ErrorCode.Invalid, `store option ${field}: ${message}`, [{ path: field, message }]);
  if (typeof options.dataDir !== "string" || options.dataDir === "") {
    throw invalid("dataDir", "must be a non-empty path");
  }
  const merged = { ...defaultOptions(), ...stripUndefined(options), dataDir: options.dataDir };
  for (const field of ["compactAfterBytes", "watchBufferLimit"] as const) {
    if (!Number.isSafeInteger(merged[field]) || merged[field] <= 0) {
      throw invalid(field, "must be a positive integer");
    }
  }
  return merged;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

type LogWrite = { put: StoredResource } | { del: string };

interface LogRecord {
  v: number;
  rev: number;
  w: LogWrite[];
}

interface SnapshotRecord {
  v: number;
  revision: number;
  objects: StoredResource[];
}

/** A validated commit waiting for (or in) a write. revision 0: a barrier that writes nothing. */
interface QueuedCommit {
  revision: number;
  frame: Buffer | undefined;
  writes: Array<{ key: string; value: StoredResource | undefined }>;
  changes: Change[];
  resolve(): void;
  reject(err: unknown): void;
}

interface Subscription {
  kinds: ReadonlySet<Kind> | undefined;
  watch: QueuedWatch<Change>;
}

function isLogRecord(value: unknown): value is LogRecord {
  const r = value as Partial<LogRecord> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    r.v === FORMAT_VERSION &&
    Number.isSafeInteger(r.rev) &&
    Array.isArray(r.w)
  );
}

function isSnapshot(value: unknown): value is SnapshotRecord {
  const s = value as Partial<SnapshotRecord> | null;
  return (
    typeof s === "object" &&
    s !== null &&
    s.v === FORMAT_VERSION &&
    Number.isSafeInteger(s.revision) &&
    Array.isArray(s.objects)
  );
}

function compareObjects(a: StoredResource, b: StoredResource): number {
  // Code-point order, not locale order: the same everywhere.
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  const an = a.metadata.name;
  const bn = b.metadata.name;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset);
    offset += bytesWritten;
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null ? (err as { code?: string }).code : undefined;
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

function corrupt(message: string, fields: object): CatenaError {
  return new CatenaError(ErrorCode.Internal, `${message} ${JSON.stringify(fields)}`);
}

/** Opens (creating if needed) the store in `options.dataDir`, recovering what was committed. */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const opts = checkOptions(options);
  const dir = opts.dataDir;
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  // A new directory entry is durable only once its parent is synced, at every level created.
  if (created !== undefined) {
    for (let d = resolve(dir); ; d = dirname(d)) {
      await fsyncDir(dirname(d));
      if (d === resolve(created) || d === dirname(d)) break;
    }
  }
  const lock = await acquireDataDirLock(dir, (msg, fields) => opts.logger.warn(msg, fields));
  try {
    const objects = new Map<string, StoredResource>();
    let revision = 0;

    const snapshotPath = join(dir, SNAPSHOT_FILE);
    const snapshotBytes = await readIfExists(snapshotPath);
    if (snapshotBytes !== undefined) {
      // The snapshot is renamed into place whole, so any damage is real corruption, not a crash:
      // the log before it is gone, so refuse rather than start from a partial state.
      const decoded = decodeFrames(snapshotBytes);
      const value = decoded.frames[0]?.value;
      if (decoded.problem || decoded.frames.length !== 1 || !isSnapshot(value)) {
        throw corrupt("store snapshot is corrupt", { path: snapshotPath, problem: decoded.problem });
      }
      for (const object of value.objects) {
        objects.set(objectKey(object.kind, object.metadata.name), deepFreeze(object));
      }
      revision = value.revision;
    }
    await unlink(join(dir, `${SNAPSHOT_FILE}.tmp`)).catch(() => {});

    const logPath = join(dir, LOG_FILE);
    const logBytes = await readIfExists(logPath);
    const decoded = decodeFrames(logBytes ?? Buffer.alloc(0));
    for (const { value, offset } of decoded.frames) {
      if (!isLogRecord(value)) {
        throw corrupt("store log holds a record of an unknown shape", { path: logPath, offset });
      }
      if (value.rev <= revision) continue; // already in the snapshot
      if (value.rev !== revision + 1) {
        throw corrupt("store log skips revisions", {
          path: logPath,
          offset,
          expected: revision + 1,
          found: value.rev,
        });
      }
      for (const write of value.w) {
        if ("put" in write) {
          objects.set(objectKey(write.put.kind, write.put.metadata.name), deepFreeze(write.put));
        } else {
          objects.delete(write.del);
        }
      }
      revision = value.rev;
    }

    const log = await open(logPath, "a", 0o600);
    try {
      if (logBytes === undefined) await fsyncDir(dir);
      if (decoded.problem) {
        // A crash during a write leaves a torn tail: everything before it was acknowledged.
        opts.logger.warn("store log: dropping a torn or corrupt tail", {
          path: logPath,
          offset: decoded.validBytes,
          droppedBytes: (logBytes?.length ?? 0) - decoded.validBytes,
          problem: decoded.problem,
        });
        await log.truncate(decoded.validBytes);
        await log.sync();
      }
    } catch (err) {
      await log.close();
      throw err;
    }
    return new EmbeddedFileStore(dir, opts, lock, log, decoded.validBytes, objects, revision);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

class EmbeddedFileStore implements EmbeddedStore {
  readonly dataDir: string;
  readonly #logger: StoreLogger;
  readonly #watchBufferLimit: number;
  readonly #compactAfterBytes: number;
  /** Log size that triggers the next compaction (pushed out after a failed snapshot). */
  #compactAt: number;
  readonly #lock: DataDirLock;
  readonly #log: FileHandle;
  #logBytes: number;

  /** What readers and watchers see: every commit here is on disk. */
  readonly #objects: Map<string, StoredResource>;
  #revision: number;
  /** Writes of queued commits not yet durable; new commits validate against them. */
  readonly #pending = new Map<string, { revision: number; value: StoredResource | undefined }>();
  #headRevision: number;

  #queue: QueuedCommit[] = [];
  #writing = false;
  #idleWaiters: Array<() => void> = [];
  readonly #subscriptions = new Set<Subscription>();
  /** Set when a write failed: the log's state is unknown, so no further commits. */
  #failure: CatenaError | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    dataDir: string,
    options: Defaults,
    lock: DataDirLock,
    log: FileHandle,
    logBytes: number,
    objects: Map<string, StoredResource>,
    revision: number,
  ) {
    this.dataDir = dataDir;
    this.#logger = options.logger;
    this.#watchBufferLimit = options.watchBufferLimit;
    this.#compactAfterBytes = options.compactAfterBytes;
    this.#compactAt = options.compactAfterBytes;
    this.#lock = lock;
    this.#log = log;
    this.#logBytes = logBytes;
    this.#objects = objects;
    this.#revision = revision;
    this.#headRevision = revision;
  }

  revision(): number {
    this.#checkOpen();
    return this.#revision;
  }

  async get(kind: Kind, name: string): Promise<StoredResource | undefined> {
    this.#checkOpen();
    const object = this.#objects.get(objectKey(kind, name));
    return object;
  }

  async list(kind?: Kind, selector?: LabelSelector): Promise<StoredResource[]> {
    this.#checkOpen();
    const found: StoredResource[] = [];
    for (const object of this.#objects.values()) {
      if (kind !== undefined && object.kind !== kind) continue;
      if (selector && !matchesSelector(object.metadata.labels, selector)) continue;
      found.push(object);
    }
    return found.sort(compareObjects);
  }

  // Everything up to the first await runs synchronously, so commits are validated and ordered
  // in call order against the state including every earlier, still pending commit.
  async commit(ops: StoreOp[], options: { dryRun?: boolean } = {}): Promise<CommitResult> {
    this.#checkWritable();
    if (!Array.isArray(ops)) throw new CatenaError(ErrorCode.Invalid, "commit: ops must be an array");
    const revision = this.#headRevision + 1;
    const seen = new Set<string>();
    const results: OpResult[] = [];
    const writes: QueuedCommit["writes"] = [];
    const changes: Change[] = [];

    ops.forEach((op, i) => {
      const type: unknown = op?.type;
      if (type !== "put" && type !== "delete") {
        throw new CatenaError(ErrorCode.Invalid, `op ${i}: type must be put or delete`, [
          { document: i, path: "type", message: "must be put or delete" },
        ]);
      }
      const kind: unknown = op.type === "put" ? op.object?.kind : op.kind;
      const name: unknown = op.type === "put" ? op.object?.metadata?.name : op.name;
      checkIdentity(kind, name, i);
      const key = objectKey(kind, name as string);
      if (seen.has(key)) {
        throw new CatenaError(
          ErrorCode.Invalid,
          `${key}: more than one op on the same object in one commit`,
          [{ document: i, kind, name: name as string, path: "", message: "duplicate object in commit" }],
        );
      }
      seen.add(key);
      const current = this.#head(key);
      this.#checkExpected(current, kind, name as string, op.expectedVersion, i);

      if (op.type === "put") {
        const planned = planPut(op.object, current, revision, i);
        results.push(planned);
        if (planned.action === "unchanged") return;
        writes.push({ key, value: planned.object });
        changes.push({
          type: planned.action,
          object: planned.object,
          ...(current && { previous: current }),
          revision,
        });
      } else {
        if (!current) throw this.#notFound(kind, name as string, i);
        results.push({ action: "deleted", object: current });
        writes.push({ key, value: undefined });
        changes.push({ type: "deleted", object: current, revision });
      }
    });

    const outcome = results.map((r) => ({ action: r.action, object: r.object }));
    if (options.dryRun) {
      return { revision: writes.length > 0 ? revision : this.#headRevision, results: outcome };
    }
    if (writes.length === 0) {
      // Nothing to write, but the caller may have seen pending commits: answer once they are durable.
      const at = this.#headRevision;
      await this.#enqueue(0, writes, changes);
      return { revision: at, results: outcome };
    }
    await this.#enqueue(revision, writes, changes);
    return { revision, results: outcome };
  }

  async setStatus(
    kind: Kind,
    name: string,
    status: ResourceStatus,
    options: { expectedVersion?: string } = {},
  ): Promise<StoredResource> {
    this.#checkWritable();
    checkIdentity(kind, name, 0);
    const key = objectKey(kind, name);
    const current = this.#head(key);
    if (!current) throw this.#notFound(kind, name, 0);
    this.#checkExpected(current, kind, name, options.expectedVersion, 0);
    const revision = this.#headRevision + 1;
    const next = planStatus(current, status, revision);
    if (!next) {
      await this.#enqueue(0, [], []);
      return current;
    }
    await this.#enqueue(
      revision,
      [{ key, value: next }],
      [{ type: "status", object: next, previous: current, revision }],
    );
    return next;
  }

  watch(options: WatchOptions = {}): QueuedWatch<Change> {
    this.#checkWritable();
    const kinds = options.kinds ? new Set(options.kinds) : undefined;
    // Taken synchronously together with the subscription: no commit can slip in between,
    // so nothing is lost or seen twice.
    const initial: StoredResource[] = [];
    if (options.initial) {
      for (const object of this.#objects.values()) {
        if (!kinds || kinds.has(object.kind)) initial.push(object);
      }
      initial.sort(compareObjects);
    }
    const subscription: Subscription = {
      kinds,
      watch: new QueuedWatch<Change>({
        // The replay does not count against the limit.
        maxBuffered: this.#watchBufferLimit + initial.length,
        onStop: () => this.#subscriptions.delete(subscription),
      }),
    };
    this.#subscriptions.add(subscription);
    for (const object of initial) {
      subscription.watch.push({ type: "created", object, revision: this.#revision });
    }
    return subscription.watch;
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  destroy(err?: Error): Promise<void> {
    if (!this.#closing) {
      const reason = new CatenaError(ErrorCode.Closed, "store destroyed", [], { cause: err });
      this.#abortQueued(reason);
      for (const { watch } of [...this.#subscriptions]) watch.fail(err ?? reason);
    }
    return this.close();
  }

  async #shutdown(): Promise<void> {
    await this.#whenIdle();
    try {
      await this.#log.close();
    } catch (err) {
      this.#logger.warn("store: closing the log failed", { error: String(err) });
    }
    await this.#lock.release();
    for (const { watch } of [...this.#subscriptions]) watch.end();
  }

  #head(key: string): StoredResource | undefined {
    const pending = this.#pending.get(key);
    return pending ? pending.value : this.#objects.get(key);
  }

  #checkOpen(): void {
    if (this.#closing) throw new CatenaError(ErrorCode.Closed, "store is closed");
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failure) throw this.#failure;
  }

  #checkExpected(
    current: StoredResource | undefined,
    kind: Kind,
    name: string,
    expected: string | undefined,
    document: number,
  ): void {
    if (expected === undefined) return;
    if (!current) throw this.#notFound(kind, name, document);
    const stored = current.metadata.resourceVersion;
    if (stored !== expected) {
      const message = `${kind}/${name}: resourceVersion ${expected} is stale, the stored version is ${stored}`;
      throw new CatenaError(ErrorCode.Conflict, message, [
        { document, kind, name, path: "metadata.resourceVersion", message },
      ]);
    }
  }

  #notFound(kind: Kind, name: string, document: number): CatenaError {
    const message = `${kind}/${name} not found`;
    return new CatenaError(ErrorCode.NotFound, message, [{ document, kind, name, path: "", message }]);
  }

  #enqueue(revision: number, writes: QueuedCommit["writes"], changes: Change[]): Promise<void> {
    // Nothing pending or in flight: a barrier has nothing to wait for.
    if (revision === 0 && this.#queue.length === 0 && !this.#writing) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let frame: Buffer | undefined;
      if (revision > 0) {
        const record: LogRecord = {
          v: FORMAT_VERSION,
          rev: revision,
          w: writes.map((w) => (w.value ? { put: w.value } : { del: w.key })),
        };
        frame = encodeFrame(record);
        this.#headRevision = revision;
        for (const { key, value } of writes) this.#pending.set(key, { revision, value });
      }
      this.#queue.push({ revision, frame, writes, changes, resolve, reject });
      if (!this.#writing) {
        this.#writing = true;
        void this.#drain();
      }
    });
  }

  /** The single writer: each round writes every queued commit with one write and one fdatasync. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#failure) {
        const batch = this.#queue;
        this.#queue = [];
        const frames = batch.flatMap((c) => (c.frame ? [c.frame] : []));
        if (frames.length > 0) {
          const bytes = frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames);
          try {
            await writeAll(this.#log, bytes);
            await this.#log.datasync();
          } catch (err) {
            this.#fail(err, batch);
            return;
          }
          this.#logBytes += bytes.length;
        }
        for (const commit of batch) this.#applyDurable(commit);
        if (this.#logBytes > this.#compactAt) await this.#compact();
      }
    } finally {
      this.#writing = false;
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  #applyDurable(commit: QueuedCommit): void {
    if (commit.revision > 0) {
      for (const { key, value } of commit.writes) {
        if (value) this.#objects.set(key, value);
        else this.#objects.delete(key);
        if (this.#pending.get(key)?.revision === commit.revision) this.#pending.delete(key);
      }
      this.#revision = commit.revision;
      for (const change of commit.changes) this.#publish(change);
    }
    commit.resolve();
  }

  #publish(change: Change): void {
    for (const { kinds, watch } of this.#subscriptions) {
      if (kinds && !kinds.has(change.object.kind)) continue;
      watch.push(change);
    }
  }

  async #compact(): Promise<void> {
    const snapshotPath = join(this.dataDir, SNAPSHOT_FILE);
    const tmpPath = `${snapshotPath}.tmp`;
    const snapshot: SnapshotRecord = {
      v: FORMAT_VERSION,
      revision: this.#revision,
      objects: [...this.#objects.values()],
    };
    try {
      const handle = await open(tmpPath, "w", 0o600);
      try {
        await writeAll(handle, encodeFrame(snapshot));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmpPath, snapshotPath);
      await fsyncDir(this.dataDir);
    } catch (err) {
      // The log still holds everything: keep going, and retry after as many bytes again.
      this.#logger.warn("store: snapshot failed, the log keeps growing", { error: String(err) });
      this.#compactAt = this.#logBytes + this.#compactAfterBytes;
      await unlink(tmpPath).catch(() => {});
      return;
    }
    try {
      await this.#log.truncate(0);
      await this.#log.datasync();
      this.#logBytes = 0;
      this.#compactAt = this.#compactAfterBytes;
    } catch (err) {
      this.#fail(err, []);
    }
  }

  #fail(err: unknown, batch: QueuedCommit[]): void {
    // After a failed write or fsync the log's content is unknown (the data may or may not be on
    // disk): stop accepting commits rather than build on it. Reopening recovers what is there.
    const failure = new CatenaError(
      ErrorCode.Unavailable,
      `store write failed, the store accepts no more commits: ${err instanceof Error ? err.message : String(err)}`,
      [],
      { cause: err },
    );
    this.#failure = failure;
    this.#logger.warn("store: write failed", { dataDir: this.dataDir, error: String(err) });
    for (const commit of batch) commit.reject(failure);
    this.#abortQueued(failure);
    for (const { watch } of [...this.#subscriptions]) watch.fail(failure);
  }

  #abortQueued(err: CatenaError): void {
    for (const commit of this.#queue.splice(0)) commit.reject(err);
    this.#pending.clear();
    this.#headRevision = this.#revision;
  }

  #whenIdle(): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}
