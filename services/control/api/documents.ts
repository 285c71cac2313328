// Turns a request body into manifest documents. YAML and JSON text are parsed here, so errors
// carry line and column; an already-parsed JSON body carries document indices and paths.
import { CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";
import { locateDetail, type ManifestDocument, parseManifests } from "../model/index.js";

export interface RequestDocuments {
  values: unknown[];
  /** Present when the body was text: the parsed documents, which know their positions. */
  sources?: ManifestDocument[];
}

export function documentsFromBody(body: unknown): RequestDocuments {
  if (typeof body === "string") {
    const parsed = parseManifests(body);
    if (parsed.errors.length > 0) {
      throw new CatenaError(ErrorCode.Invalid, "the manifest does not parse", parsed.errors);
    }
    return { values: parsed.documents.map((d) => d.value), sources: parsed.documents };
  }
  if (Array.isArray(body)) return { values: body };
  if (typeof body === "object" && body !== null) {
    const record = body as Record<string, unknown>;
    if ("items" in record) {
      const extra = Object.keys(record).filter((k) => k !== "items" && k !== "kind" && k !== "apiVersion");
      if (extra.length > 0 || !Array.isArray(record.items)) {
        const details: ErrorDetail[] = extra.map((k) => ({ path: k, message: `unknown field "${k}"` }));
        if (!Array.isArray(record.items)) details.push({ path: "items", message: "must be an array" });
        throw new CatenaError(ErrorCode.Invalid, "malformed request body", details);
      }
      return { values: record.items };
    }
    return { values: [body] };
  }
  throw new CatenaError(ErrorCode.Invalid, "the request body must be a manifest (YAML or JSON)", [
    { path: "", message: "empty or not an object" },
  ]);
}

/** Adds line and column to details of a request whose source text the server parsed. */
export function locateDetails(details: ErrorDetail[], docs: RequestDocuments): ErrorDetail[] {
  const { sources } = docs;
  if (!sources) return details;
  return details.map((d) => {
    const source = d.document === undefined ? undefined : sources[d.document];
    return source ? locateDetail(source, d) : d;
  });
}
