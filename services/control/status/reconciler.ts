// Writes each object's status after a spec change: Accepted (it passed validation and is stored)
// and Ready. Kinds with nothing to run are ready once accepted; the Ready of ServiceFunction and
// ServiceChain belongs to the data path status (datapath-status.ts), which knows their instances.
import type { Logger } from "pino";
import type { Kind, ResourceStatus, StoredResource } from "../model/resource.js";
import type { Store } from "../store/store.js";
import { type ConditionUpdate, setCondition } from "./conditions.js";
import type { StatusWriter } from "./status-writer.js";

const READY_FROM_DATA_PATH: ReadonlySet<Kind> = new Set<Kind>(["ServiceFunction", "ServiceChain"]);

/** The Ready this reconciler owns; undefined for kinds whose Ready the data path status writes. */
export function initialReady(object: StoredResource): ConditionUpdate | undefined {
  if (READY_FROM_DATA_PATH.has(object.kind)) return undefined;
  return { type: "Ready", status: "True", reason: "Accepted", message: "accepted and stored" };
}

export function acceptedStatus(object: StoredResource, now: Date): ResourceStatus {
  let conditions = setCondition(
    object.status?.conditions ?? [],
    { type: "Accepted", status: "True", reason: "Valid", message: "the object passed validation" },
    now,
  );
  const ready = initialReady(object);
  const previous = conditions.find((c) => c.type === "Ready");
  // A later component owns Ready once it has spoken; do not overwrite its verdict on a relabel.
  if (ready && (!previous || previous.reason === "Accepted"))
    conditions = setCondition(conditions, ready, now);
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
