// Every committed change in the store becomes one CloudEvent. The id is derived from the change
// (kind, name, revision), so several control servers publishing the same change collapse to one.
import type { Logger } from "pino";
import type { StoredResource } from "../model/resource.js";
import type { Change, Store } from "../store/store.js";
import type { CatenaEvent, EventSink } from "./types.js";

export function changeToEvent(change: Change): CatenaEvent {
  const { object } = change;
  return {
    kind: object.kind.toLowerCase(),
    name: object.metadata.name,
    verb: verbOf(change),
    id: `${object.kind}/${object.metadata.name}/${change.revision}/${change.type}`,
    data: {
      revision: change.revision,
      change: change.type,
      object,
    },
  };
}

function verbOf(change: Change): string {
  if (change.type !== "status") return change.type;
  const before = readyOf(change.previous);
  const after = readyOf(change.object);
  if (after === "True" && before !== "True") return "ready";
  if (after === "False" && before !== "False") return "degraded";
  return "updated";
}

function readyOf(object: StoredResource | undefined): string | undefined {
  return object?.status?.conditions?.find((c) => c.type === "Ready")?.status;
}

/** Runs until the store closes. */
export async function publishStoreChanges(store: Store, sink: EventSink, logger: Logger): Promise<void> {
  try {
    for await (const change of store.watch()) sink.emit(changeToEvent(change));
  } catch (err) {
    logger.error({ err }, "store change feed ended");
  }
}
