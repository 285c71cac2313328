// A queued async iterator: the producer pushes without ever waiting, one consumer pulls with `for await`.
// Backs store watches now and is meant for any other watch-like stream later (nats.js QueuedIterator).
import { CatenaError, ErrorCode } from "../errors.js";
import type { Watch } from "./store.js";

export interface QueuedWatchOptions {
  /**
   * Items buffered for a consumer that does not keep up. Pushing beyond it fails the watch with
   * CatenaError Unavailable and frees the buffer: the producer is never slowed down, and the
   * consumer learns that it missed changes (and should watch again with `initial: true`)
   * instead of silently skipping some. Default: unbounded.
   */
  maxBuffered?: number;
  /** Called once when the watch stops, whichever side stops it: unsubscribe here. */
  onStop?: () => void;
}

export class QueuedWatch<T> implements Watch<T>, AsyncIterableIterator<T>, AsyncDisposable {
  readonly closed: Promise<Error | undefined>;
  readonly #maxBuffered: number;
  #onStop: (() => void) | undefined;
  #resolveClosed!: (err: Error | undefined) => void;
  // A queue as array + head index: shift() is O(n) on large backlogs.
  #items: T[] = [];
  #head = 0;
  #waiters: Array<{ resolve(r: IteratorResult<T>): void; reject(err: unknown): void }> = [];
  #stopped = false;
  #error: Error | undefined;
  #errorDelivered = false;

  constructor(options: QueuedWatchOptions = {}) {
    this.#maxBuffered = options.maxBuffered ?? Number.POSITIVE_INFINITY;
    this.#onStop = options.onStop;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Items waiting for the consumer. */
  get buffered(): number {
    return this.#items.length - this.#head;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Producer side. Never blocks; returns false when the item was not taken (watch stopped or overflowed). */
  push(value: T): boolean {
    if (this.#stopped) return false;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter.resolve({ value, done: false });
      return true;
    }
    if (this.buffered >= this.#maxBuffered) {
      this.fail(
        new CatenaError(
          ErrorCode.Unavailable,
          `watch fell behind: more than ${this.#maxBuffered} changes buffered; watch again`,
        ),
      );
      return false;
    }
    this.#items.push(value);
    return true;
  }

  /** Producer side, graceful: the consumer still receives what is buffered, then the loop ends. */
  end(): void {
    this.#stop(undefined, false);
  }

  /** Producer side, abort: drops the buffer; the consumer's loop throws `err`. */
  fail(err: Error): void {
    this.#stop(err, true);
  }

  /** Consumer side: unsubscribes now and drops whatever is buffered. Idempotent. */
  close(): void {
    this.#stop(undefined, true);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T; // let it be collected
      this.#head++;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#error && !this.#errorDelivered) {
      this.#errorDelivered = true;
      return Promise.reject(this.#error);
    }
    if (this.#stopped) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Called by `for await` on break, return or throw: leaving the loop unsubscribes. */
  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #stop(err: Error | undefined, dropBuffer: boolean): void {
    if (dropBuffer) {
      this.#items = [];
      this.#head = 0;
    }
    if (this.#stopped) return;
    this.#stopped = true;
    this.#error = err;
    // Waiters exist only while the buffer is empty.
    const waiters = this.#waiters.splice(0);
    for (const waiter of waiters) {
      if (err && !this.#errorDelivered) {
        this.#errorDelivered = true;
        waiter.reject(err);
      } else {
        waiter.resolve({ value: undefined, done: true });
      }
    }
    const onStop = this.#onStop;
    this.#onStop = undefined;
    onStop?.();
    this.#resolveClosed(err);
  }
}
