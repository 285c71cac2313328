// Where leases live: a compare-and-swap key space. The allocator (allocator.ts) needs only these four
// operations, which the embedded file store (file-lease-store.ts) and a JetStream KV bucket through
// KvCas (store/kv-cas.ts; kv-lease-store.ts) both offer, so the same allocation code runs on one
// control server or on several sharing a bucket.
export interface LeaseEntry<T> {
  value: T;
  /** Changes on every write of the key; what `delete` must name. */
  revision: number;
}

export interface LeaseStore<T> {
  /** The key's value, or undefined when absent. */
  read(key: string): Promise<LeaseEntry<T> | undefined>;
  /** Writes only when the key is absent: the new revision, or undefined when it is taken. Durable on return. */
  create(key: string, value: T): Promise<number | undefined>;
  /** Deletes only when the key is still at `revision`: false when it moved. Durable on return. */
  delete(key: string, revision: number): Promise<boolean>;
  /** Every key under `prefix` (a `ipam.<network>.` style prefix, ending in a dot). */
  list(prefix: string): Promise<{ key: string; entry: LeaseEntry<T> }[]>;
}
