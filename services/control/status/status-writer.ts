// The one way to change an object's status: read-modify-write under one lock, so writers that own
// different conditions (the reconciler's Accepted/Ready, xDS's Programmed) never undo each other.
import { ErrorCode, isCatenaError } from "../errors.js";
import type { Kind, ResourceStatus, StoredResource } from "../model/resource.js";
import { Mutex } from "../mutex.js";
import type { Store } from "../store/store.js";
import { type ConditionUpdate, setCondition } from "./conditions.js";

export interface StatusWriter {
  /** Applies `change` to the current status; returns undefined when the object does not exist. */
  update(
    kind: Kind,
    name: string,
    change: (object: StoredResource) => ResourceStatus,
  ): Promise<StoredResource | undefined>;
  setConditions(kind: Kind, name: string, updates: ConditionUpdate[]): Promise<StoredResource | undefined>;
}

const MAX_ATTEMPTS = 20;

export function createStatusWriter(store: Store): StatusWriter {
  const mutex = new Mutex();
  const update: StatusWriter["update"] = (kind, name, change) =>
    mutex.run(async () => {
      // Compare-and-swap on the version read: a write in between (another control server's status,
      // a commit) is a Conflict, and the change is made again on what is stored then.
      for (let attempt = 1; ; attempt++) {
        const object = await store.get(kind, name);
        if (!object) return undefined;
        try {
          return await store.setStatus(kind, name, change(object), {
            expectedVersion: object.metadata.resourceVersion,
          });
        } catch (err) {
          if (isCatenaError(err, ErrorCode.NotFound)) return undefined;
          if (!isCatenaError(err, ErrorCode.Conflict) || attempt >= MAX_ATTEMPTS) throw err;
          // The newer copy may not be readable yet (a commit still being made durable).
          await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt)));
        }
      }
    });
  return {
    update,
    setConditions: (kind, name, updates) =>
      update(kind, name, (object) => {
        const now = new Date();
        let conditions = object.status?.conditions ?? [];
        for (const u of updates) conditions = setCondition(conditions, u, now);
        return { ...object.status, conditions };
      }),
  };
}
