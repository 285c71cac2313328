// The compiler's synchronous view of the store, kept current from the store's watch.
import type { Kind, StoredResource } from "../model/resource.js";
import type { Change } from "../store/store.js";

export class ModelState {
  readonly #byKind = new Map<Kind, Map<string, StoredResource>>();

  apply(change: Change): void {
    const { object } = change;
    let objects = this.#byKind.get(object.kind);
    if (!objects) {
      objects = new Map();
      this.#byKind.set(object.kind, objects);
    }
    if (change.type === "deleted") objects.delete(object.metadata.name);
    else objects.set(object.metadata.name, object);
  }

  get(kind: Kind, name: string): StoredResource | undefined {
    return this.#byKind.get(kind)?.get(name);
  }

  list(kind: Kind): Iterable<StoredResource> {
    return this.#byKind.get(kind)?.values() ?? [];
  }
}
