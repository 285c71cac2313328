// The built-in types, keyed by type URL; a client given its own map can add or replace types.
import { clusterType } from "./cluster.js";
import { endpointType } from "./endpoint.js";
import { listenerType } from "./listener.js";
import type { ResourceType } from "./resource-type.js";
import { routeType } from "./route.js";
import { secretType } from "./secret.js";

export const BUILTIN_RESOURCE_TYPES: ReadonlyMap<string, ResourceType> = new Map<string, ResourceType>(
  [listenerType, clusterType, endpointType, routeType, secretType].map((t) => [t.typeUrl, t as ResourceType]),
);
