// The spec of each kind, as a TypeBox schema (which is JSON Schema) and its static type. Field
// names follow DESIGN.md's manifests, which are a contract. Unknown fields are rejected everywhere.
import { type Static, type TObject, type TSchema, Type } from "@sinclair/typebox";
import {
  Annotations,
  CidrString,
  DnsLabel,
  FreeObject,
  HealthCheck,
  IpString,
  Labels,
  Port,
  PortName,
  Protocol,
  StringEnum,
} from "./common-schemas.js";
import { API_VERSION, KINDS, type Kind, type Resource } from "./resource.js";

const closed = { additionalProperties: false } as const;

// --- Network ------------------------------------------------------------------------------------

export const NetworkSpec = Type.Object(
  {
    cidr: CidrString("Addresses of the network; Catena allocates from here"),
    exclude: Type.Optional(
      Type.Array(CidrString("A range inside cidr that IPAM never hands out"), {
        description: "Ranges inside cidr that IPAM must not hand out.",
      }),
    ),
    isolation: Type.Optional(
      StringEnum(["open", "default-deny"], {
        description:
          "open: members reach each other unless a policy denies; default-deny: only what policies allow.",
        default: "open",
      }),
    ),
  },
  {
    ...closed,
    title: "Network spec",
    description: "An address space that workloads and functions attach to.",
  },
);
export type NetworkSpec = Static<typeof NetworkSpec>;

// --- Workload -----------------------------------------------------------------------------------

export const WORKLOAD_KINDS = ["container", "vm", "baremetal", "function"] as const;

const WorkloadPort = Type.Object(
  {
    name: PortName,
    port: Port("Port the workload listens on"),
    protocol: Type.Optional(Protocol),
  },
  closed,
);

export const WorkloadSpec = Type.Object(
  {
    kind: StringEnum(WORKLOAD_KINDS, { description: "What runs there." }),
    networks: Type.Array(
      Type.Object(
        {
          name: DnsLabel("A Network's name"),
          address: Type.Optional(IpString("Fixed address in the network; else IPAM picks one")),
        },
        closed,
      ),
      { minItems: 1, description: "Networks the workload is attached to, each once." },
    ),
    ports: Type.Optional(Type.Array(WorkloadPort, { description: "Ports the workload serves." })),
  },
  {
    ...closed,
    title: "Workload spec",
    description: "Something addressable that runs outside Catena's functions.",
  },
);
export type WorkloadSpec = Static<typeof WorkloadSpec>;

// --- Service ------------------------------------------------------------------------------------

const ServicePort = Type.Object(
  {
    name: PortName,
    port: Port("Port clients connect to"),
    protocol: Type.Optional(Protocol),
    targetPort: Type.Optional(Port("Port on the selected workloads; defaults to port")),
  },
  closed,
);

const Endpoint = Type.Object(
  {
    address: IpString("Endpoint address; may lie outside the Service's network"),
    port: Port("Endpoint port"),
    weight: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 128, default: 1, description: "Relative share of connections." }),
    ),
    locality: Type.Optional(
      Type.Object(
        {
          region: Type.Optional(Type.String({ minLength: 1 })),
          zone: Type.Optional(Type.String({ minLength: 1 })),
        },
        { ...closed, description: "Where the endpoint runs, for locality-aware balancing." },
      ),
    ),
    labels: Type.Optional(Labels("Labels of the endpoint")),
  },
  closed,
);

export const ServiceSpec = Type.Object(
  {
    network: DnsLabel("The Network the service lives in"),
    ports: Type.Array(ServicePort, { minItems: 1, description: "Ports of the service, names unique." }),
    endpoints: Type.Optional(
      Type.Array(Endpoint, { description: "Static endpoints; workloads can also register themselves." }),
    ),
    selector: Type.Optional(
      Labels(
        "Endpoints are the addresses, in this network, of the Workloads whose labels match all of these",
      ),
    ),
    proxyProtocol: Type.Optional(
      StringEnum(["none", "v2"], {
        description: "Whether connections to the endpoints start with a PROXY protocol v2 header.",
        default: "none",
      }),
    ),
    healthCheck: Type.Optional(HealthCheck),
  },
  { ...closed, title: "Service spec", description: "A named set of endpoints that clients look up." },
);
export type ServiceSpec = Static<typeof ServiceSpec>;

