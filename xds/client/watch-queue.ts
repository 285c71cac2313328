// A watch's events as an async iterator. Events coalesce per resource name, so a slow consumer
// holds at most one pending event per resource instead of an unbounded backlog.
import type { FieldError } from "../validated.js";

export type WatchEvent<T> =
  | { type: "changed"; name: string; version: string; value: T }
  | { type: "does-not-exist"; name: string }
  /** The server sent a version the type rejected (and the client NACKed); the last accepted stays. */
  | { type: "error"; name: string; errors: FieldError[] };

export interface ResourceWatch<T> extends AsyncIterable<WatchEvent<T>> {
  /** Stops the watch; the iterator ends. Leaving a for-await loop does the same. */
  close(): void;
}

export class WatchQueue<T> implements ResourceWatch<T> {
  readonly #pending = new Map<string, WatchEvent<T>>();
  readonly #onClose: () => void;
  #wake: (() => void) | undefined;
  #closed = false;

  constructor(onClose: () => void) {
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(event: WatchEvent<T>): void {
    if (this.#closed) return;
    // Re-insert so the name moves to the back: events keep their arrival order.
    this.#pending.delete(event.name);
    this.#pending.set(event.name, event);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.clear();
    this.#onClose();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
    try {
      while (!this.#closed) {
        const first = this.#pending.entries().next();
        if (!first.done) {
          const [name, event] = first.value;
          this.#pending.delete(name);
          yield event;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      this.close();
    }
  }
}
