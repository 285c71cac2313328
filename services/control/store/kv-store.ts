// The Store on a JetStream key-value bucket, for several control servers sharing one state.
//
// Layout: one key per object, `<Kind>.<name>`, value the object's JSON without resourceVersion; its
// resourceVersion is the KV revision of that entry (the stream sequence), so every replica reads the
// same version and event ids (`Kind/name/revision/change`) agree across replicas. Other keys (IPAM,
// registry) may share the bucket; the store ignores them.
//
// Atomic multi-object commits. KV has no multi-key transaction (nats-server 2.9 has no atomic
// batch publish), so a commit is an intent record followed by its writes:
//   1. plan against this replica's cache, which has applied every intent up to number n;
//   2. create the key `_tx.<n+1>` holding {id, writes: [{key, expected revision, change, object}]}.
//      A create fails if the key exists, so exactly one replica gets each number: this orders the
//      commits of all replicas. The loser waits for its cache to show intent n+1 complete and
//      plans again (expectedVersion conflicts surface here, against current state);
//   3. apply each write with its own expected revision (a put, or a delete marker);
//   4. resolve once this replica's watch has seen every write (read your writes).
// An intent is durable before any of its writes, and its writes are deterministic, so anyone may
// finish it: every replica that sees an intent still incomplete after `rollForwardAfterMs` applies
// its writes again. Replaying is idempotent: a write whose key is no longer at the expected revision
// was already applied (nothing else writes object keys between an intent and its completion: the
// next intent is created only once this one is complete). Readers and watchers on every replica
// hold the writes of an intent back until all have arrived, then apply them together: nobody
// observes a half-applied commit. setStatus is a one-object commit through the same path. Old
// intents are purged, the last 256 kept.
//
// Why a log of created keys rather than one `_tx` key updated with an expected revision: on
// nats-server before 2.9.21 a clustered stream does not serialize expected-revision updates
// (nats-server#4320: every one of 200 tries on 2.9.10 let several writers through), while creates
// (expected revision 0) are serialized. Object writes still use expected revisions; on such a
// server, a replica finishing a slow writer's commit may write the same value twice, which the
// cache takes as a version bump without a change. Clusters should run nats-server 2.9.21 or later.
//
// Failure modes: a writer that dies after its intent leaves the commit to be finished by another
// replica within ~rollForwardAfterMs; meanwhile every replica's writes wait (the newest intent is a
// global lock whose holder cannot keep it longer than that). A writer that dies before its intent
// changes nothing. An intent write that gets no answer has an unknown outcome: the store watches
// whether it landed and carries on, or reports Unavailable ("outcome unknown"), as any database
// does for a lost acknowledgement. Commits are serialized across replicas (one intent at a time),
// so write throughput is bounded by about three JetStream round trips per commit, whatever the
// number of replicas; reads are local. Writing object keys with another tool while Catena runs
// is not supported (such a write may be taken for a commit's own). A commit must fit in one NATS
// message (max_payload, 1 MiB by default; about 3,000 typical objects).
import { randomUUID } from "node:crypto";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { CatenaError, ErrorCode } from "../errors.js";
import { KINDS, type Kind, type ResourceStatus, type StoredResource } from "../model/resource.js";
import type { StoreLogger } from "./embedded-store.js";
import { isWrongLastSequence, openBucket, stateBucketName } from "./kv-cas.js";
import { type BucketEntry, BucketWatch } from "./kv-watch.js";
import { matchesSelector } from "./label-selector.js";
import type {
  Change,
  ChangeType,
  CommitResult,
  LabelSelector,
  OpResult,
  Store,
  StoreOp,
  WatchOptions,
} from "./store.js";
import { QueuedWatch } from "./watch.js";
import { checkIdentity, deepEqual, deepFreeze, planPut, planStatus } from "./write-rules.js";

export interface KvStoreOptions {
  /** NATS server URLs (`nats://a:4222,nats://b:4222` or a list): the store owns that connection. */
  servers?: string | string[];
  /** Or a connection the caller owns (the store does not close it). */
  connection?: NatsConnection;
  /** Subject root: the bucket is `<ROOT>_STATE` (CATENA_STATE, T1_STATE) unless `bucket` is given. */
  root: string;
  bucket?: string;
  logger?: StoreLogger;
  /** Replicas when the bucket is created here. Default 3 on a clustered server, else 1. */
  replicas?: number;
  /** An intent still incomplete after this long is finished by whichever replica sees it. Default 1000. */
  rollForwardAfterMs?: number;
  /** How long one commit keeps trying through conflicts and NATS failures. Default 30,000. */
  commitTimeoutMs?: number;
  /** As in the embedded store: changes buffered for a slow watch before it fails. Default 10,000. */
  watchBufferLimit?: number;
  /** Intents kept in the bucket (checked every that many commits). Default 256. */
  intentsKept?: number;
}

