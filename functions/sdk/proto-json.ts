// Readers for protobuf messages as protobufjs decodes them with keepCase (what an xDS client hands a
// function), tolerant of the proto3 JSON forms too.
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
