// Any values in protobufjs object form: {"@type": url, ...fields}. protobufjs encodes them by type URL.
import { TYPE_URL } from "../type-urls.js";
import { type Json, jsonToStruct } from "../wire/struct.js";

export interface TypedConfig {
  "@type": string;
  [field: string]: unknown;
}

/** An Any of a type the loaded Envoy protos define, its fields in proto (snake_case) names. */
export function typedConfig(typeUrl: string, fields: Record<string, unknown> = {}): TypedConfig {
  return { ...fields, "@type": typeUrl };
}

/**
 * A third-party plugin's config as xds.type.v3.TypedStruct: its own type URL and a JSON value, so
 * the control server can carry it without knowing the plugin's schema.
 */
export function typedStruct(pluginTypeUrl: string, value: { [key: string]: Json }): TypedConfig {
  return typedConfig(TYPE_URL.typedStruct, { type_url: pluginTypeUrl, value: jsonToStruct(value) });
}

/** ConfigSource pointing back at the ADS stream that delivered the resource. */
export function adsConfigSource(): Record<string, unknown> {
  return { ads: {}, resource_api_version: "V3" };
}

/** google.protobuf.Duration from milliseconds. */
export function duration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

export function socketAddress(address: string, port: number): Record<string, unknown> {
  return { socket_address: { address, port_value: port } };
}

/** envoy.config.core.v3.CidrRange; the prefix length defaults to the whole address (/32 or /128). */
export function cidrRange(address: string, prefixLen?: number): Record<string, unknown> {
  return { address_prefix: address, prefix_len: { value: prefixLen ?? (address.includes(":") ? 128 : 32) } };
}

/** envoy.config.core.v3.Metadata with filter_metadata per namespace, from plain JSON. */
export function filterMetadata(namespaces: Record<string, { [key: string]: Json }>): Record<string, unknown> {
  const fm: Record<string, unknown> = {};
  for (const [ns, value] of Object.entries(namespaces)) fm[ns] = jsonToStruct(value);
  return { filter_metadata: fm };
}
