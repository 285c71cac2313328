// The defaults the schemas declare (replicas 1, placement separate, weight 1...), filled in for
// consumers such as the compiler. Validation does not apply them: the store keeps what was written.
import { Value } from "@sinclair/typebox/value";
import { HOP_CONFIG_SCHEMAS, isBuiltinFunctionType } from "./hop-configs.js";
import type { Resource } from "./resource.js";
import { SPEC_SCHEMAS } from "./schemas.js";

/** A copy of a valid resource with every declared default of its spec present. */
export function applyDefaults<R extends Resource>(resource: R): R {
  const spec = Value.Default(SPEC_SCHEMAS[resource.kind], structuredClone(resource.spec));
  return { ...resource, spec } as R;
}

/** A copy of a built-in type's hop config with its declared defaults; others are returned as is. */
export function applyHopConfigDefaults(
  type: string,
  config: Record<string, unknown>,
): Record<string, unknown> {
  if (!isBuiltinFunctionType(type)) return config;
  return Value.Default(HOP_CONFIG_SCHEMAS[type], structuredClone(config)) as Record<string, unknown>;
}
