// The KV store's view of its bucket: every entry of the bucket's stream, in order, exactly once,
// whatever happens to the NATS node the consumer lives on. An ordered consumer does the work;
// around it, what nats.js was seen to miss when a NATS node was killed (a consumer gone silent
// for good: no messages, no heartbeats, no reset; a message delivered to a pull that died with its
// connection, the last before a quiet spell, so no later message shows the gap):
//   - heartbeats name the last sequence delivered: past what was applied, twice in a row, restart;
//   - once a second, the stream's last sequence: ahead of what was applied and no progress since
//     the previous look, restart;
//   - a restart drops the old consumer, reads the missed entries one by one (that works as soon as
//     the stream has a leader, while creating a consumer was seen to time out for 10 to 20 s after
//     a node died), then starts a new consumer after them.
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  jetstream,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { CatenaError, ErrorCode } from "../errors.js";
import type { StoreLogger } from "./embedded-store.js";

export interface BucketEntry {
  /** The key (the subject without `$KV.<bucket>.`). */
  key: string;
  /** The stream sequence: the KV revision. */
  revision: number;
  /** PUT, DEL or PURGE. */
  op: string;
  data: Uint8Array;
  /** When the NATS server stored it (ms since the epoch, the server's clock). */
  time: number;
}

export interface BucketWatchOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  bucket: string;
  logger: StoreLogger;
  /** The last revision applied: a restart goes on from the one after. */
  applied(): number;
  /**
   * Each entry past `applied()`, in revision order. `pending`: what the consumer still holds for
   * this watch, when known (0 ends the initial load of the last entry per key).
   */
  onEntry(entry: BucketEntry, pending: number | undefined): void;
}

