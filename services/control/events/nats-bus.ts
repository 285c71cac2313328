// The NATS JetStream bus: the only file of the events package that imports @nats-io/*.
//
// Publishing is pipelined (many messages in flight, bounded by `maxInFlight`) and ordered. Each message
// goes out as a JetStream publish (a PUB with a reply subject and a `Nats-Msg-Id` header, what
// `js.publish` sends) whose acknowledgement comes back on one wildcard inbox, as nats.go's PublishAsync
// does: no per-message request, timer or promise inside the client.
//
// Ordering across failures. Messages are sent in order on one connection, so the server stores them in
// that order. When the connection dies, the messages not yet acknowledged were either stored or lost,
// and the stored ones form a prefix. After reconnecting (and after an ack timeout or a retryable error
// on a live connection) everything not acknowledged is sent again, in order, with the same msgIDs: the
// stream's duplicate window drops the ones already stored, so each message is stored once and the
// stream order stays the send order. Two details keep this true:
//  - nats.js clears its outbound buffer when it dials, so bytes written for a dead connection are never
//    replayed on the next one; and a message is sent only while the connection it is sent on is the one
//    the current round of sends started on (server id + client id), so no send from an old round can
//    overtake the resend on a new connection.
//  - A resend starts only once the stream is known to exist (it is created again if it went missing).
// Limit: a message stored just before an outage longer than the duplicate window (2 minutes by
// default) and not acknowledged is stored a second time when resent.
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import {
  connect,
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
  type ServerInfo,
  type Subscription,
} from "@nats-io/transport-node";
import { CatenaError, ErrorCode } from "../errors.js";
import type { BusMessage, BusStatus, BusSubscription, EventBus } from "./bus.js";
import { Channel } from "./channel.js";
import { Deque } from "./deque.js";
import { type EventsLogger, silentLogger } from "./logger.js";
import { checkRoot, eventsWildcard, streamName } from "./subject.js";

export interface NatsBusOptions {
  /** `nats://host:port`, or several for a cluster. */
  servers: string | string[];
  /** Subject root: the bus publishes under `<root>.events.>` into stream `<ROOT>_EVENTS`. */
  root: string;
  /** Connection name shown by the server's monitoring. */
  name: string;
  logger: EventsLogger;
  /** Messages sent and not yet acknowledged, at most. */
  maxInFlight: number;
  /** An unacknowledged message older than this makes the bus send again from it. */
  ackTimeoutMs: number;
  reconnectTimeWaitMs: number;
  /** Stream limits, used when the bus creates the stream (an existing stream is left as it is). */
  maxAgeMs: number;
  maxBytes: number;
  duplicateWindowMs: number;
  replicas: number;
  /** Queue of each `subscribe()` consumer before the oldest messages are dropped. */
  subscriptionQueueSize: number;
}

export type NatsBusInit = Partial<NatsBusOptions> & Pick<NatsBusOptions, "servers" | "root">;

/** Defaults in one place; throws CatenaError Invalid naming the bad field. */
export function natsBusOptions(init: NatsBusInit): NatsBusOptions {
  const o: NatsBusOptions = {
    name: "catena-events",
    logger: silentLogger,
    maxInFlight: 1024,
    ackTimeoutMs: 5_000,
    reconnectTimeWaitMs: 1_000,
    maxAgeMs: 7 * 24 * 3600 * 1000,
    maxBytes: 1024 ** 3,
    duplicateWindowMs: 2 * 60 * 1000,
    replicas: 1,
    subscriptionQueueSize: 10_000,
    ...init,
  };
  checkRoot(o.root);
  const positive = [
    "maxInFlight",
    "ackTimeoutMs",
    "reconnectTimeWaitMs",
    "maxAgeMs",
    "maxBytes",
    "duplicateWindowMs",
    "replicas",
    "subscriptionQueueSize",
  ] as const;
  for (const field of positive) {
    const v = o[field];
    if (!Number.isFinite(v) || v <= 0) {
      throw new CatenaError(ErrorCode.Invalid, `invalid NATS bus option ${field}: ${v}`, [
        { path: field, message: "must be a positive number" },
      ]);
    }
  }
  if ((Array.isArray(o.servers) ? o.servers : [o.servers]).length === 0) {
    throw new CatenaError(ErrorCode.Invalid, "no NATS server given", [
      { path: "servers", message: "required" },
    ]);
  }
  return o;
}

