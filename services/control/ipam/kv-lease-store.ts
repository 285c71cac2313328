// Leases in a JetStream KV bucket shared by several control servers (issue 9's HA): the LeaseStore
// operations map one to one onto KvCas (store/kv-cas.ts), whose create and delete are
// compare-and-swap on the key's revision, so the allocator's guarantees hold across replicas.
import type { KvCas } from "../store/kv-cas.js";
import { sharedBucketName } from "../store/kv-shared.js";
import type { LeaseEntry, LeaseStore } from "./lease-store.js";

/** `<ROOT>_IPAM`, next to `<ROOT>_STATE`: lease traffic stays off the state bucket's watch. */
export function ipamBucketName(root: string): string {
  return sharedBucketName(root, "IPAM");
}

export function kvLeaseStore<T>(cas: KvCas<T>): LeaseStore<T> {
  return {
    read: (key) => cas.read(key),
    create: (key, value) => cas.create(key, value),
    delete: (key, revision) => cas.delete(key, revision),
    async list(prefix) {
      const out: { key: string; entry: LeaseEntry<T> }[] = [];
      // `prefix` ends in a dot: `>` takes every key below it.
      for await (const key of await cas.kv.keys(`${prefix}>`)) {
        const entry = await cas.read(key);
        if (entry) out.push({ key, entry });
      }
      return out;
    },
  };
}
