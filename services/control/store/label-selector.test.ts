// Label selector syntax (Kubernetes equality-based) and matching.
import { describe, expect, it } from "vitest";
import { formatLabelSelector, matchesSelector, parseLabelSelector } from "./label-selector.js";
import type { LabelSelector } from "./store.js";

const valid: Array<{ name: string; input: string; output: LabelSelector }> = [
  { name: "empty selects everything", input: "", output: {} },
  { name: "blank selects everything", input: "   ", output: {} },
  { name: "equals", input: "app=web", output: { equals: { app: "web" } } },
  { name: "double equals", input: "app==web", output: { equals: { app: "web" } } },
  { name: "not equals", input: "tier!=db", output: { notEquals: { tier: "db" } } },
  { name: "exists", input: "env", output: { exists: ["env"] } },
  { name: "does not exist", input: "!legacy", output: { notExists: ["legacy"] } },
  {
    name: "all together, with spaces",
    input: " app = web , tier!=db,env, ! legacy ",
    output: { equals: { app: "web" }, notEquals: { tier: "db" }, exists: ["env"], notExists: ["legacy"] },
  },
  { name: "empty value", input: "app=", output: { equals: { app: "" } } },
  { name: "prefixed key", input: "catena.dev/role=edge", output: { equals: { "catena.dev/role": "edge" } } },
  { name: "value with dots, dashes, underscores", input: "v=1.2_3-a", output: { equals: { v: "1.2_3-a" } } },
  {
    name: "the same requirement twice",
    input: "app=web,app=web,env,env",
    output: { equals: { app: "web" }, exists: ["env"] },
  },
];

const invalid: Array<{ name: string; input: string; error: RegExp; path: string }> = [
  { name: "empty requirement", input: "app=web,,env", error: /empty requirement/, path: "labelSelector[1]" },
  { name: "trailing comma", input: "app=web,", error: /empty requirement/, path: "labelSelector[1]" },
  { name: "missing key", input: "=web", error: /missing label key/, path: "labelSelector[0]" },
  { name: "bad key", input: "-app=web", error: /invalid label key/, path: "labelSelector[0]" },
  { name: "bad prefix", input: "Catena.Dev/x=1", error: /prefix/, path: "labelSelector[0]" },
  { name: "bad value", input: "app=web!", error: /invalid label value/, path: "labelSelector[0]" },
  {
    name: "value too long",
    input: `app=${"a".repeat(64)}`,
    error: /invalid label value/,
    path: "labelSelector[0]",
  },
  { name: "triple equals", input: "app===web", error: /invalid label value/, path: "labelSelector[0]" },
  { name: "set-based in", input: "env in (prod)", error: /not supported/, path: "labelSelector[0]" },
  { name: "conflicting equals", input: "app=web,app=api", error: /conflicting/, path: "labelSelector[1]" },
  {
    name: "two != on one key",
    input: "tier!=db,tier!=cache",
    error: /one != requirement/,
    path: "labelSelector[1]",
  },
];

describe("parseLabelSelector", () => {
  it.each(valid)("parses: $name", ({ input, output }) => {
    const parsed = parseLabelSelector(input);
    expect(parsed).toEqual({ ok: true, value: output });
    // Round trip through the text form.
    if (parsed.ok) expect(parseLabelSelector(formatLabelSelector(parsed.value))).toEqual(parsed);
  });

  it.each(invalid)("rejects: $name", ({ input, error, path }) => {
    const parsed = parseLabelSelector(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.errors[0]?.message).toMatch(error);
      expect(parsed.errors[0]?.path).toBe(path);
    }
  });

  it("reports every bad requirement at once, under the given path", () => {
    const parsed = parseLabelSelector("=a,b,c=d!,", "query.labelSelector");
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.errors.map((e) => e.path)).toEqual([
        "query.labelSelector[0]",
        "query.labelSelector[2]",
        "query.labelSelector[3]",
      ]);
    }
  });
});

describe("matchesSelector", () => {
  const labels = { app: "web", tier: "front", env: "" };
  const cases: Array<{
    name: string;
    selector: string;
    labels: Record<string, string> | undefined;
    match: boolean;
  }> = [
    { name: "empty selector matches anything", selector: "", labels, match: true },
    { name: "empty selector matches no labels", selector: "", labels: undefined, match: true },
    { name: "equals holds", selector: "app=web", labels, match: true },
    { name: "equals differs", selector: "app=api", labels, match: false },
    { name: "equals on a missing key", selector: "zone=a", labels, match: false },
    { name: "equals empty value", selector: "env=", labels, match: true },
    { name: "not equals holds", selector: "tier!=db", labels, match: true },
    { name: "not equals fails", selector: "tier!=front", labels, match: false },
    { name: "not equals matches a missing key", selector: "zone!=a", labels, match: true },
    { name: "not equals matches no labels", selector: "zone!=a", labels: undefined, match: true },
    { name: "exists with an empty value", selector: "env", labels, match: true },
    { name: "exists fails", selector: "zone", labels, match: false },
    { name: "does not exist holds", selector: "!legacy", labels, match: true },
    { name: "does not exist fails", selector: "!app", labels, match: false },
    { name: "all must hold", selector: "app=web,tier!=db,env,!legacy", labels, match: true },
    { name: "one failing fails all", selector: "app=web,tier!=db,env,!tier", labels, match: false },
    { name: "prototype keys are not labels", selector: "constructor", labels: {}, match: false },
    { name: "prototype keys do not exist", selector: "!toString", labels: {}, match: true },
  ];

  it.each(cases)("$name", ({ selector, labels: l, match }) => {
    const parsed = parseLabelSelector(selector);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    expect(matchesSelector(l, parsed.value)).toBe(match);
  });
});
