// Apply and delete as the API performs them: validate every document, check references against
// the store plus the request itself, then commit all or nothing.
import { CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";
import { checkDeletes, checkReferences, indexResources, validateResource } from "../model/index.js";
import type { Kind, Resource } from "../model/resource.js";
import { objectKey } from "../model/resource.js";
import { Mutex } from "../mutex.js";
import type { CommitResult, Store } from "../store/store.js";

export interface ObjectRef {
  kind: Kind;
  name: string;
}

export interface Applier {
  apply(documents: readonly unknown[], options?: { dryRun?: boolean }): Promise<CommitResult>;
  /** With `ignoreNotFound`, objects that do not exist are skipped instead of failing the request. */
  remove(
    refs: readonly ObjectRef[],
    options?: { dryRun?: boolean; ignoreNotFound?: boolean },
  ): Promise<CommitResult>;
}

export function createApplier(store: Store): Applier {
  const mutex = new Mutex();

  return {
    apply: (documents, options = {}) =>
      mutex.run(async () => {
        const details: ErrorDetail[] = [];
        const batch: { index: number; resource: Resource }[] = [];
        documents.forEach((doc, index) => {
          const result = validateResource(doc);
          if (result.ok) {
            batch.push({ index, resource: result.value });
            return;
          }
          const { kind, name } = identify(doc);
          for (const e of result.errors) details.push({ document: index, kind, name, ...e });
        });
        if (documents.length === 0) details.push({ path: "", message: "the request holds no documents" });
        const current = indexResources(await store.list());
        for (const d of checkReferences(batch, current.get, current.list)) details.push(d);
        if (details.length > 0) throw invalid(details);
        return store.commit(
          batch.map(({ resource }) => ({
            type: "put" as const,
            object: resource,
            ...(resource.metadata.resourceVersion
              ? { expectedVersion: resource.metadata.resourceVersion }
              : {}),
          })),
          options,
        );
      }),

    remove: (requested, { ignoreNotFound, ...options } = {}) =>
      mutex.run(async () => {
        const refs = ignoreNotFound
          ? (
              await Promise.all(
                requested.map(async (r) => ((await store.get(r.kind, r.name)) ? r : undefined)),
              )
            ).filter((r): r is ObjectRef => r !== undefined)
          : requested;
        const deleting = new Set(refs.map((r) => objectKey(r.kind, r.name)));
        const remaining = (await store.list()).filter(
          (o) => !deleting.has(objectKey(o.kind, o.metadata.name)),
        );
        const details = checkDeletes(
          refs.map((r, index) => ({ index, ...r })),
          remaining,
        );
        if (details.length > 0) throw invalid(details);
        return store.commit(
          refs.map((r) => ({ type: "delete" as const, kind: r.kind, name: r.name })),
          options,
        );
      }),
  };
}

function invalid(details: ErrorDetail[]): CatenaError {
  const n = details.length;
  return new CatenaError(ErrorCode.Invalid, `${n} error${n === 1 ? "" : "s"} in the request`, details);
}

/** Best-effort kind and name of a document that failed validation, for error messages. */
export function identify(doc: unknown): { kind?: string; name?: string } {
  if (typeof doc !== "object" || doc === null) return {};
  const { kind, metadata } = doc as { kind?: unknown; metadata?: { name?: unknown } };
  return {
    ...(typeof kind === "string" ? { kind } : {}),
    ...(typeof metadata?.name === "string" ? { name: metadata.name } : {}),
  };
}