// --- ServiceFunction ----------------------------------------------------------------------------

export const ServiceFunctionSpec = Type.Object(
  {
    type: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
      patternErrorMessage: "must be a function type: lower-case letters, digits and '-'",
      description: "firewall, qos, loadbalancer, vpn, discovery, or the name a third-party plugin defines.",
      examples: ["firewall", "qos", "loadbalancer", "vpn", "discovery"],
    }),
    replicas: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 64, default: 1, description: "Number of instances to run." }),
    ),
    plugin: Type.Optional(
      Type.String({ minLength: 1, description: "Module (path or package) implementing a third-party type." }),
    ),
    config: Type.Optional(
      FreeObject("Defaults for the config of every hop using this function; a hop's own config wins."),
    ),
  },
  { ...closed, title: "ServiceFunction spec", description: "A pool of function instances of one type." },
);
export type ServiceFunctionSpec = Static<typeof ServiceFunctionSpec>;

// --- ServiceChain -------------------------------------------------------------------------------

export const PLACEMENTS = ["separate", "fused"] as const;

export const ServiceChainSpec = Type.Object(
  {
    service: DnsLabel("The Service this chain fronts: lookups of it resolve to the chain's ingress"),
    ingress: Type.Object(
      {
        port: Port("Port clients connect to"),
        address: Type.Optional(IpString("Fixed ingress address in the service's network; else allocated")),
      },
      { ...closed, description: "Where clients connect: the first hop's listener." },
    ),
    placement: Type.Optional(
      StringEnum(PLACEMENTS, {
        description: "separate: one instance per hop; fused: consecutive hops share one process.",
        default: "separate",
      }),
    ),
    hops: Type.Array(
      Type.Object(
        {
          function: DnsLabel("A ServiceFunction's name"),
          config: Type.Optional(
            FreeObject(
              "Config in the function type's vocabulary (firewall, qos, loadbalancer, vpn, discovery, or the plugin's).",
            ),
          ),
        },
        closed,
      ),
      { minItems: 1, maxItems: 16, description: "Functions a connection passes, in order." },
    ),
  },
  { ...closed, title: "ServiceChain spec", description: "Functions placed in front of a Service." },
);
export type ServiceChainSpec = Static<typeof ServiceChainSpec>;

// --- NetworkPolicy ------------------------------------------------------------------------------

const Peer = Type.Object(
  {
    selector: Type.Optional(Labels("Workloads whose labels match all of these")),
    network: Type.Optional(DnsLabel("Every member of this Network")),
    ipBlock: Type.Optional(
      Type.Object(
        {
          cidr: CidrString("Addresses in this range"),
          except: Type.Optional(Type.Array(CidrString("Ranges inside cidr to leave out"))),
        },
        closed,
      ),
    ),
  },
  {
    ...closed,
    minProperties: 1,
    maxProperties: 1,
    errorMessage: "must have exactly one of selector, network, ipBlock",
    description: "Exactly one of selector, network, ipBlock.",
  },
);

const PortRange = Type.Object(
  {
    port: Port("Port, or first port of a range"),
    endPort: Type.Optional(Port("Last port of the range (inclusive)")),
    protocol: Type.Optional(Protocol),
  },
  closed,
);

const Peers = (description: string) => Type.Array(Peer, { minItems: 1, description });
const Ports = Type.Array(PortRange, { minItems: 1, description: "Ports; absent: every port." });

