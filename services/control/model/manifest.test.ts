import { describe, expect, it } from "vitest";
import { locateDetail, parseManifests } from "./manifest.js";

const src = (text: string) => text.replace(/^\n/, "");

const network = (name: string) => ({
  apiVersion: "catena.dev/v1alpha1",
  kind: "Network",
  metadata: { name },
  spec: { cidr: "127.64.0.0/16" },
});

describe("parseManifests: documents", () => {
  it.each([
    {
      name: "YAML stream with empty and comment-only documents skipped",
      text: src(`
# leading comment
---
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: a}
spec: {cidr: 127.64.0.0/16}
---
---
# only a comment
---
{apiVersion: catena.dev/v1alpha1, kind: Network, metadata: {name: b}, spec: {cidr: 127.64.0.0/16}}
`),
      names: ["a", "b"],
    },
    {
      name: "JSON object",
      text: JSON.stringify(network("a"), null, 2),
      names: ["a"],
    },
    {
      name: "JSON array",
      text: JSON.stringify([network("a"), network("b")]),
      names: ["a", "b"],
    },
    {
      name: "JSON List",
      text: JSON.stringify(
        { apiVersion: "v1", kind: "List", items: [network("a"), network("b")] },
        null,
        "\t",
      ),
      names: ["a", "b"],
    },
    {
      name: "JSON {items} as `get -o json` prints it",
      text: JSON.stringify({ items: [network("a"), network("b"), network("c")] }, null, 2),
      names: ["a", "b", "c"],
    },
    {
      name: "YAML sequence of objects",
      text: "- {kind: Network, metadata: {name: a}}\n- {kind: Network, metadata: {name: b}}\n",
      names: ["a", "b"],
    },
    { name: "empty text", text: "", names: [] },
    { name: "only whitespace and comments", text: "\n# nothing\n\n", names: [] },
  ])("$name", ({ text, names }) => {
    const parsed = parseManifests(text);
    expect(parsed.errors).toEqual([]);
    expect(parsed.documents.map((d) => (d.value as { metadata: { name: string } }).metadata.name)).toEqual(
      names,
    );
    expect(parsed.documents.map((d) => d.index)).toEqual(names.map((_, i) => i));
  });

  it("expands anchors, aliases and merge keys", () => {
    const parsed = parseManifests(
      src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: c}
spec:
  service: web
  ingress: {port: 80}
  hops:
    - function: fw-a
      config: &fw {defaultAction: deny, allow: [{ports: [80]}]}
    - function: fw-b
      config:
        <<: *fw
        defaultAction: allow
`),
    );
    expect(parsed.errors).toEqual([]);
    const spec = (parsed.documents[0]!.value as { spec: { hops: { config: unknown }[] } }).spec;
    expect(spec.hops[1]!.config).toEqual({ defaultAction: "allow", allow: [{ ports: [80] }] });
  });
});

describe("parseManifests: errors", () => {
  it.each([
    {
      name: "duplicate key",
      text: "kind: Network\nmetadata: {name: a}\nkind: Service\n",
      errors: [{ document: 0, path: "", message: "Map keys must be unique", line: 3, column: 1 }],
    },
    {
      name: "bad indentation in the second document keeps the first",
      text: "kind: Network\n---\nkind: Service\nmetadata:\n  name: a\n bad: 1\n",
      documents: 1,
      line: 6,
    },
    {
      name: "unterminated flow sequence",
      text: "kind: Network\nspec: {cidr: [1\n",
      line: 3,
    },
    {
      name: "JSON with a trailing comma is fine (YAML flow), a missing brace is not",
      text: '{"kind": "Network",\n  "metadata": {"name": "a"}\n',
      line: 3,
    },
    {
      name: "alias to an unknown anchor",
      text: "kind: Network\nspec: *missing\n",
      errors: [
        {
          document: 0,
          path: "",
          message: "Unresolved alias (the anchor must be set before the alias): missing",
          line: 2,
          column: 7,
        },
      ],
    },
    {
      name: "tab indentation",
      text: "kind: Network\nspec:\n\tcidr: 10.0.0.0/8\n",
      line: 3,
    },
  ])("$name", ({ text, errors, documents, line }) => {
    const parsed = parseManifests(text);
    if (errors) expect(parsed.errors).toEqual(errors);
    expect(parsed.errors.length).toBeGreaterThan(0);
    for (const e of parsed.errors) {
      expect(e.path).toBe("");
      expect(e.line).toBeGreaterThan(0);
      expect(e.column).toBeGreaterThan(0);
      expect(e.message).not.toContain("\n");
    }
    if (line !== undefined) expect(parsed.errors[0]!.line).toBe(line);
    if (documents !== undefined) expect(parsed.documents).toHaveLength(documents);
  });

  it("numbers documents after a broken one as the user sees them", () => {
    const parsed = parseManifests("kind: A\n---\nkind: [\n---\nkind: C\n");
    expect(parsed.errors.map((e) => e.document)).toEqual([1]);
    expect(parsed.documents.map((d) => [d.index, (d.value as { kind: string }).kind])).toEqual([
      [0, "A"],
      [2, "C"],
    ]);
  });

  it("refuses a billion laughs", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      lines.push(
        `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    const parsed = parseManifests(lines.join("\n"));
    expect(parsed.documents).toEqual([]);
    expect(parsed.errors).toHaveLength(1);
  });
});

