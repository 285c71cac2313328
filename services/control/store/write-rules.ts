// The rules of a write, independent of where objects are kept: what the store fills in, when
// generation bumps, what counts as unchanged. A future JetStream store applies the same rules.
import { randomUUID } from "node:crypto";
import { CatenaError, ErrorCode } from "../errors.js";
import {
  API_VERSION,
  KINDS,
  type Kind,
  type Resource,
  type ResourceStatus,
  type StoredResource,
} from "../model/resource.js";
import type { OpAction } from "./store.js";

/**
 * A JSON round trip: what the store keeps in memory is exactly what recovery reads back from
 * disk (no `undefined` fields, no Dates), and the caller's object is never shared.
 */
export function toJson<T>(value: T, path: string): T {
  try {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError("not representable as JSON");
    return JSON.parse(text) as T;
  } catch (err) {
    const message = `${path}: not representable as JSON (${err instanceof Error ? err.message : String(err)})`;
    throw new CatenaError(ErrorCode.Invalid, message, [{ path, message }], { cause: err });
  }
}

/** Structural equality of JSON values; object key order does not matter, array order does. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  const bRecord = b as Record<string, unknown>;
  const aRecord = a as Record<string, unknown>;
  return aKeys.every((key) => Object.hasOwn(bRecord, key) && deepEqual(aRecord[key], bRecord[key]));
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

// Absent and empty maps are the same: `labels: {}` does not differ from no labels.
function sameMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  return deepEqual(a ?? {}, b ?? {});
}

function invalid(message: string, document: number, path: string): CatenaError {
  return new CatenaError(ErrorCode.Invalid, message, [{ document, path, message }]);
}

/** Checks what the store itself relies on (kind, name); schemas are the model's job. */
export function checkIdentity(kind: unknown, name: unknown, document: number): asserts kind is Kind {
  if (typeof kind !== "string" || !(KINDS as readonly string[]).includes(kind)) {
    throw invalid(`unknown kind ${JSON.stringify(kind)}`, document, "kind");
  }
  if (typeof name !== "string" || name === "") {
    throw invalid(`${kind}: metadata.name must be a non-empty string`, document, "metadata.name");
  }
}

export interface PlannedPut {
  action: Exclude<OpAction, "deleted">;
  object: StoredResource;
}

/**
 * The object a put leaves behind. Server-written fields come from the stored copy (or are new),
 * never from `input`; status is kept from the stored copy. `revision` is the commit's revision.
 */
export function planPut(
  input: Resource,
  current: StoredResource | undefined,
  revision: number,
  document: number,
): PlannedPut {
  const spec = toJson(input.spec ?? {}, "spec");
  const meta = input.metadata;
  const labels = meta.labels === undefined ? undefined : toJson(meta.labels, "metadata.labels");
  const annotations =
    meta.annotations === undefined ? undefined : toJson(meta.annotations, "metadata.annotations");
  const apiVersion =
    typeof input.apiVersion === "string" && input.apiVersion ? input.apiVersion : API_VERSION;
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw invalid(`${input.kind}/${meta.name}: spec must be an object`, document, "spec");
  }

  const specChanged = current !== undefined && !deepEqual(current.spec, spec);
  if (
    current &&
    !specChanged &&
    sameMap(current.metadata.labels, labels) &&
    sameMap(current.metadata.annotations, annotations)
  ) {
    return { action: "unchanged", object: current };
  }
  const object: StoredResource = {
    apiVersion,
    kind: input.kind,
    metadata: {
      name: meta.name,
      ...(labels !== undefined && { labels }),
      ...(annotations !== undefined && { annotations }),
      uid: current?.metadata.uid ?? randomUUID(),
      creationTimestamp: current?.metadata.creationTimestamp ?? new Date().toISOString(),
      generation: current ? current.metadata.generation + (specChanged ? 1 : 0) : 1,
      resourceVersion: String(revision),
    },
    spec,
    ...(current?.status !== undefined && { status: current.status }),
  };
  return { action: current ? "updated" : "created", object: deepFreeze(object) };
}

/** The object with its status replaced, or undefined when the status is the same. */
export function planStatus(
  current: StoredResource,
  status: ResourceStatus,
  revision: number,
): StoredResource | undefined {
  const next = toJson(status, "status");
  if (typeof next !== "object" || next === null || Array.isArray(next)) {
    throw invalid(`${current.kind}/${current.metadata.name}: status must be an object`, 0, "status");
  }
  if (deepEqual(current.status, next)) return undefined;
  return deepFreeze({
    ...current,
    metadata: { ...current.metadata, resourceVersion: String(revision) },
    status: next,
  });
}
