// The configuration vocabularies of the built-in function types, as operators write them in a
// hop's `config` (or in a ServiceFunction's `config`, which gives every hop its defaults). The
// compiler translates them into the Envoy dialect. Third-party types bring their own validation.
import { type Static, type TObject, Type } from "@sinclair/typebox";
import {
  CidrString,
  DnsLabel,
  FreeObject,
  HealthCheck,
  Port,
  PositiveInteger,
  StringEnum,
} from "./common-schemas.js";
import { asArray, asRecord, checkCidr, checkPortRange, type Path, Problems } from "./field-checks.js";
import type { PathSegment } from "./field-path.js";
import type { FieldError } from "./resource.js";
import { schemaCheck } from "./schema-validator.js";

export const BUILTIN_FUNCTION_TYPES = ["firewall", "qos", "loadbalancer", "vpn", "discovery"] as const;
export type BuiltinFunctionType = (typeof BUILTIN_FUNCTION_TYPES)[number];

export function isBuiltinFunctionType(type: unknown): type is BuiltinFunctionType {
  return (BUILTIN_FUNCTION_TYPES as readonly unknown[]).includes(type);
}

// --- firewall -----------------------------------------------------------------------------------

const FirewallSource = Type.Object(
  { cidr: CidrString("Source network of the connection") },
  { additionalProperties: false },
);

const FirewallPort = Type.Union(
  [
    Port("A destination port"),
    Type.Object(
      {
        port: Port("First port of the range"),
        endPort: Type.Optional(Port("Last port of the range (inclusive)")),
      },
      { additionalProperties: false },
    ),
  ],
  { errorMessage: "must be a port number or {port, endPort}" },
);

const FirewallRule = Type.Object(
  {
    from: Type.Optional(
      Type.Array(FirewallSource, { minItems: 1, description: "Source networks; absent: any source." }),
    ),
    ports: Type.Optional(
      Type.Array(FirewallPort, {
        minItems: 1,
        description: "Destination ports (the hop's listener port for a chain); absent: any port.",
      }),
    ),
  },
  { additionalProperties: false, description: "Matches a connection when every given field matches." },
);

export const FirewallConfig = Type.Object(
  {
    defaultAction: StringEnum(["allow", "deny"], {
      description: "What happens to a connection no rule matches.",
    }),
    allow: Type.Optional(Type.Array(FirewallRule, { description: "Connections to accept." })),
    deny: Type.Optional(
      Type.Array(FirewallRule, { description: "Connections to close; deny rules win over allow rules." }),
    ),
  },
  { additionalProperties: false, title: "firewall hop config" },
);
export type FirewallConfig = Static<typeof FirewallConfig>;

// --- qos ----------------------------------------------------------------------------------------

export const QosConfig = Type.Object(
  {
    connectionsPerSecond: Type.Optional(
      PositiveInteger("New connections accepted per second (token bucket)."),
    ),
    burstConnections: Type.Optional(
      PositiveInteger("Bucket size for new connections; defaults to connectionsPerSecond."),
    ),
    maxConnections: Type.Optional(PositiveInteger("Active connections at most; more are closed.")),
    bandwidth: Type.Optional(
      Type.Object(
        {
          bytesPerSecond: PositiveInteger("Sustained byte rate, each direction."),
          burstBytes: Type.Optional(PositiveInteger("Bytes that may pass at once above the rate.")),
          scope: Type.Optional(
            StringEnum(["connection", "chain"], {
              description: "Whether the rate applies to each connection or to all of the hop's connections.",
              default: "connection",
            }),
          ),
        },
        { additionalProperties: false, description: "Byte-rate shaping." },
      ),
    ),
  },
  { additionalProperties: false, title: "qos hop config" },
);
export type QosConfig = Static<typeof QosConfig>;

// --- loadbalancer -------------------------------------------------------------------------------

export const LB_POLICIES = ["round_robin", "least_request", "ring_hash", "maglev", "random"] as const;

