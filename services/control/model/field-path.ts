// Field paths as users read them: `spec.hops[1].function`, `metadata.labels["app.kubernetes.io/name"]`.
// One format for validation errors, API error details and `locate()` in manifests.

/** A step into a document: a mapping key or a sequence index. */
export type PathSegment = string | number;

// Keys that need no quoting; anything else (dots, slashes, spaces) is written as `["..."]`.
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** The inverse of formatFieldPath; undefined when the text is not a field path. */
export function parseFieldPath(path: string): PathSegment[] | undefined {
  const segments: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === "[") {
      if (path[i + 1] === '"') {
        const end = closingQuote(path, i + 2);
        if (end < 0 || path[end + 1] !== "]") return undefined;
        try {
          segments.push(JSON.parse(path.slice(i + 1, end + 1)) as string);
        } catch {
          return undefined;
        }
        i = end + 2;
      } else {
        const end = path.indexOf("]", i);
        const digits = path.slice(i + 1, end);
        if (end < 0 || !/^\d+$/.test(digits)) return undefined;
        segments.push(Number(digits));
        i = end + 1;
      }
    } else {
      if (c === ".") {
        if (segments.length === 0) return undefined;
        i += 1;
      } else if (segments.length > 0) {
        return undefined;
      }
      const match = /^[^.[]+/.exec(path.slice(i));
      if (!match) return undefined;
      segments.push(match[0]);
      i += match[0].length;
    }
  }
  return segments;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

/**
 * Converts a JSON Pointer (ajv's `instancePath`, `/spec/hops/1/function`) into segments. Whether
 * `1` is an index or a key depends on the data, so the pointer is walked along the document.
 */
export function pointerToSegments(pointer: string, document: unknown): PathSegment[] {
  if (pointer === "") return [];
  const segments: PathSegment[] = [];
  let node: unknown = document;
  for (const raw of pointer.slice(1).split("/")) {
    const token = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node) && /^\d+$/.test(token)) {
      segments.push(Number(token));
      node = node[Number(token)];
    } else {
      segments.push(token);
      node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[token] : undefined;
    }
  }
  return segments;
}
