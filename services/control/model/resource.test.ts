import { describe, expect, it } from "vitest";
import { resolveKind } from "./resource.js";

describe("resolveKind", () => {
  it.each([
    ["servicechain", "ServiceChain"],
    ["ServiceChains", "ServiceChain"],
    ["sc", "ServiceChain"],
    ["SVC", "Service"],
    ["networkpolicies", "NetworkPolicy"],
    ["netpol", "NetworkPolicy"],
    ["sf", "ServiceFunction"],
    ["wl", "Workload"],
    ["net", "Network"],
  ])("%s is %s", (text, kind) => {
    expect(resolveKind(text)).toBe(kind);
  });

  it.each(["widget", "", "service-chain", "chains"])("%j is no kind", (text) => {
    expect(resolveKind(text)).toBeUndefined();
  });
});
