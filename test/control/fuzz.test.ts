// 2,000 randomly mutated manifests: each gets a 4xx with a message, never a 5xx, and the store
// does not move. Every case carries at least one mutation that makes it invalid, plus random noise.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { settled, startTestControl, type TestControl } from "../support/control.js";

const EXAMPLE = readFileSync(new URL("../../deploy/examples/edge-chain/chain.yaml", import.meta.url), "utf8");
const BASE = parseAllDocuments(EXAMPLE).map((d) => d.toJSON() as Record<string, unknown>);

type Doc = Record<string, unknown>;
type Mutation = (doc: Doc) => void;

const notDnsLabel = fc
  .string({ minLength: 0, maxLength: 80 })
  .filter((s) => !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) || s.length > 63);
const notObject = fc.oneof(
  fc.integer(),
  fc.string(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const badPort = fc.oneof(
  fc.integer({ max: 0 }),
  fc.integer({ min: 65536 }),
  fc.double({ min: 1.1, max: 100, noInteger: true }),
);

/** Maps whose keys are free (labels, selectors) are left out: any key is valid there. */
const FREE_KEYS = new Set(["labels", "annotations", "selector"]);

function objectsIn(value: unknown, out: Doc[] = []): Doc[] {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    out.push(value as Doc);
    for (const [k, v] of Object.entries(value)) if (!FREE_KEYS.has(k)) objectsIn(v, out);
  } else if (Array.isArray(value)) for (const v of value) objectsIn(v, out);
  return out;
}

const spec = (doc: Doc) => doc.spec as Doc;

/** Mutations that always make a document invalid. */
const invalidating: fc.Arbitrary<Mutation> = fc.oneof(
  notDnsLabel.map((name) => (doc: Doc) => {
    (doc.metadata as Doc).name = name;
  }),
  fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 12 })).map(([i, key]) => (doc: Doc) => {
    const objects = objectsIn(doc);
    const target = objects[i % objects.length] as Doc;
    target[`zz_${key}`] = 1;
  }),
  fc.constantFrom("apiVersion", "kind", "metadata", "spec").map((field) => (doc: Doc) => {
    delete doc[field];
  }),
  fc
    .string()
    .filter(
      (k) =>
        !["Network", "Workload", "Service", "ServiceFunction", "ServiceChain", "NetworkPolicy"].includes(k),
    )
    .map((kind) => (doc: Doc) => {
      doc.kind = kind;
    }),
  notObject.map((value) => (doc: Doc) => {
    doc.spec = value;
  }),
  badPort.map((port) => (doc: Doc) => {
    if (doc.kind === "Service") ((spec(doc).ports as Doc[])[0] as Doc).port = port;
    else if (doc.kind === "ServiceChain") (spec(doc).ingress as Doc).port = port;
    else doc.apiVersion = "catena.dev/v0";
  }),
  fc.string({ minLength: 1 }).map((suffix) => (doc: Doc) => {
    if (doc.kind === "ServiceChain") ((spec(doc).hops as Doc[])[0] as Doc).function = `missing-${suffix}`;
    else if (doc.kind === "Service") spec(doc).network = `missing-${suffix}`;
    else doc.apiVersion = `v${suffix}`;
  }),
);

/** Noise that may or may not be valid on its own. */
const noise: fc.Arbitrary<Mutation> = fc
  .tuple(fc.nat(), fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }))
  .map(([i, key, value]) => (doc: Doc) => {
    const objects = objectsIn(doc);
    const target = objects[i % objects.length] as Doc;
    const keys = Object.keys(target);
    target[keys.length > 0 && i % 2 === 0 ? (keys[i % keys.length] as string) : key] = value;
  });

let control: TestControl;

beforeAll(async () => {
  control = await startTestControl();
  const res = await fetch(new URL("/v1/apply", control.url), {
    method: "POST",
    headers: { "content-type": "application/yaml" },
    body: EXAMPLE,
  });
  expect(res.status).toBe(200);
  await settled(control);
});

afterAll(async () => {
  await control?.stop();
});

describe("fuzzed manifests", () => {
  it("gets a 4xx with a message for each of 2,000 mutated manifests and leaves the store as it was", async () => {
    const revision = control.server.store.revision();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: BASE.length - 1 }),
        invalidating,
        fc.array(noise, { maxLength: 2 }),
        fc.boolean(),
        async (index, mutate, extra, asYaml) => {
          const docs = structuredClone(BASE);
          const doc = docs[index] as Doc;
          for (const m of extra) m(doc);
          try {
            mutate(doc);
          } catch {
            // Noise already broke the shape this mutation expects: break the kind instead.
            doc.kind = 42;
          }
          const res = await fetch(new URL("/v1/apply", control.url), {
            method: "POST",
            headers: { "content-type": asYaml ? "application/yaml" : "application/json" },
            body: asYaml
              ? docs.map((d) => JSON.stringify(d)).join("\n---\n")
              : JSON.stringify({ items: docs }),
          });
          const body = (await res.json()) as { error?: { message?: string } };
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          expect(body.error?.message).toBeTruthy();
        },
      ),
      { numRuns: 2000 },
    );
    expect(control.server.store.revision()).toBe(revision);
    expect((await fetch(new URL("/healthz", control.url))).status).toBe(200);
  }, 120_000);

  it("answers random bytes with a 4xx", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.constantFrom("application/yaml", "application/json"),
        async (bytes, type) => {
          const res = await fetch(new URL("/v1/apply", control.url), {
            method: "POST",
            headers: { "content-type": type },
            body: bytes,
          });
          expect(res.status).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });
});