export const LoadBalancerConfig = Type.Object(
  {
    policy: Type.Optional(
      StringEnum(LB_POLICIES, {
        description: "How an endpoint is picked; ring_hash and maglev hash the client address.",
        default: "round_robin",
      }),
    ),
    healthCheck: Type.Optional(HealthCheck),
    outlierDetection: Type.Optional(
      Type.Object(
        {
          consecutiveFailures: Type.Optional(
            PositiveInteger("Connection failures in a row that eject an endpoint.", { default: 5 }),
          ),
          baseEjectionMs: Type.Optional(
            PositiveInteger("How long an ejection lasts, times the number of ejections.", { default: 30000 }),
          ),
          maxEjectionPercent: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 100,
              default: 10,
              description: "At most this share of endpoints is ejected at once.",
            }),
          ),
        },
        { additionalProperties: false, description: "Passive ejection of failing endpoints." },
      ),
    ),
    maxConnections: Type.Optional(PositiveInteger("Connections to all endpoints at most (circuit breaker).")),
    retries: Type.Optional(
      Type.Object(
        {
          attempts: Type.Integer({
            minimum: 1,
            maximum: 10,
            description: "Connection attempts per client connection, the first one included.",
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: "loadbalancer hop config" },
);
export type LoadBalancerConfig = Static<typeof LoadBalancerConfig>;

// --- vpn ----------------------------------------------------------------------------------------

export const VpnConfig = Type.Object(
  {
    peer: DnsLabel("The ServiceFunction (of type vpn) at the far end of the tunnel."),
    tunnelPort: Type.Optional(Port("Port the peer's instances accept tunnels on.")),
    authority: Type.Optional(
      Type.String({
        minLength: 1,
        description: "Authority of the HTTP/2 CONNECT request; defaults to the service's name and port.",
      }),
    ),
  },
  { additionalProperties: false, title: "vpn hop config" },
);
export type VpnConfig = Static<typeof VpnConfig>;

// --- discovery ----------------------------------------------------------------------------------

export const DiscoveryConfig = Type.Object(
  {
    zone: Type.Optional(
      Type.String({
        pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+$",
        patternErrorMessage: "must be a DNS zone ending in '.', such as catena.",
        default: "catena.",
        description: "DNS zone answered.",
      }),
    ),
    ttlSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 86400,
        default: 5,
        description: "TTL of the answers, in seconds.",
      }),
    ),
  },
  { additionalProperties: false, title: "discovery hop config" },
);
export type DiscoveryConfig = Static<typeof DiscoveryConfig>;

export const HOP_CONFIG_SCHEMAS: Readonly<Record<BuiltinFunctionType, TObject>> = {
  firewall: FirewallConfig,
  qos: QosConfig,
  loadbalancer: LoadBalancerConfig,
  vpn: VpnConfig,
  discovery: DiscoveryConfig,
};

export interface HopConfigs {
  firewall: FirewallConfig;
  qos: QosConfig;
  loadbalancer: LoadBalancerConfig;
  vpn: VpnConfig;
  discovery: DiscoveryConfig;
}

/** A third-party type's config: any object; the plugin validates it. */
export const PluginConfig = FreeObject("Configuration for a third-party function; its plugin validates it.");

const completeChecks = Object.fromEntries(
  BUILTIN_FUNCTION_TYPES.map((t) => [t, schemaCheck(HOP_CONFIG_SCHEMAS[t])]),
) as Record<BuiltinFunctionType, ReturnType<typeof schemaCheck>>;
// A ServiceFunction's config holds defaults: required fields may come from each hop instead.
const defaultsChecks = Object.fromEntries(
  BUILTIN_FUNCTION_TYPES.map((t) => [t, schemaCheck(Type.Partial(HOP_CONFIG_SCHEMAS[t]))]),
) as Record<BuiltinFunctionType, ReturnType<typeof schemaCheck>>;
const pluginCheck = schemaCheck(PluginConfig);

function semanticChecks(
  type: BuiltinFunctionType,
  config: unknown,
  path: Path,
  complete: boolean,
): FieldError[] {
  const problems = new Problems();
  const record = asRecord(config);
  if (!record) return [];
  if (type === "firewall") {
    for (const action of ["allow", "deny"] as const) {
      asArray(record[action]).forEach((rule, i) => {
        const r = asRecord(rule);
        asArray(r?.from).forEach((source, j) => {
          checkCidr(problems, [...path, action, i, "from", j, "cidr"], asRecord(source)?.cidr);
        });
        asArray(r?.ports).forEach((port, j) => {
          checkPortRange(problems, [...path, action, i, "ports", j], port);
        });
      });
    }
  }
  if (type === "qos" && complete && record.burstConnections !== undefined) {
    if (record.connectionsPerSecond === undefined) {
      problems.add([...path, "burstConnections"], "needs connectionsPerSecond");
    }
  }
  if (type === "loadbalancer") {
    const hc = asRecord(record.healthCheck);
    if (hc && typeof hc.timeoutMs === "number" && typeof hc.intervalMs === "number") {
      if (hc.timeoutMs > hc.intervalMs) {
        problems.add([...path, "healthCheck", "timeoutMs"], `must be at most intervalMs (${hc.intervalMs})`);
      }
    }
  }
  return problems.list;
}

/**
 * Validates a hop config for a function type. `complete` for the config a hop will run with
 * (see effectiveHopConfig), `defaults` for a ServiceFunction's config. Unknown types: any object.
 */
export function checkHopConfig(
  type: string,
  config: unknown,
  prefix: readonly PathSegment[],
  mode: "complete" | "defaults",
): FieldError[] {
  if (!isBuiltinFunctionType(type)) return pluginCheck(config, prefix);
  const check = mode === "complete" ? completeChecks[type] : defaultsChecks[type];
  return [...check(config, prefix), ...semanticChecks(type, config, prefix, mode === "complete")];
}

/**
 * The config a hop runs with: the ServiceFunction's config as defaults, the hop's own on top.
 * Objects merge field by field; lists and scalars from the hop replace the defaults.
 */
export function effectiveHopConfig(functionConfig: unknown, hopConfig: unknown): Record<string, unknown> {
  return merge(asRecord(functionConfig) ?? {}, asRecord(hopConfig) ?? {});
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const a = asRecord(out[key]);
    const b = asRecord(value);
    out[key] = a && b ? merge(a, b) : value;
  }
  return out;
}
