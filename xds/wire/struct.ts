// google.protobuf.Struct in protobufjs object form ⇄ plain JSON. protobufjs bundles its own
// struct.proto with camelCase Value fields (stringValue...), whatever keepCase says; readers accept
// snake_case too.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type ValueObject = Record<string, unknown>;

export function jsonToValue(v: unknown): ValueObject {
  if (v === null || v === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "string") return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  if (typeof v === "object") return { structValue: jsonToStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function jsonToStruct(obj: Record<string, unknown>): { fields: Record<string, ValueObject> } {
  const fields: Record<string, ValueObject> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined) fields[k] = jsonToValue(v);
  }
  return { fields };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function field(v: Record<string, unknown>, camel: string, snake: string): unknown {
  return v[camel] ?? v[snake];
}

export function valueToJson(v: unknown): Json {
  if (!isRecord(v)) return null;
  const s = field(v, "stringValue", "string_value");
  if (typeof s === "string") return s;
  const n = field(v, "numberValue", "number_value");
  if (typeof n === "number") return n;
  const b = field(v, "boolValue", "bool_value");
  if (typeof b === "boolean") return b;
  const st = field(v, "structValue", "struct_value");
  if (isRecord(st)) return structToJson(st);
  const l = field(v, "listValue", "list_value");
  if (isRecord(l)) return Array.isArray(l.values) ? l.values.map(valueToJson) : [];
  return null;
}

/** Accepts the protobufjs object form of a Struct; anything else gives {}. */
export function structToJson(s: unknown): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  if (!isRecord(s) || !isRecord(s.fields)) return out;
  for (const [k, v] of Object.entries(s.fields)) out[k] = valueToJson(v);
  return out;
}
