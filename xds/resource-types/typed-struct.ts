// A decoded xds.type.v3.TypedStruct (a third-party plugin's config) back to its type URL and JSON.
import { TYPE_URL } from "../type-urls.js";
import { isProtoObject, str } from "../wire/proto-object.js";
import { type Json, structToJson } from "../wire/struct.js";

export interface UnpackedTypedStruct {
  typeUrl: string;
  value: { [key: string]: Json };
}

/** For a typed_config in Envoy JSON form ({"@type": TypedStruct, type_url, value}); else undefined. */
export function unpackTypedStruct(typedConfig: unknown): UnpackedTypedStruct | undefined {
  if (!isProtoObject(typedConfig) || typedConfig["@type"] !== TYPE_URL.typedStruct) return undefined;
  return { typeUrl: str(typedConfig, "type_url"), value: structToJson(typedConfig.value) };
}
