// Turns ajv's errors into FieldErrors an operator can act on: a `spec.hops[1].function` path and a
// plain message, one per problem (no cascades from anyOf branches, no JSON Schema jargon).
import type { ErrorObject } from "ajv";
import { formatFieldPath, type PathSegment, pointerToSegments } from "./field-path.js";
import type { FieldError } from "./resource.js";

type SchemaNode = Record<string, unknown>;

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  object: "an object",
  array: "a list",
  boolean: "true or false",
  null: "null",
};

function describeType(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => TYPE_NAMES[String(t)] ?? String(t)).join(" or ");
}

function quote(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function annotation(schema: unknown, key: "patternErrorMessage" | "errorMessage"): string | undefined {
  const value = typeof schema === "object" && schema !== null ? (schema as SchemaNode)[key] : undefined;
  return typeof value === "string" ? value : undefined;
}

/** What one branch of an anyOf accepts, for a one-line summary when no branch fits at all. */
function describeBranch(schema: unknown): string {
  if (typeof schema !== "object" || schema === null) return "a valid value";
  const node = schema as SchemaNode;
  if ("const" in node) return JSON.stringify(node.const);
  if (node.type === "object" && typeof node.properties === "object" && node.properties !== null) {
    return `an object with ${Object.keys(node.properties).join(", ")}`;
  }
  if (node.type !== undefined) return describeType(node.type);
  return "a valid value";
}

function messageFor(e: ErrorObject): { extra?: PathSegment; message: string } {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required":
      return { extra: String(p.missingProperty), message: "is required" };
    case "additionalProperties":
      return {
        extra: String(p.additionalProperty),
        message: `unknown field "${String(p.additionalProperty)}"`,
      };
    case "type":
      return { message: `must be ${describeType(p.type)}` };
    case "enum":
      return { message: `must be one of: ${(p.allowedValues as unknown[]).map(quote).join(", ")}` };
    case "const":
      return { message: `must be ${JSON.stringify(p.allowedValue)}` };
    case "minimum":
    case "maximum": {
      const parent = (e.parentSchema ?? {}) as SchemaNode;
      if (typeof parent.minimum === "number" && typeof parent.maximum === "number") {
        return { message: `must be between ${parent.minimum} and ${parent.maximum}` };
      }
      return { message: `must be at ${e.keyword === "minimum" ? "least" : "most"} ${String(p.limit)}` };
    }
    case "exclusiveMinimum":
      return { message: `must be greater than ${String(p.limit)}` };
    case "exclusiveMaximum":
      return { message: `must be less than ${String(p.limit)}` };
    case "minLength":
      return {
        message: p.limit === 1 ? "must not be empty" : `must be at least ${String(p.limit)} characters`,
      };
    case "maxLength":
      return { message: `must be at most ${String(p.limit)} characters` };
    case "minItems":
      return {
        message:
          p.limit === 1 ? "must have at least one item" : `must have at least ${String(p.limit)} items`,
      };
    case "maxItems":
      return { message: `must have at most ${String(p.limit)} items` };
    case "uniqueItems": {
      // Point at the later of the two equal items.
      const [first, later] = [Number(p.i), Number(p.j)].sort((a, b) => a - b);
      return { extra: later, message: `repeats item ${first}` };
    }
    case "minProperties":
    case "maxProperties":
      return {
        message:
          annotation(e.parentSchema, "errorMessage") ??
          `must have at ${e.keyword === "minProperties" ? "least" : "most"} ${String(p.limit)} field(s)`,
      };
    case "pattern":
      return {
        message: annotation(e.parentSchema, "patternErrorMessage") ?? `must match ${String(p.pattern)}`,
      };
    case "format":
      return { message: `must be a valid ${String(p.format)}` };
    default:
      return { message: e.message ?? "is invalid" };
  }
}

const SHAPE_KEYWORDS = new Set(["type", "const", "enum"]);

function isAlternatives(e: ErrorObject): boolean {
  return e.keyword === "anyOf" || e.keyword === "oneOf";
}

/** The branch of a failing anyOf/oneOf `group` that error `e` comes from, if it comes from one. */
function branchOf(e: ErrorObject, group: ErrorObject): number | undefined {
  if (!e.schemaPath.startsWith(`${group.schemaPath}/`)) return undefined;
  // The same schema applies to many items; the error must also concern this item.
  if (e.instancePath !== group.instancePath && !e.instancePath.startsWith(`${group.instancePath}/`)) {
    return undefined;
  }
  const next = e.schemaPath.slice(group.schemaPath.length + 1).split("/")[0];
  return next !== undefined && /^\d+$/.test(next) ? Number(next) : undefined;
}

export function schemaErrorsToFieldErrors(
  errors: readonly ErrorObject[],
  data: unknown,
  prefix: readonly PathSegment[] = [],
): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  const push = (segments: PathSegment[], message: string) => {
    const path = formatFieldPath([...prefix, ...segments]);
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ path, message });
  };

  const visit = (list: readonly ErrorObject[]): void => {
    // anyOf/oneOf report every branch's errors. Keep those of the one branch whose shape (type,
    // const) fits the data; if none or several fit, say once what the value may be. Only the
    // outermost groups are decided here; groups nested in the kept branch are decided recursively.
    const groups = list.filter(isAlternatives);
    const outer = groups.filter((g) => !groups.some((h) => h !== g && branchOf(g, h) !== undefined));
    const owner = new Map<ErrorObject, ErrorObject>();
    for (const g of outer) for (const e of list) if (branchOf(e, g) !== undefined) owner.set(e, g);
    const decided = new Set<ErrorObject>();
    for (const e of list) {
      const group = outer.includes(e) ? e : owner.get(e);
      if (group) {
        if (!decided.has(group)) {
          decided.add(group);
          decide(
            group,
            list.filter((m) => owner.get(m) === group),
          );
        }
        continue;
      }
      if (e.keyword === "propertyNames" || e.keyword === "if") continue;
      const segments = pointerToSegments(e.instancePath, data);
      // Errors about a key itself (propertyNames) carry the key; point at it.
      if (e.propertyName !== undefined) {
        push([...segments, e.propertyName], `invalid key: ${messageFor(e).message}`);
        continue;
      }
      const { extra, message } = messageFor(e);
      push(extra === undefined ? segments : [...segments, extra], message);
    }
  };

  const decide = (group: ErrorObject, members: readonly ErrorObject[]): void => {
    const branches = new Map<number, ErrorObject[]>();
    for (const e of members) {
      const i = branchOf(e, group)!;
      branches.set(i, [...(branches.get(i) ?? []), e]);
    }
    const alternatives = Array.isArray(group.schema) ? (group.schema as unknown[]) : [];
    // A branch fits the shape when none of its errors says the value itself has the wrong type.
    const fitting = [...branches.values()].filter(
      (es) => !es.some((e) => e.instancePath === group.instancePath && SHAPE_KEYWORDS.has(e.keyword)),
    );
    if (fitting.length === 1) {
      visit(fitting[0]!);
      return;
    }
    const summary =
      annotation(group.parentSchema, "errorMessage") ??
      `must be ${alternatives.map(describeBranch).join(" or ")}`;
    push(pointerToSegments(group.instancePath, data), summary);
  };

  visit([...errors]);
  return out;
}
