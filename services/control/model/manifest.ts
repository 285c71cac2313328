// Manifest text (YAML streams or JSON) into documents that remember where each value came from,
// so an error's field path can be shown as `file:line:column`. Parsing never throws.
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  visit,
  type YAMLMap,
  type Node as YamlNode,
} from "yaml";
import type { ErrorDetail } from "../errors.js";
import { type PathSegment, parseFieldPath } from "./field-path.js";

/** 1-based, as editors count. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface ManifestDocument {
  /** Position among the non-empty documents of the text (0-based); lists count each item. */
  index: number;
  value: unknown;
  /**
   * Where a field path (`spec.hops[1].function`) is in the source: its value by default, its key
   * with `"key"` (better for an unknown field). A path that does not exist (a missing required
   * field) gives its nearest existing ancestor.
   */
  locate(path: string, at?: "value" | "key"): SourcePosition | undefined;
}

export interface ParsedManifests {
  documents: ManifestDocument[];
  errors: ErrorDetail[];
}

// Anchors and aliases are fine; a few thousand resolved aliases are a billion-laughs attack.
const MAX_ALIAS_COUNT = 1000;

/**
 * Parses YAML (several documents separated by `---`; empty ones skipped) or JSON (one object, an
 * array of objects, or a `{"kind": "List", "items": [...]}` / `{"items": [...]}` list). JSON is
 * YAML's flow syntax, so one parser handles both and positions work for either.
 */
export function parseManifests(text: string): ParsedManifests {
  const lineCounter = new LineCounter();
  const documents: ManifestDocument[] = [];
  const errors: ErrorDetail[] = [];
  const position = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  const streams = parseAllDocuments(text, {
    lineCounter,
    uniqueKeys: true,
    merge: true,
    prettyErrors: false,
  });
  // Documents that fail to parse still take an index, so later documents keep theirs.
  let next = 0;
  for (const doc of streams) {
    if (doc.errors.length > 0) {
      const index = next++;
      for (const e of doc.errors) {
        errors.push({
          document: index,
          path: "",
          message: plainYamlMessage(e.message),
          ...position(e.pos[0]),
        });
      }
      continue;
    }
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) continue;
    for (const node of listItems(root)) {
      if (isScalar(node) && node.value === null) continue;
      const index = next++;
      let value: unknown;
      try {
        value = node.toJS(doc, { maxAliasCount: MAX_ALIAS_COUNT });
      } catch (err) {
        // Too many aliases, or an alias to an anchor not defined before it.
        errors.push({
          document: index,
          path: "",
          message: (err as Error).message,
          ...rangeStart(unresolvedAlias(doc, node) ?? node, position),
        });
        continue;
      }
      documents.push({
        index,
        value,
        locate: (path, at = "value") => locateIn(doc, node, path, at, position),
      });
    }
  }
  return { documents, errors };
}

/** A top-level sequence, or a List object, stands for its items; anything else is one document. */
function listItems(root: YamlNode): YamlNode[] {
  if (isSeq(root)) return root.items.filter((n): n is YamlNode => n !== null && typeof n === "object");
  if (isMap(root)) {
    const items = root.get("items", true);
    const kind = root.get("kind");
    if (isSeq(items) && (kind === undefined || kind === "List") && !root.has("spec")) {
      return items.items.filter((n): n is YamlNode => n !== null && typeof n === "object");
    }
  }
  return [root];
}

// yaml's messages may end with a code-frame or position; ErrorDetail carries the position itself.
function plainYamlMessage(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function rangeStart(node: YamlNode, position: (offset: number) => SourcePosition): Partial<SourcePosition> {
  return node.range ? position(node.range[0]) : {};
}

type NodeLike = YamlNode | null | undefined;

function unresolvedAlias(doc: Document, node: YamlNode): YamlNode | undefined {
  let found: YamlNode | undefined;
  visit(node, {
    Alias(_, alias) {
      if (alias.resolve(doc) !== undefined) return undefined;
      found = alias;
      return visit.BREAK;
    },
  });
  return found;
}

function deref(doc: Document, node: NodeLike): NodeLike {
  return isAlias(node) ? (node.resolve(doc) as NodeLike) : node;
}

interface Found {
  key: NodeLike;
  value: NodeLike;
}

// With `merge: true`, yaml represents `<<` as a Symbol-valued scalar.
function isMergeKey(key: NodeLike): boolean {
  if (!isScalar(key)) return false;
  const { value } = key;
  return value === "<<" || (typeof value === "symbol" && value.description === "<<");
}

/** Finds a key in a mapping, following `<<` merge keys as YAML merges them. */
function findInMap(doc: Document, map: YAMLMap, segment: PathSegment, depth = 0): Found | undefined {
  for (const pair of map.items) {
    const key = pair.key as NodeLike;
    if (isScalar(key) && typeof key.value !== "symbol" && String(key.value) === String(segment))
      return { key, value: pair.value as NodeLike };
  }
  if (depth > 10) return undefined;
  for (const pair of map.items) {
    const key = pair.key as NodeLike;
    if (!isMergeKey(key)) continue;
    const source = deref(doc, pair.value as NodeLike);
    const sources = isSeq(source) ? source.items.map((n) => deref(doc, n as NodeLike)) : [source];
    for (const s of sources) {
      if (!isMap(s)) continue;
      const found = findInMap(doc, s, segment, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

function locateIn(
  doc: Document,
  root: YamlNode,
  path: string,
  at: "value" | "key",
  position: (offset: number) => SourcePosition,
): SourcePosition | undefined {
  const start = (node: NodeLike): SourcePosition | undefined =>
    node?.range ? position(node.range[0]) : undefined;
  const segments = parseFieldPath(path) ?? [];
  let node: NodeLike = root;
  let best = start(root);
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const container = deref(doc, node);
    let found: Found | undefined;
    if (isMap(container)) found = findInMap(doc, container, segment);
    else if (isSeq(container) && typeof segment === "number") {
      const item = container.items[segment] as NodeLike;
      if (item) found = { key: undefined, value: item };
    }
    if (!found) return best;
    const last = i === segments.length - 1;
    // `key:` with nothing after it has an empty value node; the key is where to look.
    const emptyValue =
      !found.value || (isScalar(found.value) && found.value.value === null && !found.value.source);
    const target = (last && at === "key") || emptyValue ? (found.key ?? found.value) : found.value;
    best = start(target) ?? best;
    node = found.value;
  }
  return best;
}

/**
 * Adds line and column to an error about this document: at the key for an unknown field or a bad
 * key (the value may be anything), else at the value, or the nearest ancestor of a missing field.
 */
export function locateDetail<D extends { path: string; message: string; line?: number }>(
  document: ManifestDocument,
  detail: D,
): D & Partial<SourcePosition> {
  if (detail.line !== undefined) return detail;
  const aboutKey = detail.message.startsWith("unknown field") || detail.message.startsWith("invalid key");
  const at = aboutKey ? "key" : "value";
  const position = document.locate(detail.path, at);
  return position ? { ...detail, ...position } : detail;
}