export const NetworkPolicySpec = Type.Object(
  {
    subject: Type.Object(
      { selector: Labels("Workloads whose labels match all of these; {} selects every workload") },
      { ...closed, description: "The workloads this policy applies to." },
    ),
    policyTypes: Type.Optional(
      Type.Array(StringEnum(["Ingress", "Egress"]), {
        uniqueItems: true,
        description: "Directions this policy isolates; defaults to those it has rules for.",
      }),
    ),
    ingress: Type.Optional(
      Type.Array(Type.Object({ from: Peers("Sources allowed"), ports: Type.Optional(Ports) }, closed), {
        description: "Incoming connections allowed.",
      }),
    ),
    egress: Type.Optional(
      Type.Array(Type.Object({ to: Peers("Destinations allowed"), ports: Type.Optional(Ports) }, closed), {
        description: "Outgoing connections allowed.",
      }),
    ),
    deny: Type.Optional(
      Type.Array(
        Type.Object(
          {
            from: Type.Optional(Peers("Sources denied")),
            to: Type.Optional(Peers("Destinations denied")),
            ports: Type.Optional(Ports),
          },
          {
            ...closed,
            minProperties: 1,
            errorMessage: "must have at least one of from, to, ports",
          },
        ),
        { description: "Connections denied even when a rule allows them." },
      ),
    ),
  },
  {
    ...closed,
    title: "NetworkPolicy spec",
    description: "Which connections selected workloads may make and take.",
  },
);
export type NetworkPolicySpec = Static<typeof NetworkPolicySpec>;

// --- the envelope -------------------------------------------------------------------------------

export const SPEC_SCHEMAS = {
  Network: NetworkSpec,
  Workload: WorkloadSpec,
  Service: ServiceSpec,
  ServiceFunction: ServiceFunctionSpec,
  ServiceChain: ServiceChainSpec,
  NetworkPolicy: NetworkPolicySpec,
} as const satisfies Record<Kind, TObject>;

export interface Specs {
  Network: NetworkSpec;
  Workload: WorkloadSpec;
  Service: ServiceSpec;
  ServiceFunction: ServiceFunctionSpec;
  ServiceChain: ServiceChainSpec;
  NetworkPolicy: NetworkPolicySpec;
}

export const ObjectMetaSchema = Type.Object(
  {
    name: DnsLabel("Name, unique per kind"),
    labels: Type.Optional(Labels("Labels for selection")),
    annotations: Type.Optional(Annotations),
    resourceVersion: Type.Optional(
      Type.String({ description: "When given, apply succeeds only if the stored object has this version." }),
    ),
    // Server-written; accepted so `get -o yaml` output applies again, then ignored.
    generation: Type.Optional(Type.Integer({ description: "Server-written." })),
    uid: Type.Optional(Type.String({ description: "Server-written." })),
    creationTimestamp: Type.Optional(Type.String({ description: "Server-written." })),
  },
  closed,
);

const StatusSchema = Type.Unsafe<Record<string, unknown>>({
  type: "object",
  description: "Server-written; ignored on input.",
});

function envelope(kind: TSchema, spec: TSchema): TObject {
  return Type.Object(
    {
      apiVersion: Type.Literal(API_VERSION, { description: "Catena's API version." }),
      kind,
      metadata: ObjectMetaSchema,
      spec,
      status: Type.Optional(StatusSchema),
    },
    closed,
  );
}

/** The whole document of one kind, as validation sees it. */
export const RESOURCE_SCHEMAS = Object.fromEntries(
  KINDS.map((kind) => [kind, envelope(Type.Literal(kind), SPEC_SCHEMAS[kind])]),
) as Record<Kind, TObject>;

/** A document whose kind is not (yet) known: checks the envelope and the kind's spelling. */
export const ANY_RESOURCE_SCHEMA = envelope(
  StringEnum(KINDS, { description: "The kind of object." }),
  Type.Unsafe<Record<string, unknown>>({ type: "object" }),
);

// --- typed resources ----------------------------------------------------------------------------

export type TypedResource<K extends Kind> = Resource<Specs[K]> & { kind: K };
export type NetworkResource = TypedResource<"Network">;
export type WorkloadResource = TypedResource<"Workload">;
export type ServiceResource = TypedResource<"Service">;
export type ServiceFunctionResource = TypedResource<"ServiceFunction">;
export type ServiceChainResource = TypedResource<"ServiceChain">;
export type NetworkPolicyResource = TypedResource<"NetworkPolicy">;
/** Any valid Catena object, discriminated on `kind`. */
export type CatenaResource = { [K in Kind]: TypedResource<K> }[Kind];

/** Narrows a Resource to its kind's typed form (the caller vouches that it was validated). */
export function isKind<K extends Kind>(resource: Resource, kind: K): resource is Resource & TypedResource<K> {
  return resource.kind === kind;
}
