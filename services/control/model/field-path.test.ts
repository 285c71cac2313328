import { describe, expect, it } from "vitest";
import { formatFieldPath, type PathSegment, parseFieldPath, pointerToSegments } from "./field-path.js";

describe("field paths", () => {
  it.each<{ name: string; segments: PathSegment[]; path: string }>([
    { name: "document itself", segments: [], path: "" },
    {
      name: "nested keys and indices",
      segments: ["spec", "hops", 1, "function"],
      path: "spec.hops[1].function",
    },
    { name: "key with a hyphen", segments: ["metadata", "labels", "my-key"], path: "metadata.labels.my-key" },
    {
      name: "key with dots and slash",
      segments: ["metadata", "labels", "app.kubernetes.io/name"],
      path: 'metadata.labels["app.kubernetes.io/name"]',
    },
    { name: "numeric key of a map", segments: ["labels", "1"], path: 'labels["1"]' },
    { name: "key with a quote", segments: ["a", 'x"y'], path: 'a["x\\"y"]' },
  ])("$name round-trips", ({ segments, path }) => {
    expect(formatFieldPath(segments)).toBe(path);
    expect(parseFieldPath(path)).toEqual(segments);
  });

  it.each(["spec..x", ".spec", "spec[x]", 'spec["x]', "spec[1]x"])("rejects %s", (path) => {
    expect(parseFieldPath(path)).toBeUndefined();
  });

  it("reads array indices from the data, not the pointer", () => {
    const doc = { spec: { hops: [{ function: "a" }], labels: { "0": "x" } } };
    expect(pointerToSegments("/spec/hops/0/function", doc)).toEqual(["spec", "hops", 0, "function"]);
    expect(pointerToSegments("/spec/labels/0", doc)).toEqual(["spec", "labels", "0"]);
    expect(pointerToSegments("/a~1b/c~0d", {})).toEqual(["a/b", "c~d"]);
  });
});