export interface NatsBus extends EventBus {
  readonly kind: "nats";
  readonly streamName: string;
  /** Resolves once connected with the stream in place; rejects CATENA_UNAVAILABLE after timeoutMs. */
  ready(timeoutMs?: number): Promise<void>;
  counters(): NatsBusCounters;
}

export interface NatsBusCounters {
  /** PUBs written, first sends and resends. */
  sent: number;
  /** Sends of a message that had been sent before (after a reconnect, timeout or retryable error). */
  resent: number;
  acked: number;
  /** Acks saying the stream already had the msgID: a resend the duplicate window dropped. */
  duplicates: number;
  /** Rounds of sending started: the first, then one per recovery. */
  rounds: number;
}

/** Returns at once and connects in the background: publishes wait until NATS answers. */
export function createNatsBus(init: NatsBusInit): NatsBus {
  return new NatsBusImpl(natsBusOptions(init));
}

interface Entry {
  /** Bus-local, contiguous: the entry's index in `pending` is `seq - headSeq`; also the reply token. */
  seq: number;
  subject: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  msgId: string;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Acknowledged, or failed for good. */
  done: boolean;
  sentAt: number;
}

interface AckBody {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

const decoder = new TextDecoder();
/** JetStream err_code for "stream name already in use" (not in nats.js's table). */
const STREAM_NAME_IN_USE = 10058;

class NatsBusImpl implements NatsBus {
  readonly kind = "nats";
  readonly streamName: string;
  readonly #o: NatsBusOptions;
  readonly #log: EventsLogger;
  readonly #servers: string;
  readonly #subjectPrefix: string;
  /** Acks arrive on `<inbox>.<seq>`; the prefix is fixed for the bus's life (subscriptions survive reconnects). */
  readonly #ackPrefix = `${createInbox()}.`;

  #nc: NatsConnection | undefined;
  #jsm: JetStreamManager | undefined;
  #ackSub: Subscription | undefined;
  readonly #subs = new Set<{ pattern: string; channel: Channel<BusMessage>; sub?: Subscription }>();
  readonly #statusWatches = new Set<Channel<BusStatus>>();
  #status: BusStatus = { connected: false, detail: "connecting" };

  readonly #pending = new Deque<Entry>(256);
  #headSeq = 1;
  #nextSeq = 1;
  /** Entries from the head already sent in the current round. */
  #sendIdx = 0;
  /** Sending is allowed: connected, stream in place, not waiting to resend. */
  #ready = false;
  /** Connection identity the current round of sends started on. */
  #roundKey: string | undefined;
  #lastInfo: ServerInfo | undefined;
  #lastKey: string | undefined;
  /** Bumped on every state change so that stale async continuations stand down. */
  #generation = 0;
  #failures = 0;
  readonly #counters: NatsBusCounters = { sent: 0, resent: 0, acked: 0, duplicates: 0, rounds: 0 };
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #ackTimer: NodeJS.Timeout;
  #closed = false;
  /** close() was called: new publishes are refused while the pending ones drain. */
  #refusing = false;
  #closing: Promise<void> | undefined;
  readonly #readyWaiters = new Set<() => void>();

  constructor(o: NatsBusOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.streamName = streamName(o.root);
    this.#subjectPrefix = `${o.root}.events.`;
    this.#servers = Array.isArray(o.servers) ? o.servers.join(",") : o.servers;
    this.#ackTimer = setInterval(
      () => this.#checkAckTimeout(),
      Math.min(1000, Math.max(50, o.ackTimeoutMs / 4)),
    );
    this.#ackTimer.unref();
    void this.#start();
  }

