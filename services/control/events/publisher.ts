// The event publisher: what the control plane emits into. `emit()` only enqueues; one ordered sender
// drains the queue through the bus. While the bus is down, events wait in a bounded buffer (the oldest
// is dropped when it is full) and are sent in order when it returns. Local subscribers (the HTTP SSE
// endpoint) and `recent()` see each event at emit time, whether or not NATS is reachable.
//
// The publisher does not own the bus: whoever created it (connectEventBus) closes it.
import { CatenaError, ErrorCode } from "../errors.js";
import type { EventBus } from "./bus.js";
import { type BoundedWatch, Channel } from "./channel.js";
import { CLOUDEVENTS_CONTENT_TYPE, toCloudEvent } from "./cloudevent.js";
import { Deque } from "./deque.js";
import { type EventsLogger, silentLogger } from "./logger.js";
import { checkRoot, eventSubject, subjectToken } from "./subject.js";
import type { CatenaEvent, CloudEvent, EventSink } from "./types.js";

export interface EventPublisherOptions {
  bus: EventBus;
  /** Subject root: events go to `<root>.events.<kind>.<name>.<verb>`. */
  root: string;
  /** The CloudEvents `source` of everything this publisher emits (`catena/control`). */
  source: string;
  /** Events emitted and not yet handed to the bus; when full, the oldest is dropped. */
  bufferSize: number;
  /** Events kept for `recent()`. */
  recentSize: number;
  /** Events handed to the bus and not yet stored, at most (the send window). */
  maxInFlight: number;
  /** Queue of each local subscriber before its oldest events are dropped. */
  subscriberQueueSize: number;
  logger: EventsLogger;
  /** Time source of the CloudEvents `time` attribute. */
  now: () => Date;
}

export type EventPublisherInit = Partial<EventPublisherOptions> &
  Pick<EventPublisherOptions, "bus" | "root" | "source">;

/** Defaults in one place; throws CatenaError Invalid naming the bad field. */
export function eventPublisherOptions(init: EventPublisherInit): EventPublisherOptions {
  const o: EventPublisherOptions = {
    bufferSize: 10_000,
    recentSize: 1_000,
    maxInFlight: 1_024,
    subscriberQueueSize: 1_000,
    logger: silentLogger,
    now: () => new Date(),
    ...init,
  };
  checkRoot(o.root);
  if (o.source === "") {
    throw new CatenaError(ErrorCode.Invalid, "event source must not be empty", [
      { path: "source", message: "required (a URI reference, e.g. catena/control)" },
    ]);
  }
  for (const field of ["bufferSize", "maxInFlight", "subscriberQueueSize"] as const) {
    if (!Number.isInteger(o[field]) || o[field] < 1) {
      throw new CatenaError(ErrorCode.Invalid, `invalid event publisher option ${field}: ${o[field]}`, [
        { path: field, message: "must be a positive integer" },
      ]);
    }
  }
  if (!Number.isInteger(o.recentSize) || o.recentSize < 0) {
    throw new CatenaError(ErrorCode.Invalid, `invalid event publisher option recentSize: ${o.recentSize}`, [
      { path: "recentSize", message: "must be a non-negative integer" },
    ]);
  }
  return o;
}

/**
 * Which events a local subscriber or `recent()` wants; all given fields must match.
 * - `type`: the CloudEvents type, exactly (`dev.catena.servicechain.created`), or, ending in `*`, every
 *   type that starts with what precedes it (`dev.catena.servicechain.*`, `dev.catena.*`).
 * - `kind`: the kind, case-insensitive (`ServiceChain` = `servicechain`).
 * - `name`: the resource or instance name (the CloudEvents `subject`), exactly.
 */
export interface EventFilter {
  type?: string;
  kind?: string;
  name?: string;
}

