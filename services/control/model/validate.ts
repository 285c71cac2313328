// Validation of one manifest document: envelope, metadata and the kind's spec, every problem at
// once. It never throws and never looks at other objects (see cross-checks.ts for that).
import { asRecord, checkLabelKeys, Problems } from "./field-checks.js";
import { API_VERSION, type FieldError, KINDS, type Kind, resolveKind, type Validated } from "./resource.js";
import { schemaCheck } from "./schema-validator.js";
import { ANY_RESOURCE_SCHEMA, type CatenaResource, RESOURCE_SCHEMAS } from "./schemas.js";
import { checkSpec } from "./spec-checks.js";

const resourceChecks = Object.fromEntries(KINDS.map((k) => [k, schemaCheck(RESOURCE_SCHEMAS[k])])) as Record<
  Kind,
  ReturnType<typeof schemaCheck>
>;
const envelopeCheck = schemaCheck(ANY_RESOURCE_SCHEMA);

function isKnownKind(kind: unknown): kind is Kind {
  return (KINDS as readonly unknown[]).includes(kind);
}

/**
 * Validates a document as a Catena object. On success the value is a copy holding what the user
 * owns: apiVersion, kind, metadata (name, labels, annotations, resourceVersion) and spec. Status
 * and other server-written fields are accepted on input (so `get -o yaml` output applies again)
 * and dropped. Defaults are not filled in (see applyDefaults): the store keeps what was written.
 */
export function validateResource(doc: unknown): Validated<CatenaResource> {
  const record = asRecord(doc);
  if (!record) {
    return {
      ok: false,
      errors: [{ path: "", message: "must be an object with apiVersion, kind, metadata and spec" }],
    };
  }
  const errors: FieldError[] = [];
  const kind = record.kind;
  if (isKnownKind(kind)) {
    errors.push(...resourceChecks[kind](doc), ...checkSpec(kind, record.spec));
  } else {
    for (const e of envelopeCheck(doc)) {
      const resolved = typeof kind === "string" ? resolveKind(kind) : undefined;
      // `servicechain` or `ServiceChains`: the CLI accepts those, manifests need the exact kind.
      if (e.path === "kind" && resolved)
        errors.push({ path: "kind", message: `must be ${resolved} (exact spelling)` });
      else errors.push(e);
    }
  }
  const metadata = asRecord(record.metadata);
  const problems = new Problems();
  checkLabelKeys(problems, ["metadata", "labels"], metadata?.labels);
  checkLabelKeys(problems, ["metadata", "annotations"], metadata?.annotations);
  errors.push(...problems.list);

  if (errors.length > 0 || !metadata || !isKnownKind(kind)) {
    return { ok: false, errors: dedupe(errors) };
  }
  return { ok: true, value: ownedFields(kind, metadata, record.spec) };
}

function ownedFields(kind: Kind, metadata: Record<string, unknown>, spec: unknown): CatenaResource {
  const { name, labels, annotations, resourceVersion } = metadata;
  return structuredClone({
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      ...(labels !== undefined ? { labels } : {}),
      ...(annotations !== undefined ? { annotations } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    },
    spec,
  }) as CatenaResource;
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