describe("ManifestDocument.locate", () => {
  const text = src(`
apiVersion: catena.dev/v1alpha1
kind: ServiceChain
metadata: {name: web-edge, labels: {app.kubernetes.io/name: web}}
spec:
  service: web
  ingress:
  hops:
    - function: edge-fw
    - function: edge-qoss
      config:
        connectionsPerSecond: 200
`);
  const doc = parseManifests(text).documents[0]!;

  it.each([
    { name: "the document", path: "", at: { line: 1, column: 1 } },
    { name: "a scalar value", path: "spec.hops[1].function", at: { line: 9, column: 17 } },
    {
      name: "a key instead of the value",
      path: "spec.hops[1].function",
      key: true,
      at: { line: 9, column: 7 },
    },
    { name: "a deep value", path: "spec.hops[1].config.connectionsPerSecond", at: { line: 11, column: 31 } },
    { name: "a quoted key", path: 'metadata.labels["app.kubernetes.io/name"]', at: { line: 3, column: 61 } },
    { name: "a block mapping: its first key", path: "spec", at: { line: 5, column: 3 } },
    { name: "an empty value: its key", path: "spec.ingress", at: { line: 6, column: 3 } },
    { name: "missing field: nearest ancestor", path: "spec.ingress.port", at: { line: 6, column: 3 } },
    { name: "missing field in a mapping", path: "spec.hops[0].config", at: { line: 8, column: 7 } },
    { name: "index past the end: the sequence", path: "spec.hops[7].function", at: { line: 8, column: 5 } },
    { name: "unparsable path: the document", path: "spec..x", at: { line: 1, column: 1 } },
  ])("$name", ({ path, key, at }) => {
    expect(doc.locate(path, key ? "key" : "value")).toEqual(at);
  });

  it("locates within JSON", () => {
    const json = '{\n  "kind": "Network",\n  "spec": {"cidr": "10.0.0.1/8"}\n}';
    expect(parseManifests(json).documents[0]!.locate("spec.cidr")).toEqual({ line: 3, column: 20 });
  });

  it("locates within items of a List, relative to the whole text", () => {
    const json = JSON.stringify({ items: [network("a"), network("b")] }, null, 2);
    const second = parseManifests(json).documents[1]!;
    const line = json.split("\n").findIndex((l) => l.includes('"b"')) + 1;
    expect(second.locate("metadata.name")).toEqual({ line, column: 17 });
  });

  it("locateDetail points unknown fields at their key and leaves located details alone", () => {
    expect(
      locateDetail(doc, { path: "spec.hops[1].function", message: 'unknown field "function"' }),
    ).toMatchObject({
      line: 9,
      column: 7,
    });
    expect(locateDetail(doc, { path: "spec.hops[1].function", message: "is bad" })).toMatchObject({
      line: 9,
      column: 17,
    });
    expect(locateDetail(doc, { path: "spec", message: "x", line: 1, column: 2 })).toMatchObject({
      line: 1,
      column: 2,
    });
  });
});
