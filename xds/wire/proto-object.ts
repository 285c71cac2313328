// Narrow readers for protobufjs-decoded messages, which TypeScript only sees as unknown records.
export type ProtoObject = Record<string, unknown>;

export function isProtoObject(v: unknown): v is ProtoObject {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function str(o: ProtoObject, key: string): string {
  const v = o[key];
  return typeof v === "string" ? v : "";
}

export function num(o: ProtoObject, key: string): number {
  const v = o[key];
  if (typeof v === "number") return v;
  if (typeof v === "string" && v !== "") return Number(v);
  // protobufjs Long, when a caller decoded without the longs option.
  if (isProtoObject(v) && typeof v.toNumber === "function") return Number(String(v));
  return 0;
}

export function strs(o: ProtoObject, key: string): string[] {
  const v = o[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

export function obj(o: ProtoObject, key: string): ProtoObject | undefined {
  const v = o[key];
  return isProtoObject(v) ? v : undefined;
}

export function objs(o: ProtoObject, key: string): ProtoObject[] {
  const v = o[key];
  return Array.isArray(v) ? v.filter(isProtoObject) : [];
}

export function bytes(o: ProtoObject, key: string): Uint8Array {
  const v = o[key];
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}

export function strMap(o: ProtoObject, key: string): Record<string, string> {
  const v = o[key];
  const out: Record<string, string> = {};
  if (!isProtoObject(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return out;
}
