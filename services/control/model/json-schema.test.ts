import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { manifestJsonSchema } from "./json-schema.js";
import { parseManifests } from "./manifest.js";
import { createAjv } from "./schema-validator.js";

const example = readFileSync(new URL("./fixtures/design-example.yaml", import.meta.url), "utf8");
const documents = parseManifests(example).documents.map((d) => d.value);

// What an editor does: a stock draft-07 validator that ignores keywords it does not know.
const stock = new Ajv({ allErrors: true, strict: false }).compile(manifestJsonSchema());
// And ours, strict, which knows the annotation keywords.
const strict = createAjv().compile(manifestJsonSchema());

const broken = (patch: (doc: Record<string, unknown>) => void) => {
  const doc = structuredClone(documents[5]) as Record<string, unknown>; // the ServiceChain
  patch(doc);
  return doc;
};

describe("manifestJsonSchema", () => {
  it("is a draft-07 document with titles and descriptions for editors", () => {
    const schema = manifestJsonSchema();
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(schema.title).toBe("Catena manifest");
    expect(JSON.stringify(schema)).toContain('"description"');
    // Plain JSON: TypeBox's Symbol-keyed metadata does not leak.
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it.each(documents.map((doc, i) => ({ doc, name: `${i}` })))(
    "accepts DESIGN.md's document $name",
    ({ doc }) => {
      expect(stock(doc), JSON.stringify(stock.errors)).toBe(true);
      expect(strict(doc), JSON.stringify(strict.errors)).toBe(true);
    },
  );

  it.each([
    {
      name: "misspelled hop field",
      doc: broken((d) => {
        (d.spec as { hops: Record<string, unknown>[] }).hops[0]!.fn = "x";
      }),
      pointer: "/spec/hops/0",
    },
    {
      name: "unknown placement",
      doc: broken((d) => {
        (d.spec as Record<string, unknown>).placement = "merged";
      }),
      pointer: "/spec/placement",
    },
    {
      name: "Network spec under a ServiceChain kind",
      doc: broken((d) => {
        d.spec = { cidr: "10.0.0.0/8" };
      }),
      pointer: "/spec",
    },
    {
      name: "bad name",
      doc: broken((d) => {
        d.metadata = { name: "Web_Edge" };
      }),
      pointer: "/metadata/name",
    },
    {
      name: "wrong apiVersion",
      doc: broken((d) => {
        d.apiVersion = "v1";
      }),
      pointer: "/apiVersion",
    },
    {
      name: "unknown kind",
      doc: broken((d) => {
        d.kind = "Chain";
      }),
      pointer: "/kind",
    },
  ])("rejects $name", ({ doc, pointer }) => {
    for (const validate of [stock, strict]) {
      expect(validate(doc)).toBe(false);
      expect(validate.errors?.map((e) => e.instancePath)).toContain(pointer);
    }
  });
});
