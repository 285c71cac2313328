// Manifest text to validated objects, with every problem located as `line:column`: what
// `catena validate` and an API request carrying YAML need. References to other objects are
// checked separately (cross-checks.ts), against the store.
import type { ErrorDetail } from "../errors.js";
import { locateDetail, parseManifests } from "./manifest.js";
import type { CatenaResource } from "./schemas.js";
import { validateResource } from "./validate.js";

export interface ManifestValidation {
  resources: { index: number; resource: CatenaResource }[];
  errors: ErrorDetail[];
}

/** Best-effort kind and name of a document, to label its errors even when it is invalid. */
export function identifyDocument(doc: unknown): { kind?: string; name?: string } {
  if (typeof doc !== "object" || doc === null) return {};
  const { kind, metadata } = doc as { kind?: unknown; metadata?: { name?: unknown } | null };
  return {
    ...(typeof kind === "string" ? { kind } : {}),
    ...(typeof metadata?.name === "string" ? { name: metadata.name } : {}),
  };
}

export function validateManifests(text: string): ManifestValidation {
  const parsed = parseManifests(text);
  const resources: ManifestValidation["resources"] = [];
  const errors: ErrorDetail[] = [...parsed.errors];
  for (const document of parsed.documents) {
    const result = validateResource(document.value);
    if (result.ok) {
      resources.push({ index: document.index, resource: result.value });
      continue;
    }
    const identity = identifyDocument(document.value);
    const located = result.errors.map((e) =>
      locateDetail(document, { document: document.index, ...identity, ...e }),
    );
    // Source order reads best; errors without a position keep their place at the end.
    located.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
    errors.push(...located);
  }
  errors.sort((a, b) => (a.document ?? 0) - (b.document ?? 0));
  return { resources, errors };
}
