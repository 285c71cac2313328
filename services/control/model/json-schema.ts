// The manifest format as one JSON Schema (draft-07) for editors (yaml-language-server, VS Code)
// and other tools; `catena schema` prints it. Built from the same schemas validation uses.

import { HOP_CONFIG_SCHEMAS } from "./hop-configs.js";
import { API_VERSION, KINDS } from "./resource.js";
import { ObjectMetaSchema, SPEC_SCHEMAS } from "./schemas.js";

const KIND_DESCRIPTIONS = {
  Network: "An address space: workloads, function instances and chain ingresses get addresses from its CIDR.",
  Workload: "Something addressable (container, VM, bare-metal host, function) attached to networks.",
  Service: "A named set of endpoints that clients look up (DNS, HTTP, xDS).",
  ServiceFunction:
    "A pool of instances of one function type (firewall, qos, loadbalancer, vpn, discovery, plugin).",
  ServiceChain: "Service functions a connection passes, in order, on its way to a Service.",
  NetworkPolicy: "Which connections the selected workloads may make and accept.",
} as const;

// TypeBox schemas carry Symbol-keyed metadata; a JSON round trip leaves the plain schema.
function plain(schema: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

export function manifestJsonSchema(): Record<string, unknown> {
  const definitions: Record<string, unknown> = {};
  for (const kind of KINDS) definitions[`${kind}Spec`] = plain(SPEC_SCHEMAS[kind]);
  for (const [type, schema] of Object.entries(HOP_CONFIG_SCHEMAS)) {
    // Not wired into hops (a hop's vocabulary depends on its function's type, set elsewhere);
    // here for reference and for tools that know a hop's type.
    definitions[`${type}HopConfig`] = plain(schema);
  }
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "Catena manifest",
    description: `One Catena object (apiVersion ${API_VERSION}). A file may hold several, separated by ---.`,
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    additionalProperties: false,
    properties: {
      apiVersion: { const: API_VERSION, description: "Catena's API version." },
      kind: {
        type: "string",
        enum: [...KINDS],
        description: KINDS.map((k) => `${k}: ${KIND_DESCRIPTIONS[k]}`).join("\n"),
      },
      metadata: { ...plain(ObjectMetaSchema), description: "Name, labels and server-written fields." },
      spec: { type: "object", description: "The desired state; its fields depend on kind." },
      status: { type: "object", description: "Server-written; ignored on input." },
    },
    allOf: KINDS.map((kind) => ({
      if: { properties: { kind: { const: kind } }, required: ["kind"] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable
      then: {
        properties: {
          spec: { $ref: `#/definitions/${kind}Spec`, description: KIND_DESCRIPTIONS[kind] },
        },
      },
    })),
    definitions,
  };
}
