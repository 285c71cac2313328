// Events from a function instance, as CloudEvents 1.0 in structured JSON mode on NATS subjects
// `<root>.events.<kind>.<name>.<verb>` (DESIGN.md "Contracts: Events"). The one module of functions/
// that imports @nats-io/*. Publishing never blocks the caller and never waits for the network: while
// NATS is unreachable events are dropped and counted (core publish; the control server's JetStream
// stream captures the subjects). Events are per decision or per config change, never per packet.
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import type { Logger } from "../../xds/logger.js";
import { type Clock, monotonicClock } from "./clock.js";

export const CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json";

export interface HostEvent {
  /** The function type (firewall, qos...) or a component. */
  kind: string;
  /** The instance (node id). */
  name: string;
  /** Past tense: denied, throttled, applied... */
  verb: string;
  data?: unknown;
}

/** Where events go; emit never throws and never waits. */
export interface EventSink {
  emit(event: HostEvent): void;
  /** Flushes what was published (bounded) and disconnects. Idempotent. */
  close(): Promise<void>;
}

export interface EventCounters {
  published: number;
  /** Dropped because NATS was not connected (or the publish failed). */
  dropped: number;
}

// NATS treats `.` as the separator, `*` and `>` as wildcards, whitespace ends a subject.
const UNSAFE_TOKEN = /[.*>\s]/g;

export function subjectToken(value: string): string {
  return value === "" ? "_" : value.replace(UNSAFE_TOKEN, "_");
}

export function eventSubject(root: string, kind: string, name: string, verb: string): string {
  return `${root}.events.${subjectToken(kind.toLowerCase())}.${subjectToken(name)}.${subjectToken(verb.toLowerCase())}`;
}

export function cloudEvent(event: HostEvent, source: string, now = new Date()): Record<string, unknown> {
  const ce: Record<string, unknown> = {
    specversion: "1.0",
    id: randomUUID(),
    source,
    type: `dev.catena.${subjectToken(event.kind.toLowerCase())}.${subjectToken(event.verb.toLowerCase())}`,
    subject: event.name,
    time: now.toISOString(),
    datacontenttype: "application/json",
  };
  if (event.data !== undefined) ce.data = event.data;
  return ce;
}

export interface NatsEventSinkOptions {
  url: string;
  /** Subject root, `catena` by default (CATENA_NATS_PREFIX). */
  root: string;
  /** CloudEvents `source`, e.g. `catena/function/<node id>`. */
  source: string;
  logger: Logger;
  /** Connection name shown by NATS monitoring. */
  name?: string;
}

/** Connects in the background (reconnecting forever); events emitted while not connected are dropped. */
export class NatsEventSink implements EventSink {
  readonly counters: EventCounters = { published: 0, dropped: 0 };
  readonly #o: NatsEventSinkOptions;
  readonly #encoder = new TextEncoder();
  #nc: NatsConnection | undefined;
  #up = false;
  #closed = false;

  constructor(options: NatsEventSinkOptions) {
    this.#o = options;
    void this.#connect();
  }

  get connected(): boolean {
    return this.#up;
  }

  emit(event: HostEvent): void {
    const nc = this.#nc;
    if (!nc || !this.#up || this.#closed) {
      this.counters.dropped++;
      return;
    }
    try {
      const h = natsHeaders();
      h.set("content-type", CLOUDEVENTS_CONTENT_TYPE);
      const payload = this.#encoder.encode(JSON.stringify(cloudEvent(event, this.#o.source)));
      nc.publish(eventSubject(this.#o.root, event.kind, event.name, event.verb), payload, { headers: h });
      this.counters.published++;
    } catch {
      this.counters.dropped++;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const nc = this.#nc;
    if (nc) {
      // Flush what was published, but never hang a shutdown on an unreachable server.
      await Promise.race([nc.drain().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
      await nc.close().catch(() => {});
    }
  }

  async #connect(): Promise<void> {
    try {
      const nc = await connect({
        servers: this.#o.url,
        name: this.#o.name ?? "catena-function",
        reconnect: true,
        maxReconnectAttempts: -1,
        waitOnFirstConnect: true,
        reconnectTimeWait: 1000,
      });
      if (this.#closed) {
        await nc.close();
        return;
      }
      this.#nc = nc;
      this.#up = true;
      void this.#watch(nc);
    } catch (err) {
      this.#o.logger.warn("events: NATS connect failed; events are dropped", { error: String(err) });
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnecting") this.#up = false;
      else if (s.type === "reconnect") this.#up = true;
    }
    this.#up = false;
  }
}

/** Collects events in memory (tests, and hosts run without a bus). */
export class MemoryEventSink implements EventSink {
  readonly events: HostEvent[] = [];
  emit(event: HostEvent): void {
    this.events.push(event);
  }
  async close(): Promise<void> {}
}

/**
 * Lets through at most `perSecond` events in each one-second window and counts the ones it held back,
 * so an attack does not become an event storm. admit() allocates nothing; the caller builds the event
 * only when it returns true, and reports takeSuppressed() with it.
 */
export class EventRateLimiter {
  readonly #perSecond: number;
  readonly #clock: Clock;
  #windowStart = Number.NEGATIVE_INFINITY;
  #inWindow = 0;
  #suppressed = 0;

  constructor(options: { perSecond: number; clock?: Clock }) {
    this.#perSecond = Math.max(1, Math.floor(options.perSecond));
    this.#clock = options.clock ?? monotonicClock;
  }

  admit(): boolean {
    const now = this.#clock();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow < this.#perSecond) {
      this.#inWindow++;
      return true;
    }
    this.#suppressed++;
    return false;
  }

  /** Events held back since the last call. */
  takeSuppressed(): number {
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }
}