export interface KvStore extends Store {
  readonly bucket: string;
  watch(options?: WatchOptions): QueuedWatch<Change>;
  /**
   * A read barrier: resolves once this replica has applied everything the bucket held when called,
   * so a read after it sees every commit acknowledged before (by any replica).
   */
  sync(timeoutMs?: number): Promise<void>;
  /** Aborts: waiting commits fail with Closed, watches with `err`. Idempotent. */
  destroy(err?: Error): Promise<void>;
}

/** Intents are the keys `_tx.1`, `_tx.2`, ...: commit n+1 creates `_tx.<n+1>`. */
const TX_PREFIX = "_tx.";
/** Intents kept in the bucket by default; older ones are purged (a watch far behind then sees plain writes). */
const TX_KEEP = 256;
const FORMAT_VERSION = 1;
/** Room left in a NATS message for the subject and headers. */
const HEADER_ROOM = 4096;
// A key token: what NATS KV allows, minus the dot (it separates kind from name).
const NAME_PATTERN = /^[-/_=A-Za-z0-9]+$/;

interface TxWrite {
  /** KV key `<Kind>.<name>`. */
  k: string;
  /** Revision the key must be at: its last entry's (a delete marker's too), 0 if never written. */
  e: number;
  t: ChangeType;
  /** The object as stored; absent for a delete. */
  o?: StoredResource;
}

interface TxRecord {
  v: number;
  id: string;
  w: TxWrite[];
}

interface Arrived {
  revision: number;
  op: string;
  data: Uint8Array;
}

interface PendingTx {
  revision: number;
  record: TxRecord;
  remaining: Set<string>;
  arrived: Map<string, Arrived>;
  timer?: NodeJS.Timeout;
  rounds: number;
}

interface TxOutcome {
  revision: number;
  objects: Map<string, StoredResource | undefined>;
  /** The revision each key's write got. */
  revisions: Map<string, number>;
}

/** A commit of this replica, followed through the watch. */
interface OwnTx {
  /** Set (synchronously, by the watch) when its intent shows. */
  intentRevision: number | undefined;
  done: Promise<TxOutcome>;
  complete(outcome: TxOutcome): void;
}

interface Waiter {
  check(): boolean;
  resolve(): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

interface Subscription {
  kinds: ReadonlySet<Kind> | undefined;
  watch: QueuedWatch<Change>;
}

interface QueuedWrite {
  plan(): Planned;
  resolve(result: CommitResult): void;
  reject(err: unknown): void;
}

interface Planned {
  results: OpResult[];
  writes: TxWrite[];
}

const decoder = new TextDecoder();

function compareObjects(a: StoredResource, b: StoredResource): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  const an = a.metadata.name;
  const bn = b.metadata.name;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** The object as the bucket keeps it: resourceVersion is the entry's revision, not part of the value. */
function withoutVersion(object: StoredResource): StoredResource {
  const { resourceVersion: _, ...metadata } = object.metadata;
  return { ...object, metadata } as StoredResource;
}

function parseKey(key: string): { kind: Kind; name: string } | undefined {
  const dot = key.indexOf(".");
  if (dot <= 0) return undefined;
  const kind = key.slice(0, dot);
  if (!(KINDS as readonly string[]).includes(kind)) return undefined;
  return { kind: kind as Kind, name: key.slice(dot + 1) };
}

function isTxRecord(value: unknown): value is TxRecord {
  const r = value as Partial<TxRecord> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    r.v === FORMAT_VERSION &&
    typeof r.id === "string" &&
    Array.isArray(r.w) &&
    r.w.every((w) => typeof w?.k === "string" && Number.isSafeInteger(w.e) && typeof w.t === "string")
  );
}

