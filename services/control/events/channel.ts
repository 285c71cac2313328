// A bounded single-consumer async queue: what every subscription, watch and status stream here is.
// A slow consumer never blocks the producer: when full, the oldest item is dropped and counted.
import type { Watch } from "../store/store.js";
import { Deque } from "./deque.js";

export interface BoundedWatch<T> extends Watch<T> {
  /** Items dropped because the consumer fell behind. */
  readonly dropped: number;
  /** Closed by the consumer, or ended by the producer. */
  readonly closed: boolean;
}

export class Channel<T> implements BoundedWatch<T> {
  readonly #capacity: number;
  readonly #items = new Deque<T>();
  #waiter: ((result: IteratorResult<T>) => void) | undefined;
  #ended = false;
  #dropped = 0;
  #onClose: (() => void) | undefined;

  constructor(capacity: number, onClose?: () => void) {
    this.#capacity = Math.max(1, capacity);
    this.#onClose = onClose;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#ended;
  }

  /** Producer side: false when the channel is closed. */
  push(value: T): boolean {
    if (this.#ended) return false;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter({ value, done: false });
      return true;
    }
    if (this.#items.length >= this.#capacity) {
      this.#items.shift();
      this.#dropped++;
    }
    this.#items.push(value);
    return true;
  }

  /** Producer side: no more items; the consumer still receives what is queued. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#finish();
  }

  /** Consumer side: stop now and discard what is queued. Idempotent. */
  close(): void {
    this.#items.clear();
    if (!this.#ended) this.#ended = true;
    this.#finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift() as T, done: false });
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise<IteratorResult<T>>((resolve) => {
          this.#waiter = resolve;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #finish(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }
}
