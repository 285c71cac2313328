// A resource as the cache holds it: its name and its google.protobuf.Any, encoded once.

import protobuf from "protobufjs";
import { XDS_ERR, XdsError } from "./errors.js";
import { findMessageType, strictReader } from "./protos.js";
import { messageNameOf } from "./type-urls.js";

export interface Resource {
  readonly typeUrl: string;
  readonly name: string;
  /** The encoded google.protobuf.Any wrapping the resource; reused byte for byte in every response. */
  readonly any: Uint8Array;
}

/** Wraps encoded message bytes in an encoded Any (type_url = 1, value = 2). */
export function encodeAny(typeUrl: string, value: Uint8Array): Uint8Array {
  return protobuf.Writer.create().uint32(10).string(typeUrl).uint32(18).bytes(value).finish();
}

/** Reads an encoded Any back; undefined when the bytes are not one. Never throws. */
export function decodeAny(bytes: Uint8Array): { typeUrl: string; value: Uint8Array } | undefined {
  try {
    const r = strictReader(bytes);
    let typeUrl = "";
    let value: Uint8Array = new Uint8Array(0);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) typeUrl = r.string();
      else if (tag === 18) value = r.bytes();
      else r.skipType(tag & 7);
    }
    return { typeUrl, value };
  } catch {
    return undefined;
  }
}

/**
 * Encodes a message given in protobufjs object form (proto field names; nested Anys as
 * {"@type": url, ...fields}) as a Resource. Throws XDS_ERR_ENCODE for a type the protos lack or a
 * malformed object: builders call it with values they construct, so this is a programming error.
 */
export function encodeResource(typeUrl: string, name: string, object: Record<string, unknown>): Resource {
  const type = findMessageType(messageNameOf(typeUrl));
  if (!type) throw new XdsError(XDS_ERR.unknownType, `no protobuf type for ${typeUrl}`);
  let value: Uint8Array;
  try {
    value = type.encode(type.fromObject(object)).finish();
  } catch (cause) {
    throw new XdsError(XDS_ERR.encode, `cannot encode ${typeUrl} ${name}: ${String(cause)}`, { cause });
  }
  return { typeUrl, name, any: encodeAny(typeUrl, value) };
}

/** A resource from bytes encoded elsewhere (a custom type, a message built with other tools). */
export function resourceFromBytes(typeUrl: string, name: string, messageBytes: Uint8Array): Resource {
  return { typeUrl, name, any: encodeAny(typeUrl, messageBytes) };
}
