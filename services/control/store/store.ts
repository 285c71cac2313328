// The Store contract: the embedded file store and (later) the JetStream KV store implement it.
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

/** `app=web,tier!=db,env` style, already parsed. */
export interface LabelSelector {
  equals?: Labels;
  notEquals?: Labels;
  exists?: string[];
}

export interface StoreReader {
  get(kind: Kind, name: string): Promise<StoredResource | undefined>;
  list(kind?: Kind, selector?: LabelSelector): Promise<StoredResource[]>;
  /** Revision of the last commit; 0 for an empty store. */
  revision(): number;
}

export interface WatchOptions {
  kinds?: Kind[];
  /** Replay the current state as `created` changes first (for consumers that start late). */
  initial?: boolean;
}

/** An async iterator of changes; leaving the loop (or `close()`) unsubscribes. */
export interface Watch<T> extends AsyncIterable<T> {
  close(): void;
}

export interface Store extends StoreReader {
  /**
   * Applies all ops atomically and durably (all or nothing): when the promise resolves the change
   * survives a crash. Throws CatenaError Conflict (stale expectedVersion) or NotFound (delete of a
   * missing object, or expectedVersion on a missing object) and then changes nothing.
   */
  commit(ops: StoreOp[], options?: { dryRun?: boolean }): Promise<CommitResult>;
  /** Replaces an object's status (server-written); does not bump generation. */
  setStatus(kind: Kind, name: string, status: ResourceStatus): Promise<StoredResource>;
  watch(options?: WatchOptions): Watch<Change>;
  close(): Promise<void>;
}