export interface PublisherStats {
  /** Events accepted by `emit()`. */
  emitted: number;
  /** Events stored by the bus. */
  published: number;
  /** Events dropped from a full buffer. */
  dropped: number;
  /** Events that could not be encoded or that the server refused for good, and emits after close. */
  failed: number;
  /** Events waiting: in the buffer or sent and not yet stored. */
  buffered: number;
  connected: boolean;
}

export interface EventPublisher extends EventSink {
  /** Live events matching `filter`; a consumer that falls behind loses the oldest (see `dropped`). */
  subscribe(filter?: EventFilter): BoundedWatch<CloudEvent>;
  /** The last `limit` (default all kept) of the last `recentSize` events that match, oldest first. */
  recent(filter?: EventFilter, limit?: number): CloudEvent[];
  stats(): PublisherStats;
  /**
   * Resolves when every event emitted so far is stored, dropped or failed. Rejects CATENA_UNAVAILABLE
   * on timeout, CATENA_CLOSED when the publisher stops first.
   */
  flush(timeoutMs?: number): Promise<void>;
  /** Refuses further emits (counted as failed), flushes (bounded by timeoutMs), then stops. Idempotent. */
  close(timeoutMs?: number): Promise<void>;
  /** Stops now; events not yet stored are abandoned. Idempotent. */
  destroy(err?: Error): Promise<void>;
}

export function createEventPublisher(init: EventPublisherInit): EventPublisher {
  return new Publisher(eventPublisherOptions(init));
}

interface Queued {
  seq: number;
  subject: string;
  payload: Uint8Array;
  id: string;
  settled: boolean;
}

interface Kept {
  event: CloudEvent;
  /** The kind as a subject token, for filters. */
  kind: string;
}

type Match = (kept: Kept) => boolean;

interface FlushWaiter {
  seq: number;
  resolve: () => void;
  fail: (err: Error) => void;
}

const HEADERS: Record<string, string> = { "content-type": CLOUDEVENTS_CONTENT_TYPE };

