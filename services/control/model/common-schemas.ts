// Building blocks shared by the kinds' schemas. Every schema is plain JSON Schema (TypeBox), so the
// same objects drive ajv validation and the exported editor schema.
import { type TInteger, type TUnsafe, Type } from "@sinclair/typebox";

/**
 * `patternErrorMessage` (and `errorMessage` for property-count rules) are annotations that VS Code
 * and yaml-language-server show instead of a raw regular expression; validation reads them too.
 */
export interface MessageAnnotations {
  patternErrorMessage?: string;
  errorMessage?: string;
}

/** A closed set of strings as a JSON Schema `enum` (editors complete it; TypeBox unions would be anyOf). */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description?: string; default?: T[number]; title?: string } = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS_LABEL_MESSAGE =
  "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit";

/** An object name, or a reference to one. */
export function DnsLabel(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({
    type: "string",
    minLength: 1,
    maxLength: 63,
    pattern: DNS_LABEL_PATTERN,
    patternErrorMessage: DNS_LABEL_MESSAGE,
    description,
  });
}

// Kubernetes label syntax: optional DNS-subdomain prefix and `/`, then a name of [-_.A-Za-z0-9].
// Lengths (prefix <= 253, name <= 63) are checked in code, where the message can say which part.
export const LABEL_KEY_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
const LABEL_KEY_MESSAGE =
  "must be a label key: an optional DNS prefix and '/', then letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
export const LABEL_VALUE_PATTERN = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/** `metadata.labels` and label selectors (`matchLabels` style: every pair must match). */
export function Labels(description: string): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: "object",
    description,
    propertyNames: { type: "string", pattern: LABEL_KEY_PATTERN, patternErrorMessage: LABEL_KEY_MESSAGE },
    additionalProperties: {
      type: "string",
      maxLength: 63,
      pattern: LABEL_VALUE_PATTERN,
      patternErrorMessage:
        "must be empty or letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    },
  });
}

export const Annotations = Type.Unsafe<Record<string, string>>({
  type: "object",
  description: "Free-form notes for tools and people; not used for selection.",
  propertyNames: { type: "string", pattern: LABEL_KEY_PATTERN, patternErrorMessage: LABEL_KEY_MESSAGE },
  additionalProperties: { type: "string" },
});

/** A free-form object (a plugin's configuration); its own validator checks it. */
export function FreeObject(description: string): TUnsafe<Record<string, unknown>> {
  return Type.Unsafe<Record<string, unknown>>({ type: "object", description });
}

// A real TypeBox Integer, not Unsafe: Value.Default cannot walk Unsafe schemas inside unions.
export function Port(description: string): TInteger {
  return Type.Integer({ minimum: 1, maximum: 65535, description });
}

export const PortName = Type.Unsafe<string>({
  type: "string",
  minLength: 1,
  // As in Kubernetes and IANA service names: it becomes the `_<name>._tcp` SRV label.
  maxLength: 15,
  pattern: DNS_LABEL_PATTERN,
  patternErrorMessage: DNS_LABEL_MESSAGE,
  description: "Port name, unique within the object; SRV records are `_<name>._tcp.<service>.catena.`",
});

export const PROTOCOLS = ["TCP", "UDP"] as const;
export const Protocol = StringEnum(PROTOCOLS, { description: "Transport protocol.", default: "TCP" });

/** CIDR and IP strings are parsed in code (spec-checks.ts) so the message can suggest a fix. */
export function CidrString(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({ type: "string", description: `${description} (CIDR, IPv4 or IPv6)` });
}

export function IpString(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({ type: "string", description: `${description} (IPv4 or IPv6 address)` });
}

export function PositiveInteger(description: string, extra: { maximum?: number; default?: number } = {}) {
  return Type.Integer({ minimum: 1, description, ...extra });
}

/** Active health checking of endpoints (a TCP connect), as a Service or a loadbalancer hop asks. */
export const HealthCheck = Type.Object(
  {
    intervalMs: PositiveInteger("Time between two checks of one endpoint, in milliseconds."),
    timeoutMs: PositiveInteger("How long a check may take before it counts as failed, in milliseconds."),
    unhealthyThreshold: Type.Optional(
      PositiveInteger("Consecutive failures that mark an endpoint unhealthy.", { default: 2 }),
    ),
    healthyThreshold: Type.Optional(
      PositiveInteger("Consecutive successes that mark an unhealthy endpoint healthy again.", { default: 1 }),
    ),
  },
  { additionalProperties: false, description: "Active health checking of the endpoints." },
);
