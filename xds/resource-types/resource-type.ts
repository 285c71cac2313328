// How a client turns one resource's bytes into a value: decode, name, validate. Never throws.
import { messageType, strictReader } from "../protos.js";
import { messageNameOf } from "../type-urls.js";
import type { FieldError, Validated } from "../validated.js";
import { isProtoObject, type ProtoObject, str } from "../wire/proto-object.js";

/** A resource in Envoy's JSON form: proto field names, enums as names, Anys as {"@type", ...}. */
export type ProtoJson = { [field: string]: unknown };

export type Decoded<T> =
  | { ok: true; name: string; value: T }
  | { ok: false; name?: string; errors: FieldError[] };

export interface ResourceType<T = ProtoJson> {
  readonly typeUrl: string;
  /** SotW responses of this type carry the full state: a name left out is a deletion. */
  readonly fullState: boolean;
  /** Decodes the Any's value bytes (not the Any itself). */
  decode(value: Uint8Array): Decoded<T>;
}

export const TO_JSON_OPTIONS = { json: true, enums: String, longs: Number, defaults: false } as const;

/** Decodes message bytes of a type the loaded protos know into Envoy's JSON form; never throws. */
export function decodeMessageJson(typeUrl: string, value: Uint8Array): Validated<ProtoJson> {
  try {
    const type = messageType(messageNameOf(typeUrl));
    const json: unknown = type.toObject(type.decode(strictReader(value)), TO_JSON_OPTIONS);
    if (!isProtoObject(json)) return { ok: false, errors: [{ path: "", message: "not a message" }] };
    return { ok: true, value: json };
  } catch (e) {
    return { ok: false, errors: [{ path: "", message: `cannot decode ${typeUrl}: ${errorMessage(e)}` }] };
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export interface ProtoTypeOptions<T> {
  typeUrl: string;
  fullState: boolean;
  /** Field holding the resource's name ("name", or "cluster_name" for ClusterLoadAssignment). */
  nameField: string;
  /** Checks beyond decoding; every problem with its field path. */
  validate?: (json: ProtoJson) => FieldError[];
  /** Narrows the JSON to T once validated. */
  convert?: (json: ProtoJson) => T;
}

export function protoResourceType<T = ProtoJson>(opts: ProtoTypeOptions<T>): ResourceType<T> {
  return {
    typeUrl: opts.typeUrl,
    fullState: opts.fullState,
    decode(value: Uint8Array): Decoded<T> {
      const decoded = decodeMessageJson(opts.typeUrl, value);
      if (!decoded.ok) return { ok: false, errors: decoded.errors };
      const json = decoded.value;
      const name = str(json as ProtoObject, opts.nameField);
      const errors: FieldError[] = [];
      if (!name) errors.push({ path: opts.nameField, message: "must be set" });
      try {
        if (opts.validate) errors.push(...opts.validate(json));
        if (errors.length > 0) return name ? { ok: false, name, errors } : { ok: false, errors };
        const out = opts.convert ? opts.convert(json) : (json as T);
        return { ok: true, name, value: out };
      } catch (e) {
        errors.push({ path: "", message: `validation failed: ${errorMessage(e)}` });
        return name ? { ok: false, name, errors } : { ok: false, errors };
      }
    },
  };
}

/**
 * Adds a check to a type: the client NACKs a resource the check rejects, with the check's field
 * errors in error_detail, and keeps the last accepted version.
 */
export function withValidation<T, U>(
  type: ResourceType<T>,
  validate: (value: T) => Validated<U>,
): ResourceType<U> {
  return {
    typeUrl: type.typeUrl,
    fullState: type.fullState,
    decode(value: Uint8Array): Decoded<U> {
      const d = type.decode(value);
      if (!d.ok) return d;
      let v: Validated<U>;
      try {
        v = validate(d.value);
      } catch (e) {
        // A throwing check rejects the resource (a NACK), never the stream.
        v = { ok: false, errors: [{ path: "", message: `validation failed: ${errorMessage(e)}` }] };
      }
      return v.ok
        ? { ok: true, name: d.name, value: v.value }
        : { ok: false, name: d.name, errors: v.errors };
    },
  };
}
