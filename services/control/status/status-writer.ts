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

export function createStatusWriter(store: Store): StatusWriter {
  const mutex = new Mutex();
  const update: StatusWriter["update"] = (kind, name, change) =>
    mutex.run(async () => {
      const object = await store.get(kind, name);
      if (!object) return undefined;
      try {
        return await store.setStatus(kind, name, change(object));
      } catch (err) {
        if (isCatenaError(err, ErrorCode.NotFound)) return undefined;
        throw err;
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