class Publisher implements EventPublisher {
  readonly #o: EventPublisherOptions;
  readonly #bus: EventBus;
  readonly #log: EventsLogger;
  readonly #queue: Deque<Queued>;
  readonly #inFlight: Deque<Queued>;
  readonly #recent = new Deque<Kept>();
  readonly #subscribers = new Set<{ match: Match; channel: Channel<CloudEvent> }>();
  readonly #flushWaiters = new Deque<FlushWaiter>();
  readonly #statusWatch: BoundedWatch<{ connected: boolean; detail: string }>;
  #connected: boolean;
  #pumpScheduled = false;
  #emitted = 0;
  #published = 0;
  #dropped = 0;
  #failed = 0;
  /** Drops in the current overflow; logged when it starts and when it ends, not per event. */
  #burstDropped = 0;
  #failLogged = false;
  /** Set by close() and destroy(): later emits are refused. */
  #refusing = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(o: EventPublisherOptions) {
    this.#o = o;
    this.#bus = o.bus;
    this.#log = o.logger;
    this.#queue = new Deque<Queued>(Math.min(o.bufferSize, 1024));
    this.#inFlight = new Deque<Queued>(Math.min(o.maxInFlight, 1024));
    this.#connected = o.bus.status().connected;
    this.#statusWatch = o.bus.statusChanges();
    void this.#followStatus();
  }

  emit(event: CatenaEvent): void {
    if (this.#refusing) {
      this.#failed++;
      this.#logFailure(
        { kind: event?.kind, name: event?.name, verb: event?.verb },
        "event emitted after close",
      );
      return;
    }
    let ce: CloudEvent;
    let payload: Uint8Array;
    let subject: string;
    let kind: string;
    try {
      ce = toCloudEvent(event, this.#o.source, this.#o.now());
      // Encoded now: the event is what it was at emit time, and a bad payload is found here, not later.
      payload = Buffer.from(JSON.stringify(ce));
      subject = eventSubject(this.#o.root, event.kind, event.name, event.verb);
      kind = subjectToken(event.kind.toLowerCase());
    } catch (err) {
      this.#failed++;
      this.#logFailure(
        { kind: event?.kind, name: event?.name, verb: event?.verb, error: String(err) },
        "event cannot be encoded",
      );
      return;
    }
    const seq = ++this.#emitted;
    if (this.#queue.length >= this.#o.bufferSize) this.#dropOldest();
    this.#queue.push({ seq, subject, payload, id: ce.id, settled: false });
    this.#fanOut({ event: ce, kind });
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true;
      // After the caller's synchronous burst: sends go out in batches, and emit stays cheap.
      queueMicrotask(() => this.#pump());
    }
  }

  subscribe(filter: EventFilter = {}): BoundedWatch<CloudEvent> {
    const entry = {
      match: compileFilter(filter),
      channel: new Channel<CloudEvent>(this.#o.subscriberQueueSize, () => this.#subscribers.delete(entry)),
    };
    if (this.#closed) entry.channel.end();
    else this.#subscribers.add(entry);
    return entry.channel;
  }

  recent(filter: EventFilter = {}, limit = Number.POSITIVE_INFINITY): CloudEvent[] {
    const match = compileFilter(filter);
    const out: CloudEvent[] = [];
    for (let i = this.#recent.length - 1; i >= 0 && out.length < limit; i--) {
      const kept = this.#recent.at(i) as Kept;
      if (match(kept)) out.push(kept.event);
    }
    return out.reverse();
  }

  stats(): PublisherStats {
    return {
      emitted: this.#emitted,
      published: this.#published,
      dropped: this.#dropped,
      failed: this.#failed,
      buffered: this.#queue.length + this.#inFlight.length,
      connected: this.#connected,
    };
  }

  flush(timeoutMs = 5_000): Promise<void> {
    const seq = this.#emitted;
    if (this.#lowestUnsettled() > seq) return Promise.resolve();
    if (this.#closed) return Promise.reject(new CatenaError(ErrorCode.Closed, "event publisher is closed"));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter.resolve = () => {};
        waiter.fail = () => {};
        const waiting = this.#queue.length + this.#inFlight.length;
        reject(
          new CatenaError(
            ErrorCode.Unavailable,
            `events not stored after ${timeoutMs} ms: ${waiting} waiting (${this.#bus.status().detail})`,
          ),
        );
      }, timeoutMs);
      const waiter: FlushWaiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#flushWaiters.push(waiter);
    });
  }

  close(timeoutMs = 5_000): Promise<void> {
    this.#refusing = true;
    this.#closing ??= (async () => {
      try {
        await this.flush(timeoutMs);
      } catch (err) {
        this.#log.warn(
          { error: err instanceof Error ? err.message : String(err), ...this.stats() },
          "closing the event publisher with events not stored",
        );
      }
      this.#stop();
    })();
    return this.#closing;
  }

  destroy(_err?: Error): Promise<void> {
    this.#refusing = true;
    this.#stop();
    return Promise.resolve();
  }

  // --- sending ----------------------------------------------------------------------------------

  #pump(): void {
    this.#pumpScheduled = false;
    if (!this.#connected || this.#closed) return;
    const queue = this.#queue;
    const inFlight = this.#inFlight;
    const max = this.#o.maxInFlight;
    while (queue.length > 0 && inFlight.length < max) {
      const q = queue.shift() as Queued;
      inFlight.push(q);
      this.#bus.publish(q.subject, q.payload, HEADERS, q.id).then(
        () => this.#stored(q),
        (err: unknown) => this.#notStored(q, err),
      );
    }
    if (this.#burstDropped > 0 && queue.length <= this.#o.bufferSize / 2) {
      this.#log.warn(
        { dropped: this.#burstDropped, totalDropped: this.#dropped },
        "event buffer has room again; oldest events were dropped",
      );
      this.#burstDropped = 0;
    }
  }

  #stored(q: Queued): void {
    q.settled = true;
    this.#published++;
    this.#settle();
  }

  #notStored(q: Queued, err: unknown): void {
    q.settled = true;
    this.#failed++;
    const closed =
      typeof err === "object" && err !== null && (err as { code?: unknown }).code === ErrorCode.Closed;
    if (!closed) this.#logFailure({ subject: q.subject, id: q.id, error: String(err) }, "event not stored");
    this.#settle();
  }

  #settle(): void {
    const inFlight = this.#inFlight;
    while (inFlight.peek()?.settled) inFlight.shift();
    if (this.#queue.length > 0 && !this.#pumpScheduled) this.#pump();
    this.#wakeFlushWaiters();
  }

  #dropOldest(): void {
    const old = this.#queue.shift();
    if (old === undefined) return;
    old.settled = true;
    this.#dropped++;
    if (this.#burstDropped++ === 0) {
      this.#log.warn(
        { bufferSize: this.#o.bufferSize, connected: this.#connected, bus: this.#bus.status().detail },
        "event buffer full; dropping the oldest events",
      );
    }
    this.#wakeFlushWaiters();
  }

  #lowestUnsettled(): number {
    return this.#inFlight.peek()?.seq ?? this.#queue.peek()?.seq ?? this.#emitted + 1;
  }

  #wakeFlushWaiters(): void {
    const waiters = this.#flushWaiters;
    if (waiters.length === 0) return;
    const lowest = this.#lowestUnsettled();
    while (waiters.length > 0 && (waiters.peek() as FlushWaiter).seq < lowest)
      (waiters.shift() as FlushWaiter).resolve();
  }

  async #followStatus(): Promise<void> {
    for await (const s of this.#statusWatch) {
      if (s.connected === this.#connected) continue;
      this.#connected = s.connected;
      if (s.connected) this.#pump();
    }
  }

  // --- local fan-out ----------------------------------------------------------------------------

  #fanOut(kept: Kept): void {
    if (this.#o.recentSize > 0) {
      if (this.#recent.length >= this.#o.recentSize) this.#recent.shift();
      this.#recent.push(kept);
    }
    for (const s of this.#subscribers) if (s.match(kept)) s.channel.push(kept.event);
  }

  #logFailure(fields: Record<string, unknown>, msg: string): void {
    // Once per publisher at error level, then at debug: a broken emitter must not flood the log.
    if (this.#failLogged) {
      this.#log.debug(fields, msg);
      return;
    }
    this.#failLogged = true;
    this.#log.error(fields, `${msg} (further failures are logged at debug level)`);
  }

  #stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#statusWatch.close();
    for (const s of this.#subscribers) s.channel.end();
    this.#subscribers.clear();
    // Whatever is still queued is abandoned; flush waiters learn it rather than hang.
    this.#queue.clear();
    const closed = new CatenaError(ErrorCode.Closed, "event publisher closed before the events were stored");
    for (const w of this.#flushWaiters) w.fail(closed);
    this.#flushWaiters.clear();
  }
}

function compileFilter(filter: EventFilter): Match {
  const checks: Match[] = [];
  if (filter.type !== undefined && filter.type !== "") {
    const type = filter.type;
    if (type.endsWith("*")) {
      const prefix = type.slice(0, -1);
      checks.push((k) => k.event.type.startsWith(prefix));
    } else {
      checks.push((k) => k.event.type === type);
    }
  }
  if (filter.kind !== undefined && filter.kind !== "") {
    const kind = subjectToken(filter.kind.toLowerCase());
    checks.push((k) => k.kind === kind);
  }
  if (filter.name !== undefined && filter.name !== "") {
    const name = filter.name;
    checks.push((k) => k.event.subject === name);
  }
  if (checks.length === 0) return () => true;
  return (k) => checks.every((check) => check(k));
}