function unavailable(message: string, cause?: unknown): CatenaError {
  const suffix = cause === undefined ? "" : `: ${cause instanceof Error ? cause.message : String(cause)}`;
  return new CatenaError(ErrorCode.Unavailable, `${message}${suffix}`, [], { cause });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens the store on its bucket (creating the bucket when missing) and loads the current state. */
export async function openKvStore(options: KvStoreOptions): Promise<KvStore> {
  const logger = options.logger ?? {
    warn: (msg: string, fields?: object) => process.emitWarning(`${msg} ${JSON.stringify(fields ?? {})}`),
  };
  const settings = checkOptions(options, logger);
  const bucket = options.bucket ?? stateBucketName(options.root);
  let nc = options.connection;
  const owned = nc === undefined;
  if (!nc) {
    if (options.servers === undefined) {
      throw new CatenaError(ErrorCode.Invalid, "KV store: give servers or a connection", [
        { path: "servers", message: "required without connection" },
      ]);
    }
    try {
      // A list in one string (`CATENA_NATS_URL=nats://a:4222,nats://b:4222`): nats.js wants an array.
      const servers =
        typeof options.servers === "string"
          ? options.servers
              .split(",")
              .map((s) => s.trim())
              .filter((s) => s !== "")
          : options.servers;
      nc = await connect({
        servers,
        name: "catena-store",
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (err) {
      throw unavailable(`KV store: cannot connect to NATS at ${String(options.servers)}`, err);
    }
  }
  try {
    const kv = await openBucket(nc, bucket, {
      ...(options.replicas !== undefined && { replicas: options.replicas }),
      warn: (msg, fields) => logger.warn(msg, fields),
    });
    const jsm = await jetstreamManager(nc);
    const store = new NatsKvStore(nc, owned, kv, jsm, bucket, settings);
    await store.start();
    return store;
  } catch (err) {
    if (owned) await nc.close().catch(() => undefined);
    throw err;
  }
}

interface Settings {
  logger: StoreLogger;
  intentsKept: number;
  rollForwardAfterMs: number;
  commitTimeoutMs: number;
  watchBufferLimit: number;
}

/** Defaults in one place; a bad option fails at once, naming the field. */
function checkOptions(options: KvStoreOptions, logger: StoreLogger): Settings {
  const settings: Settings = {
    logger,
    rollForwardAfterMs: options.rollForwardAfterMs ?? 1000,
    commitTimeoutMs: options.commitTimeoutMs ?? 30_000,
    watchBufferLimit: options.watchBufferLimit ?? 10_000,
    intentsKept: options.intentsKept ?? TX_KEEP,
  };
  for (const field of ["rollForwardAfterMs", "commitTimeoutMs", "watchBufferLimit", "intentsKept"] as const) {
    if (!Number.isSafeInteger(settings[field]) || settings[field] <= 0) {
      const message = "must be a positive integer";
      throw new CatenaError(ErrorCode.Invalid, `KV store option ${field}: ${message}`, [
        { path: field, message },
      ]);
    }
  }
  if (typeof options.root !== "string" || options.root === "") {
    throw new CatenaError(ErrorCode.Invalid, "KV store option root: must be a non-empty string", [
      { path: "root", message: "must be a non-empty string" },
    ]);
  }
  return settings;
}

class NatsKvStore implements KvStore {
  readonly bucket: string;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #kv: KV;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;
  readonly #o: Settings;
  readonly #queue: QueuedWrite[] = [];
  #writing = false;
  #idleWaiters: Array<() => void> = [];

  // The cache: what readers and watchers see. Only complete commits are applied to it.
  readonly #objects = new Map<string, StoredResource>();
  /** Revision of the delete marker of each deleted key: a write there must expect it. */
  readonly #tombstones = new Map<string, number>();
  #revision = 0;
  /** Last stream sequence processed, whatever the key. */
  #seen = 0;
  /** Number of the last intent seen: the next commit creates `_tx.<#txNumber + 1>`. */
  #txNumber = 0;
  #pending: PendingTx | undefined;
  #ready = false;
  #readyAt = 0;

  readonly #waiters = new Set<Waiter>();
  /** Commits of this replica waiting for their intent to show and to complete, by intent id. */
  readonly #ownTx = new Map<string, OwnTx>();
  readonly #subscriptions = new Set<Subscription>();
  readonly #bucketWatch: BucketWatch;
  #failure: CatenaError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    nc: NatsConnection,
    ownsConnection: boolean,
    kv: KV,
    jsm: JetStreamManager,
    bucket: string,
    settings: Settings,
  ) {
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#kv = kv;
    this.#jsm = jsm;
    this.bucket = bucket;
    this.#stream = `KV_${bucket}`;
    this.#o = settings;
    this.#bucketWatch = new BucketWatch({
      nc,
      jsm,
      bucket,
      logger: settings.logger,
      applied: () => this.#seen,
      onEntry: (entry, pending) => this.#onBucketEntry(entry, pending),
    });
  }

  /** Starts the watch of the whole bucket and waits until the current state is loaded. */
  async start(): Promise<void> {
    const info = await this.#jsm.streams.info(`KV_${this.bucket}`);
    this.#readyAt = info.state.messages === 0 ? 0 : info.state.last_seq;
    if (this.#readyAt === 0) this.#ready = true;
    const deadline = Date.now() + this.#o.commitTimeoutMs;
    await this.#bucketWatch.start(deadline);
    await this.#waitFor(() => this.#ready, deadline, "the initial load");
  }

  revision(): number {
    this.#checkOpen();
    return this.#revision;
  }

  async get(kind: Kind, name: string): Promise<StoredResource | undefined> {
    this.#checkOpen();
    return this.#objects.get(`${kind}.${name}`);
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

  async commit(ops: StoreOp[], options: { dryRun?: boolean } = {}): Promise<CommitResult> {
    this.#checkWritable();
    if (!Array.isArray(ops)) throw new CatenaError(ErrorCode.Invalid, "commit: ops must be an array");
    if (options.dryRun) {
      // Nothing is written, so no KV revision exists yet: new objects carry resourceVersion "0".
      return { revision: this.#revision, results: this.#plan(ops).results };
    }
    return this.#write(() => this.#plan(ops));
  }

  async setStatus(
    kind: Kind,
    name: string,
    status: ResourceStatus,
    options: { expectedVersion?: string } = {},
  ): Promise<StoredResource> {
    this.#checkWritable();
    checkIdentity(kind, name, 0);
    const key = this.#key(kind, name, 0);
    const result = await this.#write(() => {
      const current = this.#objects.get(key);
      if (!current) throw notFound(kind, name, 0);
      checkExpected(current, kind, name, options.expectedVersion, 0);
      const next = planStatus(current, status, 0);
      if (!next) return { results: [{ action: "unchanged", object: current }], writes: [] };
      return {
        results: [{ action: "updated", object: next }],
        writes: [
          { k: key, e: Number(current.metadata.resourceVersion), t: "status", o: withoutVersion(next) },
        ],
      };
    });
    return (result.results[0] as OpResult).object;
  }

  watch(options: WatchOptions = {}): QueuedWatch<Change> {
    this.#checkWritable();
    const kinds = options.kinds ? new Set(options.kinds) : undefined;
    // Taken synchronously with the subscription: no change slips in between.
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
        maxBuffered: this.#o.watchBufferLimit + initial.length,
        onStop: () => this.#subscriptions.delete(subscription),
      }),
    };
    this.#subscriptions.add(subscription);
    for (const object of initial) {
      subscription.watch.push({ type: "created", object, revision: this.#revision });
    }
    return subscription.watch;
  }

  async sync(timeoutMs = 10_000): Promise<void> {
    this.#checkWritable();
    const info = await this.#jsm.streams.info(this.#stream);
    const target = info.state.last_seq;
    await this.#waitFor(
      () => this.#seen >= target && this.#pending === undefined,
      Date.now() + timeoutMs,
      `revision ${target}`,
    );
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      // Behind the commits already queued: they finish, later calls fail with Closed.
      this.#closing = this.#whenIdle().then(() => this.#shutdown());
    }
    return this.#closing;
  }

  destroy(err?: Error): Promise<void> {
    if (!this.#closing) {
      const reason = new CatenaError(ErrorCode.Closed, "store destroyed", [], { cause: err });
      this.#failure = reason;
      this.#rejectWaiters(reason);
      for (const { watch } of [...this.#subscriptions]) watch.fail(err ?? reason);
    }
    return this.close();
  }

  // --- writing ----------------------------------------------------------------------------------

  #key(kind: Kind, name: string, document: number): string {
    if (!NAME_PATTERN.test(name)) {
      const message = `${kind}/${name}: metadata.name is not usable as a NATS KV key (letters, digits, - _ = /)`;
      throw new CatenaError(ErrorCode.Invalid, message, [
        { document, kind, name, path: "metadata.name", message },
      ]);
    }
    return `${kind}.${name}`;
  }

  /** Validates and plans a commit against the cache, as the embedded store does against its state. */
  #plan(ops: StoreOp[]): Planned {
    const seen = new Set<string>();
    const results: OpResult[] = [];
    const writes: TxWrite[] = [];
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
      const key = this.#key(kind, name as string, i);
      if (seen.has(key)) {
        throw new CatenaError(
          ErrorCode.Invalid,
          `${kind}/${String(name)}: more than one op on the same object in one commit`,
          [{ document: i, kind, name: name as string, path: "", message: "duplicate object in commit" }],
        );
      }
      seen.add(key);
      const current = this.#objects.get(key);
      checkExpected(current, kind, name as string, op.expectedVersion, i);
      const expected = current ? Number(current.metadata.resourceVersion) : (this.#tombstones.get(key) ?? 0);
      if (op.type === "put") {
        const planned = planPut(op.object, current, 0, i);
        results.push(planned);
        if (planned.action === "unchanged") return;
        writes.push({ k: key, e: expected, t: planned.action, o: withoutVersion(planned.object) });
      } else {
        if (!current) throw notFound(kind, name as string, i);
        results.push({ action: "deleted", object: current });
        writes.push({ k: key, e: expected, t: "deleted" });
      }
    });
    return { results, writes };
  }

  /**
   * Queues a commit. One writer per replica takes every commit queued meanwhile and makes them one
   * intent (group commit: a burst of status writes after a big apply costs a few intents, not one
   * each). A batch ends before a commit that touches an object already in it, or that would
   * overflow one NATS message, so commits of one replica are made in call order.
   */
  #write(plan: () => Planned): Promise<CommitResult> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#queue.push({ plan, resolve, reject });
      if (!this.#writing) {
        this.#writing = true;
        void this.#drain();
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commitBatch(this.#queue.splice(0));
    } finally {
      this.#writing = false;
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  /** The intent protocol (see the file header) for the commits of one batch. */
  async #commitBatch(requests: QueuedWrite[]): Promise<void> {
    const deadline = Date.now() + this.#o.commitTimeoutMs;
    const limit = (this.#nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM;
    let live = requests;
    for (;;) {
      try {
        // Not #checkWritable: commits queued before close() still run.
        if (this.#failure) throw this.#failure;
        await this.#waitFor(() => this.#pending === undefined, deadline, "the previous commit to complete");
      } catch (err) {
        for (const r of live) r.reject(err);
        return;
      }
      const base = this.#txNumber;
      const batch: { request: QueuedWrite; planned: Planned }[] = [];
      const keys = new Set<string>();
      let bytes = 0;
      for (let i = 0; i < live.length; i++) {
        const request = live[i] as QueuedWrite;
        let planned: Planned;
        try {
          planned = request.plan();
        } catch (err) {
          request.reject(err);
          continue;
        }
        if (planned.writes.length === 0) {
          request.resolve({ revision: this.#revision, results: planned.results });
          continue;
        }
        const size = Buffer.byteLength(JSON.stringify(planned.writes));
        if (size > limit) {
          const message = `a commit of ${planned.writes.length} objects is ${size} bytes, more than one NATS message holds (${limit}): apply it in parts`;
          request.reject(new CatenaError(ErrorCode.Invalid, message, [{ path: "", message }]));
          continue;
        }
        if (planned.writes.some((w) => keys.has(w.k)) || bytes + size > limit) {
          this.#queue.unshift(...live.slice(i)); // the next batch, still in call order
          break;
        }
        for (const w of planned.writes) keys.add(w.k);
        bytes += size;
        batch.push({ request, planned });
      }
      if (batch.length === 0) return;
      const record: TxRecord = {
        v: FORMAT_VERSION,
        id: randomUUID(),
        w: batch.flatMap((b) => b.planned.writes),
      };
      const own = this.#trackOwn(record.id);
      try {
        if (!(await this.#putIntent(JSON.stringify(record), base + 1, own, deadline))) {
          // Another replica committed since `base`: catch up, then plan again on fresh state.
          await this.#waitFor(() => this.#txNumber > base, deadline, "a newer commit to show");
          // Small and not growing: a loser that waits longer each time would starve.
          await sleep(Math.random() * 3);
          live = batch.map((b) => b.request);
          continue;
        }
        await this.#applyWrites(record.w, deadline);
        const outcome = await this.#raceDeadline(
          Promise.race([own.done, this.#passed(base + 1, record, deadline)]),
          deadline,
          "the commit to show in the watch",
        );
        if ((base + 1) % this.#o.intentsKept === 0) void this.#pruneIntents();
        for (const { request, planned } of batch) {
          // This commit's own revision: the last of its writes (a batch shares one intent).
          const revisions = planned.writes.map((w) => outcome.revisions.get(w.k) ?? outcome.revision);
          request.resolve({
            revision: Math.max(...revisions),
            results: planned.results.map((r) => {
              if (r.action === "deleted" || r.action === "unchanged") return r;
              const stored = outcome.objects.get(`${r.object.kind}.${r.object.metadata.name}`);
              return { action: r.action, object: stored ?? r.object };
            }),
          });
        }
      } catch (err) {
        for (const { request } of batch) request.reject(err);
      } finally {
        this.#ownTx.delete(record.id);
      }
      return;
    }
  }

  #whenIdle(): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * For a watch that was far behind (restarted after a NATS node died): our intent may have been
   * purged before the watch read it, so it never completes as ours. Once the watch is past it,
   * our writes are applied: answer from the cache.
   */
  async #passed(number: number, record: TxRecord, deadline: number): Promise<TxOutcome> {
    await this.#waitFor(
      () => this.#txNumber > number && this.#pending === undefined,
      deadline,
      "newer commits",
    );
    const objects = new Map<string, StoredResource | undefined>();
    const revisions = new Map<string, number>();
    for (const w of record.w) {
      const object = this.#objects.get(w.k);
      objects.set(w.k, object);
      revisions.set(
        w.k,
        object ? Number(object.metadata.resourceVersion) : (this.#tombstones.get(w.k) ?? this.#revision),
      );
    }
    return { revision: this.#revision, objects, revisions };
  }

  #trackOwn(id: string): OwnTx {
    let resolve!: (outcome: TxOutcome) => void;
    const own: OwnTx = {
      intentRevision: undefined,
      done: new Promise<TxOutcome>((r) => {
        resolve = r;
      }),
      complete: (outcome) => resolve(outcome),
    };
    this.#ownTx.set(id, own);
    return own;
  }

  /**
   * Creates intent `number`: true when it landed, false when another replica created it first.
   * A create (expected revision 0) and not an update of one key: nats-server before 2.9.21 does not
   * serialize updates with an expected revision in a cluster (nats-server#4320; two writers were
   * both accepted in every try here on 2.9.10), but it does serialize creates.
   */
  async #putIntent(bytes: string, number: number, own: OwnTx, deadline: number): Promise<boolean> {
    const key = `${TX_PREFIX}${number}`;
    let unanswered: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#kv.put(key, bytes, { previousSeq: 0 });
        return true;
      } catch (err) {
        if (isWrongLastSequence(err)) {
          if (unanswered === undefined) return false;
          // An earlier try got no answer: the intent there may be ours. Read it to know.
          return (await this.#intentId(key, deadline)) === (JSON.parse(bytes) as TxRecord).id;
        }
        // No answer (a NATS node died, a leader election): try the same create again; if the
        // first one landed, this one finds the key taken and the read above tells whose it is.
        unanswered = err;
        if (Date.now() > deadline)
          throw unavailable("commit outcome unknown: the intent write got no answer", err);
        if (own.intentRevision !== undefined) return true; // the watch showed it meanwhile
        await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
  }

  async #intentId(key: string, deadline: number): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const entry = await this.#kv.get(key);
        const record: unknown = entry?.operation === "PUT" ? entry.json() : undefined;
        return isTxRecord(record) ? record.id : undefined;
      } catch (err) {
        if (Date.now() > deadline)
          throw unavailable("commit outcome unknown: cannot read the intent back", err);
        await sleep(Math.min(1000, 50 * 2 ** attempt));
      }
    }
  }

  /** Drops all but the last intentsKept intents (a stream purge by subject: no markers left behind). */
  async #pruneIntents(): Promise<void> {
    try {
      await this.#jsm.streams.purge(this.#stream, {
        filter: `$KV.${this.bucket}.${TX_PREFIX}>`,
        keep: this.#o.intentsKept,
      });
    } catch (err) {
      this.#o.logger.warn("KV store: pruning old intents failed", {
        bucket: this.bucket,
        error: String(err),
      });
    }
  }

  /**
   * Applies an intent's writes, each with its expected revision; a write that finds its key moved
   * was applied already (by the writer or another replica finishing the commit). Other failures
   * (timeouts, no leader) are retried until `deadline`.
   */
  async #applyWrites(writes: TxWrite[], deadline: number): Promise<void> {
    await Promise.all(
      writes.map(async (w) => {
        for (let attempt = 0; ; attempt++) {
          try {
            if (w.t === "deleted") await this.#kv.delete(w.k, { previousSeq: w.e });
            else await this.#kv.put(w.k, JSON.stringify(w.o), { previousSeq: w.e });
            return;
          } catch (err) {
            if (isWrongLastSequence(err)) return;
            if (this.#closed && this.#failure) throw this.#failure;
            if (Date.now() > deadline) {
              throw unavailable(
                "commit recorded but not yet applied; a control server will complete it",
                err,
              );
            }
            await sleep(Math.min(1000, 50 * 2 ** attempt));
          }
        }
      }),
    );
  }

  // --- the watch: applying the bucket's entries to the cache ------------------------------------

  #onBucketEntry(entry: BucketEntry, pending: number | undefined): void {
    this.#onEntry(entry.key, entry.revision, entry.op, entry.data);
    if (!this.#ready && (this.#seen >= this.#readyAt || pending === 0)) this.#ready = true;
    this.#notify();
  }

  #onEntry(key: string, revision: number, op: string, data: Uint8Array): void {
    if (revision <= this.#seen) return;
    this.#seen = revision;
    if (key.startsWith(TX_PREFIX)) {
      this.#onIntent(Number(key.slice(TX_PREFIX.length)), revision, op, data);
    } else if (parseKey(key)) {
      const pending = this.#pending;
      if (pending && revision > pending.revision && pending.remaining.has(key)) {
        pending.remaining.delete(key);
        pending.arrived.set(key, { revision, op, data });
        if (pending.remaining.size === 0) this.#completeTx(pending);
      } else {
        const change = this.#applyEntry(key, revision, op, data, undefined);
        if (change) {
          this.#revision = Math.max(this.#revision, revision);
          this.#publish(change);
        }
      }
    }
  }

  #onIntent(number: number, revision: number, op: string, data: Uint8Array): void {
    if (!Number.isSafeInteger(number) || op !== "PUT") return;
    // Only after a gap in the watch (entries superseded while it was away), or in the initial load
    // (older intents come first), does an intent arrive before the previous one completed: later
    // entries carry the final values, so apply what came.
    if (this.#pending) this.#completeTx(this.#pending);
    this.#txNumber = Math.max(this.#txNumber, number);
    let record: unknown;
    try {
      record = JSON.parse(decoder.decode(data));
    } catch {
      record = undefined;
    }
    if (!isTxRecord(record)) {
      this.#o.logger.warn("KV store: ignoring an intent of unknown shape", { bucket: this.bucket, revision });
      return;
    }
    const own = this.#ownTx.get(record.id);
    if (own) own.intentRevision = revision;
    const pending: PendingTx = {
      revision,
      record,
      remaining: new Set(record.w.map((w) => w.k)),
      arrived: new Map(),
      rounds: 0,
    };
    this.#pending = pending;
    if (pending.remaining.size === 0) {
      this.#completeTx(pending);
      return;
    }
    this.#armRollForward(pending);
  }

  #armRollForward(pending: PendingTx): void {
    pending.timer = setTimeout(() => void this.#rollForward(pending), this.#o.rollForwardAfterMs);
    pending.timer.unref();
  }

  /** Finishes an intent its writer left incomplete (it died, or lost NATS mid-commit). */
  async #rollForward(pending: PendingTx): Promise<void> {
    if (this.#pending !== pending || this.#closed) return;
    pending.rounds++;
    const missing = pending.record.w.filter((w) => pending.remaining.has(w.k));
    this.#o.logger.warn("KV store: completing a commit left incomplete", {
      bucket: this.bucket,
      intent: pending.revision,
      missing: missing.length,
    });
    try {
      await this.#applyWrites(missing, Date.now() + this.#o.commitTimeoutMs);
      if (pending.rounds > 1 && this.#pending === pending) {
        // Every write was refused as already applied, yet the watch never saw it: the key's
        // expected revision was wrong (a key purged outside Catena). Drop what cannot land.
        let missed = false;
        for (const w of missing) {
          const entry = await this.#kv.get(w.k);
          if ((entry?.revision ?? 0) < pending.revision) pending.remaining.delete(w.k);
          else missed = true;
        }
        // The write is in the bucket but never came through the watch: the watch lost it.
        if (missed) void this.#bucketWatch.restart("a commit's write is in the bucket, not in the watch");
        if (this.#pending === pending && pending.remaining.size === 0) {
          this.#o.logger.warn("KV store: a commit's writes could not land; applied the rest", {
            bucket: this.bucket,
            intent: pending.revision,
          });
          this.#completeTx(pending);
          this.#notify();
        }
      }
    } catch (err) {
      this.#o.logger.warn("KV store: completing a commit failed, will retry", { error: String(err) });
    }
    if (this.#pending === pending && !this.#closed) this.#armRollForward(pending);
  }

  #completeTx(pending: PendingTx): void {
    clearTimeout(pending.timer);
    this.#pending = undefined;
    const objects = new Map<string, StoredResource | undefined>();
    const revisions = new Map<string, number>();
    const changes: Change[] = [];
    let revision = this.#revision;
    for (const w of pending.record.w) {
      const arrived = pending.arrived.get(w.k);
      if (!arrived) continue;
      const change = this.#applyEntry(w.k, arrived.revision, arrived.op, arrived.data, w.t);
      objects.set(w.k, this.#objects.get(w.k));
      revisions.set(w.k, arrived.revision);
      revision = Math.max(revision, arrived.revision);
      if (change) changes.push(change);
    }
    this.#revision = revision;
    for (const change of changes) this.#publish(change);
    this.#ownTx.get(pending.record.id)?.complete({ revision, objects, revisions });
  }

  /** Applies one entry to the cache; the change it makes, if any. */
  #applyEntry(
    key: string,
    revision: number,
    op: string,
    data: Uint8Array,
    hint: ChangeType | undefined,
  ): Change | undefined {
    const previous = this.#objects.get(key);
    if (op !== "PUT") {
      this.#tombstones.set(key, revision);
      if (!previous) return undefined;
      this.#objects.delete(key);
      return { type: "deleted", object: previous, revision };
    }
    let object: StoredResource;
    try {
      const parsed = JSON.parse(decoder.decode(data)) as StoredResource;
      parsed.metadata.resourceVersion = String(revision);
      object = deepFreeze(parsed);
    } catch (err) {
      this.#o.logger.warn("KV store: ignoring an entry that is not an object", {
        key,
        revision,
        error: String(err),
      });
      return undefined;
    }
    this.#tombstones.delete(key);
    this.#objects.set(key, object);
    // A second copy of a write already applied (a replica finishing a commit raced its slow writer,
    // and the server let both through): the version moves on, nothing changed.
    if (!hint && previous && deepEqual(withoutVersion(previous), withoutVersion(object))) return undefined;
    const type = hint && hint !== "deleted" ? hint : changeTypeOf(previous, object);
    return { type, object, ...(previous && { previous }), revision };
  }

  #publish(change: Change): void {
    for (const { kinds, watch } of this.#subscriptions) {
      if (kinds && !kinds.has(change.object.kind)) continue;
      watch.push(change);
    }
  }

  // --- waiting, failing, closing ----------------------------------------------------------------

  #waitFor(check: () => boolean, deadline: number, what: string): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.#waiters.delete(waiter);
            reject(unavailable(`KV store: timed out waiting for ${what} (bucket ${this.bucket})`));
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.#waiters.add(waiter);
    });
  }

  #raceDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(unavailable(`KV store: timed out waiting for ${what}`)),
        Math.max(0, deadline - Date.now()),
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  #notify(): void {
    for (const waiter of this.#waiters) {
      if (!waiter.check()) continue;
      clearTimeout(waiter.timer);
      this.#waiters.delete(waiter);
      waiter.resolve();
    }
  }

  #rejectWaiters(err: unknown): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
    this.#waiters.clear();
  }

  #fail(err: CatenaError): void {
    this.#failure ??= err;
    this.#o.logger.warn("KV store failed", { bucket: this.bucket, error: err.message });
    this.#rejectWaiters(err);
    for (const { watch } of [...this.#subscriptions]) watch.fail(err);
  }

  async #shutdown(): Promise<void> {
    clearTimeout(this.#pending?.timer);
    this.#rejectWaiters(new CatenaError(ErrorCode.Closed, "store is closed"));
    await this.#bucketWatch.close();
    if (this.#ownsConnection) await this.#nc.close().catch(() => undefined);
    for (const { watch } of [...this.#subscriptions]) watch.end();
  }

  #checkOpen(): void {
    if (this.#closed) throw new CatenaError(ErrorCode.Closed, "store is closed");
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failure) throw this.#failure;
  }
}

function changeTypeOf(previous: StoredResource | undefined, object: StoredResource): ChangeType {
  if (!previous) return "created";
  const sameSpec =
    deepEqual(previous.spec, object.spec) &&
    deepEqual(previous.metadata.labels ?? {}, object.metadata.labels ?? {}) &&
    deepEqual(previous.metadata.annotations ?? {}, object.metadata.annotations ?? {});
  return sameSpec && !deepEqual(previous.status, object.status) ? "status" : "updated";
}

function checkExpected(
  current: StoredResource | undefined,
  kind: Kind,
  name: string,
  expected: string | undefined,
  document: number,
): void {
  if (expected === undefined) return;
  if (!current) throw notFound(kind, name, document);
  const stored = current.metadata.resourceVersion;
  if (stored !== expected) {
    const message = `${kind}/${name}: resourceVersion ${expected} is stale, the stored version is ${stored}`;
    throw new CatenaError(ErrorCode.Conflict, message, [
      { document, kind, name, path: "metadata.resourceVersion", message },
    ]);
  }
}

function notFound(kind: Kind, name: string, document: number): CatenaError {
  const message = `${kind}/${name} not found`;
  return new CatenaError(ErrorCode.NotFound, message, [{ document, kind, name, path: "", message }]);
}
