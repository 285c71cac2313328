import { describe, expect, it } from "vitest";
import { silentLogger } from "../../xds/logger.js";
import {
  ACCEPT,
  accept,
  defineFunction,
  deny,
  FunctionRegistry,
  type NetworkFilter,
} from "./define-function.js";
import { FilterChain } from "./filter-chain.js";
import type { Throttle } from "./pump.js";
import { invalid, valid } from "./validated.js";

const T1 = "type.googleapis.com/acme.v1.One";
const T2 = "type.googleapis.com/acme.v1.Two";

const pass = (name: string, types: string[]) =>
  defineFunction<{ n: number }>({
    name,
    configTypes: types,
    parseConfig: (raw) =>
      typeof raw === "object" && raw !== null && typeof (raw as { n?: unknown }).n === "number"
        ? valid({ n: (raw as { n: number }).n })
        : invalid([{ path: "n", message: "must be a number" }]),
    createFilter: () => ({ onConnection: () => ACCEPT }),
  });

describe("defineFunction", () => {
  it.each([
    {
      name: "a name that is not a DNS label",
      spec: { name: "Bad_Name" },
      error: /name: must be a DNS-1123 label/,
    },
    { name: "a config type that is not a URL", spec: { configTypes: ["nope"] }, error: /configTypes\[0\]/ },
    { name: "a config type listed twice", spec: { configTypes: [T1, T1] }, error: /listed twice/ },
  ])("refuses $name", ({ spec, error }) => {
    expect(() =>
      defineFunction({
        name: "ok",
        configTypes: [T1],
        parseConfig: () => valid({}),
        createFilter: () => ({ onConnection: () => ACCEPT }),
        ...spec,
      }),
    ).toThrow(error);
  });
});

describe("FunctionRegistry", () => {
  it("is empty until functions are registered (nothing registers on import)", () => {
    expect(new FunctionRegistry().names()).toEqual([]);
  });

  it("refuses a second function with the same name or type URL", () => {
    const r = new FunctionRegistry();
    r.register(pass("one", [T1]));
    expect(() => r.register(pass("one", [T2]))).toThrow(
      expect.objectContaining({ code: "CATENA_SDK_DUPLICATE_REGISTRATION" }),
    );
    expect(() => r.register(pass("two", [T1]))).toThrow(/already handled by one/);
    expect(r.typeUrls()).toEqual([T1]);
  });

  it("refuses what defineFunction did not make", () => {
    const fake = { name: "x", configTypes: [], parseConfig: () => valid({}), createFilter: () => ({}) };
    expect(() => new FunctionRegistry().register(fake as never)).toThrow(/not a defineFunction/);
  });

  it("prepares a config with its function, or names what is wrong", () => {
    const r = new FunctionRegistry();
    r.register(pass("one", [T1]));
    expect(r.prepare(T1, { n: 1 }).ok).toBe(true);
    expect(r.prepare(T1, {})).toEqual({ ok: false, errors: [{ path: "n", message: "must be a number" }] });
    expect(r.prepare(T2, {})).toMatchObject({
      ok: false,
      errors: [{ message: expect.stringMatching(/no function handles/) }],
    });
  });

  it("a parser that throws rejects the config instead of throwing", () => {
    const r = new FunctionRegistry();
    r.register(
      defineFunction({
        name: "boom",
        configTypes: [T1],
        parseConfig: () => {
          throw new Error("kaput");
        },
        createFilter: () => ({ onConnection: () => ACCEPT }),
      }),
    );
    expect(r.prepare(T1, {})).toMatchObject({ ok: false, errors: [{ message: /parseConfig threw: kaput/ }] });
  });
});

const conn = {
  id: 1,
  source: { address: "10.0.0.1", port: 1 },
  destination: { address: "10.0.0.2", port: 80 },
  peer: { address: "10.0.0.1", port: 1 },
  chain: "c",
  hop: 0,
  listener: "c/0",
};

function chainOf(...filters: NetworkFilter[]): FilterChain {
  return new FilterChain(
    filters.map((filter, i) => ({ filter, function: "t", name: `f${i}` })),
    silentLogger,
  );
}

describe("FilterChain", () => {
  it("decides synchronously when every filter does, and the last hash key wins", () => {
    let out: unknown;
    chainOf({ onConnection: () => accept("a") }, { onConnection: () => accept("b") }).decide(conn, (v, n) => {
      out = { v, n };
    });
    expect(out).toEqual({ v: { allow: true, hashKey: "b" }, n: 2 });
  });

  it("stops at the first deny; only the filters before it see the close", async () => {
    const closed: string[] = [];
    const c = chainOf(
      { onConnection: () => ACCEPT, onClose: () => closed.push("a") },
      { onConnection: async () => deny("no"), onClose: () => closed.push("b") },
      { onConnection: () => ACCEPT, onClose: () => closed.push("c") },
    );
    const [v, n] = await new Promise<[unknown, number]>((r) => c.decide(conn, (v, n) => r([v, n])));
    expect(v).toEqual({ allow: false, reason: "no" });
    c.closed(conn, n, { bytesUp: 0, bytesDown: 0, durationMs: 0, connected: false });
    expect(closed).toEqual(["a"]);
  });

  it("a filter that throws denies the connection, nothing else", () => {
    let out: unknown;
    chainOf({
      onConnection: () => {
        throw new Error("bug");
      },
    }).decide(conn, (v) => {
      out = v;
    });
    expect(out).toEqual({ allow: false, reason: "filter_error" });
  });

  it("combines throttles: a grant needs both", () => {
    const t = (budget: number): Throttle => ({ grant: (w) => Math.min(w, budget), waitMs: () => 5 });
    const c = chainOf(
      { onConnection: () => ACCEPT, wrapStreams: () => ({ up: t(10) }) },
      { onConnection: () => ACCEPT, wrapStreams: () => ({ up: t(4) }) },
    );
    const w = c.wrap(conn);
    expect(w.up?.grant(100)).toBe(4);
    expect(w.down).toBeUndefined();
  });
});
