// Writes each object's status after a spec change: Accepted (it passed validation and is stored)
// and Ready. Kinds with nothing to run are ready once accepted; ServiceFunction and ServiceChain
// wait for their function instances, whose state the compiler reports later.
import type { Logger } from "pino";
import type { Kind, ResourceStatus, StoredResource } from "../model/resource.js";
import type { Store } from "../store/store.js";
import { type ConditionUpdate, setCondition } from "./conditions.js";
import type { StatusWriter } from "./status-writer.js";

const WAITS_FOR_INSTANCES: ReadonlySet<Kind> = new Set<Kind>(["ServiceFunction", "ServiceChain"]);

export function initialReady(object: StoredResource): ConditionUpdate {
  if (WAITS_FOR_INSTANCES.has(object.kind)) {
    return {
      type: "Ready",
      status: "Unknown",
      reason: "AwaitingInstances",
      message: "no function instance has reported this generation yet",
    };
  }
  return { type: "Ready", status: "True", reason: "Accepted", message: "accepted and stored" };
}

export function acceptedStatus(object: StoredResource, now: Date): ResourceStatus {
  const current = object.status?.conditions ?? [];
  let conditions = setCondition(
    current,
    { type: "Accepted", status: "True", reason: "Valid", message: "the object passed validation" },
    now,
  );
  const ready = conditions.find((c) => c.type === "Ready");
  // A later component owns Ready once it has spoken; do not overwrite its verdict on a relabel.
  if (!ready || ready.reason === "AwaitingInstances" || ready.reason === "Accepted") {
    conditions = setCondition(conditions, initialReady(object), now);
  }
  return { ...object.status, observedGeneration: object.metadata.generation, conditions };
}

/** Runs until the store closes; returns when the watch ends. */
export async function runStatusReconciler(store: Store, status: StatusWriter, logger: Logger): Promise<void> {
  for await (const change of store.watch({ initial: true })) {
    if (change.type === "deleted" || change.type === "status") continue;
    const { kind, metadata } = change.object;
    try {
      await status.update(kind, metadata.name, (current) =>
        current.status?.observedGeneration === current.metadata.generation
          ? (current.status ?? {})
          : acceptedStatus(current, new Date()),
      );
    } catch (err) {
      logger.warn({ err, kind, name: metadata.name }, "status update failed");
    }
  }
}
