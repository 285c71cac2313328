// The Store contract: the embedded file store and the JetStream KV store implement it.
import type { Kind, Labels, Resource, ResourceStatus, StoredResource } from "../model/resource.js";

export type StoreOp =
  /** Create or update. Spec, labels and annotations come from `object`; status is kept from the stored copy. */
  | { type: "put"; object: Resource; expectedVersion?: string }
  | { type: "delete"; kind: Kind; name: string; expectedVersion?: string };

export type OpAction = "created" | "updated" | "unchanged" | "deleted";

export interface OpResult {
  action: OpAction;
  /** The object after the op (for `deleted`, the last stored copy). */
  object: StoredResource;
}

export interface CommitResult {
  /** Store revision after the commit (unchanged when every op was `unchanged`). */
  revision: number;
  results: OpResult[];
}

export type ChangeType = "created" | "updated" | "deleted" | "status";

export interface Change {
  type: ChangeType;
  object: StoredResource;
  /** For updates and status changes: the copy before. */
  previous?: StoredResource;
  revision: number;
}

/**
 * `app=web,tier!=db,env,!legacy` style, already parsed. Every requirement must hold.
 * As in Kubernetes, `notEquals` also matches objects that lack the label.
 */
export interface LabelSelector {
  equals?: Labels;
  notEquals?: Labels;
  exists?: string[];
  notExists?: string[];
}

export interface StoreReader {
  /**
   * Reads see only durable commits. Returned objects are deeply frozen and shared (no copy per read,
   * which keeps reads cheap on the apply path): clone one to change it.
   */
  get(kind: Kind, name: string): Promise<StoredResource | undefined>;
  /** Sorted by kind, then name. */
  list(kind?: Kind, selector?: LabelSelector): Promise<StoredResource[]>;
  /** Revision of the last commit; 0 for an empty store. */
  revision(): number;
}

export interface WatchOptions {
  kinds?: Kind[];
  /** Replay the current state as `created` changes first (for consumers that start late). */
  initial?: boolean;
}

/**
 * An async iterator of changes; leaving the loop (or `close()`) unsubscribes. Implementations
 * in this folder (QueuedWatch) also offer `closed: Promise<Error | undefined>`; a store watch
 * that ends with an error (it fell behind, the store failed) makes the loop throw that error.
 */
export interface Watch<T> extends AsyncIterable<T> {
  close(): void;
}

export interface Store extends StoreReader {
  /**
   * Applies all ops atomically and durably (all or nothing): when the promise resolves the change
   * survives a crash. Throws CatenaError Conflict (stale expectedVersion) or NotFound (delete of a
   * missing object, or expectedVersion on a missing object) and then changes nothing.
   * Invalid: an op without kind or name, or two ops on the same object in one commit.
   */
  commit(ops: StoreOp[], options?: { dryRun?: boolean }): Promise<CommitResult>;
  /**
   * Replaces an object's status (server-written); bumps resourceVersion, not generation.
   * A status deep-equal to the stored one writes nothing and returns the stored copy.
   * With `expectedVersion`, a stale version is Conflict (compare-and-swap for read-modify-write
   * writers on several control servers).
   */
  setStatus(
    kind: Kind,
    name: string,
    status: ResourceStatus,
    options?: { expectedVersion?: string },
  ): Promise<StoredResource>;
  watch(options?: WatchOptions): Watch<Change>;
  close(): Promise<void>;
}