  counters(): NatsBusCounters {
    return { ...this.#counters };
  }

  status(): BusStatus {
    return { ...this.#status };
  }

  statusChanges(): Channel<BusStatus> {
    const watch: Channel<BusStatus> = new Channel<BusStatus>(64, () => this.#statusWatches.delete(watch));
    watch.push(this.status());
    if (this.#closed) watch.end();
    else this.#statusWatches.add(watch);
    return watch;
  }

  ready(timeoutMs = 10_000): Promise<void> {
    if (this.#ready) return Promise.resolve();
    if (this.#closed) return Promise.reject(new CatenaError(ErrorCode.Closed, "event bus is closed"));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        if (this.#ready) resolve();
        else reject(new CatenaError(ErrorCode.Closed, "event bus is closed"));
      };
      const timer = setTimeout(() => {
        this.#readyWaiters.delete(done);
        reject(
          new CatenaError(
            ErrorCode.Unavailable,
            `NATS not ready after ${timeoutMs} ms (${this.#status.detail})`,
          ),
        );
      }, timeoutMs);
      this.#readyWaiters.add(done);
    });
  }

  publish(
    subject: string,
    payload: Uint8Array,
    headers: Record<string, string>,
    msgId: string,
  ): Promise<void> {
    if (this.#refusing) return Promise.reject(new CatenaError(ErrorCode.Closed, "event bus is closed"));
    // Outside the stream's subjects a publish would wait for a stream that never comes, holding up the rest.
    if (!subject.startsWith(this.#subjectPrefix)) {
      return Promise.reject(
        new CatenaError(ErrorCode.Invalid, `subject ${subject} is outside ${this.#subjectPrefix}>`, [
          { path: "subject", message: `must start with ${this.#subjectPrefix}` },
        ]),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Entry = {
        seq: this.#nextSeq++,
        subject,
        payload,
        headers,
        msgId,
        resolve,
        reject,
        done: false,
        sentAt: 0,
      };
      this.#pending.push(entry);
      // Send at once when the window allows: no extra hop through a queue or a timer.
      if (this.#ready && this.#sendIdx === this.#pending.length - 1 && this.#sendIdx < this.#o.maxInFlight) {
        this.#pump();
      }
    });
  }

  subscribe(pattern: string, options: { queueSize?: number } = {}): BusSubscription {
    const entry: { pattern: string; channel: Channel<BusMessage>; sub?: Subscription } = {
      pattern,
      channel: new Channel<BusMessage>(options.queueSize ?? this.#o.subscriptionQueueSize, () => {
        this.#subs.delete(entry);
        entry.sub?.unsubscribe();
      }),
    };
    if (this.#closed) {
      entry.channel.end();
      return entry.channel;
    }
    this.#subs.add(entry);
    if (this.#nc !== undefined) this.#attach(this.#nc, entry);
    return entry.channel;
  }

  close(timeoutMs = 5_000): Promise<void> {
    this.#refusing = true;
    this.#closing ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      while (!this.#closed && this.#pending.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await this.#shutdown(new CatenaError(ErrorCode.Closed, "event bus closed before the event was stored"));
    })();
    return this.#closing;
  }

  destroy(err?: Error): Promise<void> {
    return this.#shutdown(
      new CatenaError(ErrorCode.Closed, "event bus destroyed before the event was stored", [], {
        cause: err,
      }),
    );
  }

  // --- connection -------------------------------------------------------------------------------

  async #start(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#o.servers,
        name: this.#o.name,
        maxReconnectAttempts: -1,
        waitOnFirstConnect: true,
        reconnectTimeWait: this.#o.reconnectTimeWaitMs,
        // The only way to stop a first connect that waits for a server which never comes.
        reconnectToServer: () => {
          if (this.#closed) throw new Error("event bus closed");
          return null;
        },
      });
    } catch (err) {
      if (!this.#closed)
        this.#log.error({ servers: this.#servers, error: String(err) }, "NATS connection failed");
      return;
    }
    if (this.#closed) {
      await nc.close().catch(() => {});
      return;
    }
    this.#nc = nc;
    this.#ackSub = nc.subscribe(`${this.#ackPrefix}*`, {
      // A callback, not an iterator: acks are the hot path and need no extra microtask each.
      callback: (err, msg) => {
        if (err === null) this.#onAck(msg);
      },
    });
    for (const s of this.#subs) this.#attach(nc, s);
    void this.#watchStatus(nc);
    this.#log.info({ server: nc.getServer(), stream: this.streamName }, "connected to NATS");
    void this.#activate();
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.#closed) return;
      switch (s.type) {
        case "disconnect":
          this.#generation++;
          this.#setReady(false, `disconnected from ${s.server}, reconnecting`);
          this.#log.warn({ server: s.server }, "NATS disconnected; events wait in the buffer");
          break;
        case "reconnect":
          this.#log.info({ server: s.server }, "NATS reconnected");
          void this.#activate();
          break;
        default:
          break;
      }
    }
  }

  /** Makes sure the stream exists, then starts a new round of sends from the oldest unacknowledged. */
  async #activate(): Promise<void> {
    const generation = ++this.#generation;
    clearTimeout(this.#retryTimer);
    let delay = 100;
    let warned = false;
    while (!this.#closed && generation === this.#generation) {
      const nc = this.#nc;
      if (nc === undefined || nc.isClosed()) return;
      try {
        await this.#ensureStream(nc);
        if (generation !== this.#generation || this.#closed) return;
        const key = this.#connectionKey();
        if (key === undefined) return; // not connected now: the next reconnect activates again
        this.#roundKey = key;
        this.#sendIdx = 0;
        this.#counters.rounds++;
        this.#setReady(true, nc.getServer());
        this.#pump();
        return;
      } catch (err) {
        if (!warned) {
          warned = true;
          this.#log.warn(
            {
              stream: this.streamName,
              error: err instanceof Error ? err.message : String(err),
            },
            "cannot use the JetStream events stream yet; retrying",
          );
        }
        this.#setReady(
          false,
          `waiting for stream ${this.streamName}: ${err instanceof Error ? err.message : err}`,
        );
        await new Promise((r) => {
          this.#retryTimer = setTimeout(r, delay);
        });
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  async #ensureStream(nc: NatsConnection): Promise<void> {
    this.#jsm ??= await jetstreamManager(nc, { timeout: this.#o.ackTimeoutMs });
    const jsm = this.#jsm;
    const wildcard = eventsWildcard(this.#o.root);
    try {
      const info = await jsm.streams.info(this.streamName);
      if (!info.config.subjects?.includes(wildcard)) {
        this.#log.warn(
          {
            stream: this.streamName,
            subjects: info.config.subjects,
          },
          "events stream exists without the events subjects",
        );
      }
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    }
    try {
      await jsm.streams.add({
        name: this.streamName,
        subjects: [wildcard],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: nanos(this.#o.maxAgeMs),
        max_bytes: this.#o.maxBytes,
        duplicate_window: nanos(this.#o.duplicateWindowMs),
        num_replicas: this.#o.replicas,
      });
      this.#log.info({ stream: this.streamName, subjects: [wildcard] }, "created events stream");
    } catch (err) {
      // Another publisher created it first.
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
    }
  }

  /** Identity of the live connection, or undefined while (re)connecting. */
  #connectionKey(): string | undefined {
    const info = this.#nc?.info;
    if (info !== this.#lastInfo) {
      this.#lastInfo = info;
      this.#lastKey = info === undefined ? undefined : `${info.server_id}/${info.client_id}`;
    }
    return this.#lastKey;
  }

  #setReady(ready: boolean, detail: string): void {
    this.#ready = ready;
    if (this.#status.connected === ready && this.#status.detail === detail) return;
    const changed = this.#status.connected !== ready;
    this.#status = { connected: ready, detail };
    if (changed) for (const w of this.#statusWatches) w.push({ ...this.#status });
    if (ready) for (const done of [...this.#readyWaiters]) done();
  }

  #attach(
    nc: NatsConnection,
    s: { pattern: string; channel: Channel<BusMessage>; sub?: Subscription },
  ): void {
    try {
      s.sub = nc.subscribe(s.pattern, {
        callback: (err, msg) => {
          if (err === null)
            s.channel.push({ subject: msg.subject, data: msg.data, headers: headerRecord(msg.headers) });
        },
      });
    } catch (err) {
      this.#log.error({ pattern: s.pattern, error: String(err) }, "NATS subscribe failed");
      s.channel.end();
    }
  }

  // --- publishing -------------------------------------------------------------------------------

  #pump(): void {
    const nc = this.#nc;
    if (!this.#ready || nc === undefined) return;
    // A send on a connection other than the one this round started on could overtake the resend.
    if (this.#connectionKey() !== this.#roundKey) return;
    const max = this.#o.maxInFlight;
    const pending = this.#pending;
    while (this.#sendIdx < pending.length && this.#sendIdx < max) {
      const entry = pending.at(this.#sendIdx++) as Entry;
      if (!entry.done) this.#send(nc, entry);
    }
  }

  #send(nc: NatsConnection, entry: Entry): void {
    const h = natsHeaders();
    for (const key in entry.headers) h.set(key, entry.headers[key] as string);
    h.set("Nats-Msg-Id", entry.msgId);
    this.#counters.sent++;
    if (entry.sentAt !== 0) this.#counters.resent++;
    entry.sentAt = Date.now();
    try {
      nc.publish(entry.subject, entry.payload, { reply: this.#ackPrefix + entry.seq, headers: h });
    } catch (err) {
      // Bad subject, too large for max_payload: sending again will not help.
      this.#fail(entry, err);
    }
  }

  #onAck(msg: Msg): void {
    const seq = Number(msg.subject.slice(this.#ackPrefix.length));
    const entry = this.#pending.at(seq - this.#headSeq);
    if (entry === undefined || entry.seq !== seq || entry.done) return; // late ack of a resent message
    if (msg.headers?.hasError) {
      // 503 no responders: the stream is not (yet) there, e.g. a server restarted without its store.
      this.#retry(`publish to ${entry.subject} failed: ${msg.headers.code} ${msg.headers.description}`);
      return;
    }
    let body: AckBody;
    try {
      body = JSON.parse(decoder.decode(msg.data)) as AckBody;
    } catch {
      body = { error: { code: 500, description: "unreadable acknowledgement" } };
    }
    if (body.error !== undefined) {
      const code = body.error.code ?? 500;
      if (code === 503 || code >= 500) {
        this.#retry(`JetStream error ${code}: ${body.error.description}`);
      } else {
        this.#fail(entry, new Error(`JetStream rejected the event: ${code} ${body.error.description}`));
      }
      return;
    }
    entry.done = true;
    this.#failures = 0;
    this.#counters.acked++;
    if (body.duplicate === true) this.#counters.duplicates++;
    entry.resolve();
    this.#advance();
  }

  #fail(entry: Entry, cause: unknown): void {
    entry.done = true;
    const message = cause instanceof Error ? cause.message : String(cause);
    this.#log.error({ subject: entry.subject, msgId: entry.msgId, error: message }, "event not stored");
    entry.reject(new CatenaError(ErrorCode.Invalid, `event not stored: ${message}`, [], { cause }));
    this.#advance();
  }

  /** Drops settled entries from the head and refills the window. */
  #advance(): void {
    const pending = this.#pending;
    let head = pending.peek();
    while (head?.done) {
      pending.shift();
      this.#headSeq++;
      if (this.#sendIdx > 0) this.#sendIdx--;
      head = pending.peek();
    }
    if (this.#sendIdx < pending.length) this.#pump();
  }

  #checkAckTimeout(): void {
    if (!this.#ready || this.#sendIdx === 0) return;
    const head = this.#pending.peek();
    if (head !== undefined && !head.done && Date.now() - head.sentAt > this.#o.ackTimeoutMs) {
      this.#retry(`no acknowledgement within ${this.#o.ackTimeoutMs} ms`);
    }
  }

  /** Pauses sending, then (after a backoff) resends everything unacknowledged, in order. */
  #retry(reason: string): void {
    if (!this.#ready || this.#closed) return; // a round of resends is already coming
    this.#failures++;
    const delay = Math.min(50 * 2 ** Math.min(this.#failures, 10), 5_000);
    if (this.#failures === 1) this.#log.warn({ reason }, "event publish not acknowledged; resending");
    const generation = ++this.#generation;
    this.#setReady(false, `resending: ${reason}`);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      if (generation === this.#generation) void this.#activate();
    }, delay);
  }

  async #shutdown(reason: CatenaError): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#refusing = true;
    this.#generation++;
    clearInterval(this.#ackTimer);
    clearTimeout(this.#retryTimer);
    this.#ready = false;
    this.#status = { connected: false, detail: "closed" };
    for (const w of this.#statusWatches) {
      w.push({ ...this.#status });
      w.end();
    }
    for (const done of [...this.#readyWaiters]) done();
    for (const entry of this.#pending) if (!entry.done) entry.reject(reason);
    this.#pending.clear();
    for (const s of this.#subs) s.channel.end();
    this.#ackSub?.unsubscribe();
    await this.#nc?.close().catch(() => {});
  }
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  for (const key of h.keys()) out[key] = h.get(key);
  return out;
}