const LIVENESS_INTERVAL_MS = 1000;
/** Entries read one by one on a restart; further behind, the new consumer catches up itself. */
const CATCH_UP_LIMIT = 10_000;
/** A new consumer that takes longer than this is given up and tried again. */
const CONSUMER_START_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class BucketWatch {
  readonly #o: BucketWatchOptions;
  readonly #stream: string;
  readonly #prefix: string;
  #messages: ConsumerMessages | undefined;
  #consuming: Promise<void> | undefined;
  /** Bumped when the consumer is replaced: an older consumer's loop stops. */
  #generation = 0;
  #restarting = false;
  #liveness: NodeJS.Timeout | undefined;
  #probing = false;
  /** applied() when the liveness check last found the stream ahead. */
  #stalledAt: number | undefined;
  #closed = false;

  constructor(options: BucketWatchOptions) {
    this.#o = options;
    this.#stream = `KV_${options.bucket}`;
    this.#prefix = `$KV.${options.bucket}.`;
  }

  /** The last entry of every key, then everything after; retries until `deadline`. */
  async start(deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#startConsumer(undefined);
        break;
      } catch (err) {
        // Right after a NATS node died, creating a consumer can fail for a while: keep trying.
        if (Date.now() > deadline) throw err;
        this.#o.logger.warn("KV store: starting the watch failed, retrying", {
          bucket: this.#o.bucket,
          error: String(err),
        });
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
    this.#liveness = setInterval(() => void this.#checkLiveness(), LIVENESS_INTERVAL_MS);
    this.#liveness.unref();
  }

  /** Replaces the consumer (the store calls it when a write it knows of never came through). */
  async restart(reason: string): Promise<void> {
    if (this.#restarting || this.#closed) return;
    this.#restarting = true;
    this.#o.logger.warn("KV store: restarting the bucket's watch", {
      bucket: this.#o.bucket,
      from: this.#o.applied() + 1,
      reason,
    });
    const old = this.#messages;
    this.#generation++; // the old loop ignores whatever it still gets
    // Not awaited: with its server gone, closing may wait for an answer that never comes.
    void old?.close().catch(() => undefined);
    await this.#catchUp().catch((err: unknown) =>
      this.#o.logger.warn("KV store: reading missed entries failed", { error: String(err) }),
    );
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#startConsumer(this.#o.applied() + 1);
        break;
      } catch (err) {
        this.#o.logger.warn("KV store: restarting the watch failed, retrying", { error: String(err) });
        await this.#catchUp().catch(() => undefined);
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
    this.#restarting = false;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#liveness);
    this.#generation++;
    try {
      await this.#messages?.close();
    } catch (err) {
      this.#o.logger.warn("KV store: stopping the watch failed", { error: String(err) });
    }
    await this.#consuming;
  }

  async #startConsumer(from: number | undefined): Promise<void> {
    const generation = ++this.#generation;
    const starting = (async () => {
      const consumer = await jetstream(this.#o.nc).consumers.get(this.#stream, {
        filter_subjects: `${this.#prefix}>`,
        ...(from === undefined
          ? { deliver_policy: DeliverPolicy.LastPerSubject }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }),
      });
      // Short pulls: missed heartbeats (a consumer lost with a NATS node) show within seconds.
      return consumer.consume({ expires: 2000 });
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new CatenaError(ErrorCode.Unavailable, "KV store: timed out starting the bucket's watch")),
        CONSUMER_START_MS,
      );
    });
    let messages: ConsumerMessages;
    try {
      messages = await Promise.race([starting, timeout]);
    } catch (err) {
      // It may still come up later: make sure it then goes away again.
      if (generation === this.#generation) this.#generation++;
      void starting.then((late) => late.close()).catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (generation !== this.#generation || this.#closed) {
      void messages.close().catch(() => undefined);
      return;
    }
    this.#messages = messages;
    let behindAt: number | undefined;
    void (async () => {
      for await (const s of messages.status()) {
        if (generation !== this.#generation) break;
        if (s.type !== "heartbeat") continue;
        const applied = this.#o.applied();
        if (s.lastStreamSequence <= applied) behindAt = undefined;
        else if (behindAt === applied) void this.restart("a delivered entry never arrived");
        else behindAt = applied;
      }
    })().catch(() => undefined);
    this.#consuming = (async () => {
      let reason = "the watch ended";
      try {
        for await (const m of messages) {
          if (generation !== this.#generation) return;
          this.#deliver(m);
        }
      } catch (err) {
        reason = `the watch failed: ${String(err)}`;
      }
      if (!this.#closed && generation === this.#generation) void this.restart(reason);
    })();
  }

  #deliver(m: JsMsg): void {
    if (m.seq <= this.#o.applied()) return;
    const entry = {
      key: m.subject.slice(this.#prefix.length),
      revision: m.seq,
      op: m.headers?.get("KV-Operation") || "PUT",
      data: m.data,
      time: Math.floor(m.info.timestampNanos / 1e6),
    };
    this.#o.onEntry(entry, m.info.pending);
  }

  async #checkLiveness(): Promise<void> {
    if (this.#probing || this.#restarting || this.#closed) return;
    this.#probing = true;
    try {
      const last = (await this.#o.jsm.streams.info(this.#stream)).state.last_seq;
      const applied = this.#o.applied();
      if (last <= applied) this.#stalledAt = undefined;
      else if (this.#stalledAt === applied) void this.restart(`stalled at ${applied} of ${last}`);
      else this.#stalledAt = applied;
    } catch {
      // NATS unreachable: nothing to compare with; the next look will tell.
    } finally {
      this.#probing = false;
    }
  }

  /** Delivers the entries past applied(), read by sequence (superseded ones are simply gone). */
  async #catchUp(): Promise<void> {
    const last = (await this.#o.jsm.streams.info(this.#stream)).state.last_seq;
    if (last - this.#o.applied() > CATCH_UP_LIMIT) return;
    for (let seq = this.#o.applied() + 1; seq <= last && !this.#closed; seq++) {
      const sm = await this.#o.jsm.streams.getMessage(this.#stream, { seq });
      if (!sm || seq <= this.#o.applied()) continue;
      const entry = {
        key: sm.subject.slice(this.#prefix.length),
        revision: seq,
        op: sm.header?.get("KV-Operation") || "PUT",
        data: sm.data,
        time: sm.time.getTime(),
      };
      this.#o.onEntry(entry, undefined);
    }
  }
}
