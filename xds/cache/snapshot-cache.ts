// Snapshots per node key, with debounced publication so a burst of changes becomes one push.
import { XDS_ERR, XdsError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import type { Node } from "../node.js";
import { Snapshot } from "./snapshot.js";

/** What the server needs from a cache (go-control-plane's ConfigWatcher). */
export interface ConfigWatcher {
  /** Nodes with the same key share one snapshot. */
  nodeKey(node: Node): string;
  snapshot(key: string): Snapshot | undefined;
  /** Calls onChange with each snapshot published for the key from now on; returns the cancel. */
  watch(key: string, onChange: (snapshot: Snapshot) => void): () => void;
}

/** Read side, for status pages and CSDS. */
export interface SnapshotReader {
  snapshot(key: string): Snapshot | undefined;
  keys(): string[];
}

export interface SnapshotCacheOptions {
  /** Node → key; default node.id. Give nodes with the same content one key to share a snapshot. */
  nodeKey: (node: Node) => string;
  /** Quiet time after the last setSnapshot before publishing; 0 publishes at once. */
  debounceMs: number;
  /** Upper bound on how long a steady stream of changes can hold publication back. */
  maxDelayMs: number;
  logger: Logger;
}

export function defaultSnapshotCacheOptions(): SnapshotCacheOptions {
  return { nodeKey: (node) => node.id, debounceMs: 50, maxDelayMs: 1000, logger: silentLogger };
}

function checkOptions(o: SnapshotCacheOptions): void {
  for (const field of ["debounceMs", "maxDelayMs"] as const) {
    if (!Number.isFinite(o[field]) || o[field] < 0) {
      throw new XdsError(XDS_ERR.invalidOption, `${field} must be a non-negative number, got ${o[field]}`);
    }
  }
}

export class SnapshotCache implements ConfigWatcher, SnapshotReader {
  readonly #opts: SnapshotCacheOptions;
  readonly #published = new Map<string, Snapshot>();
  readonly #pending = new Map<string, Snapshot>();
  readonly #watchers = new Map<string, Set<(snapshot: Snapshot) => void>>();
  #timer: NodeJS.Timeout | undefined;
  #firstPendingAt = 0;
  #closed = false;

  constructor(options: Partial<SnapshotCacheOptions> = {}) {
    this.#opts = { ...defaultSnapshotCacheOptions(), ...options };
    checkOptions(this.#opts);
  }

  nodeKey(node: Node): string {
    return this.#opts.nodeKey(node);
  }

  /** The published snapshot (a pending one is not visible until its debounce window ends). */
  snapshot(key: string): Snapshot | undefined {
    return this.#published.get(key);
  }

  /** The snapshot set last for the key, published or still in its debounce window: build the next one from this. */
  latestSnapshot(key: string): Snapshot | undefined {
    return this.#pending.get(key) ?? this.#published.get(key);
  }

  /** Derives the key's next snapshot from its latest (so changes within one window add up). */
  updateSnapshot(key: string, update: (current: Snapshot) => Snapshot): void {
    this.setSnapshot(key, update(this.latestSnapshot(key) ?? Snapshot.empty()));
  }

  keys(): string[] {
    return [...this.#published.keys()];
  }

  /** Replaces the key's snapshot; watchers see it after the debounce window (the last one set wins). */
  setSnapshot(key: string, snapshot: Snapshot): void {
    if (this.#closed) throw new XdsError(XDS_ERR.closed, "snapshot cache is closed");
    if (this.#opts.debounceMs === 0) {
      this.#publish(key, snapshot);
      return;
    }
    if (this.#pending.size === 0) this.#firstPendingAt = Date.now();
    this.#pending.set(key, snapshot);
    this.#schedule();
  }

  /**
   * Forgets the key's snapshot; connected streams keep what they were sent. To take a node's
   * config away, set an empty Snapshot instead.
   */
  deleteSnapshot(key: string): void {
    this.#pending.delete(key);
    this.#published.delete(key);
  }

  /** Publishes pending snapshots now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const [key, snapshot] of pending) this.#publish(key, snapshot);
  }

  hasPending(): boolean {
    return this.#pending.size > 0;
  }

  watch(key: string, onChange: (snapshot: Snapshot) => void): () => void {
    let set = this.#watchers.get(key);
    if (!set) {
      set = new Set();
      this.#watchers.set(key, set);
    }
    set.add(onChange);
    return () => {
      const s = this.#watchers.get(key);
      s?.delete(onChange);
      if (s?.size === 0) this.#watchers.delete(key);
    };
  }

  /** Drops pending changes and the timer; published snapshots stay readable. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    const untilMax = this.#firstPendingAt + this.#opts.maxDelayMs - Date.now();
    const delay = Math.max(0, Math.min(this.#opts.debounceMs, untilMax));
    this.#timer = setTimeout(() => this.flush(), delay);
  }

  #publish(key: string, snapshot: Snapshot): void {
    if (this.#published.get(key) === snapshot) return;
    this.#published.set(key, snapshot);
    const watchers = this.#watchers.get(key);
    if (!watchers) return;
    for (const w of [...watchers]) {
      try {
        w(snapshot);
      } catch (err) {
        // One broken stream must not keep the snapshot from the others.
        this.#opts.logger.error("xds snapshot watcher failed", { key, error: String(err) });
      }
    }
  }
}
