// Readers for protobuf messages as protobufjs decodes them with keepCase (what an xDS client hands a
// function), tolerant of the proto3 JSON forms too.
import type { ErrorList } from "./validated.js";

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A google.protobuf wrapper ({value}) or the bare value; 64-bit values may arrive as strings or Longs. */
export function wrappedValue(v: unknown): unknown {
  const x = isObject(v) && "value" in v ? v.value : v;
  if (typeof x === "string" && x !== "" && !Number.isNaN(Number(x))) return Number(x);
  if (isObject(x) && typeof x.toNumber === "function") return Number(String(x));
  return x;
}

/** google.protobuf.Duration ({seconds, nanos} or "1.5s") in milliseconds; undefined when malformed. */
export function durationMs(v: unknown): number | undefined {
  if (typeof v === "string") {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
    return m ? Number(m[1]) * 1000 : undefined;
  }
  if (!isObject(v)) return undefined;
  const s = Number(wrappedValue(v.seconds ?? 0));
  const n = Number(v.nanos ?? 0);
  return Number.isFinite(s) && Number.isFinite(n) ? s * 1000 + n / 1e6 : undefined;
}

/** Set in the message: not absent, not null, not an empty list (what proto3 leaves out). */
export function present(o: Record<string, unknown>, k: string): boolean {
  const v = o[k];
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

/** Every key of `o` outside `known` is a field error: set, it would otherwise be silently ignored. */
export function rejectUnknown(
  o: Record<string, unknown>,
  known: ReadonlySet<string>,
  at: string,
  errors: ErrorList,
) {
  for (const k of Object.keys(o))
    if (k !== "@type" && !known.has(k) && present(o, k))
      errors.add(`${at}.${k}`, "not supported by the Catena function host");
}
