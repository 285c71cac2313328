import { describe, expect, it } from "vitest";
import { messageType } from "../protos.js";
import { decodeAny } from "../resource.js";
import { edsCluster } from "../resources/cluster.js";
import { invalid, valid } from "../validated.js";
import { clusterType } from "./cluster.js";
import { withValidation } from "./resource-type.js";

const clusterBytes = (name: string): Uint8Array =>
  decodeAny(edsCluster({ name }).any)?.value ?? new Uint8Array();

describe("ResourceType.decode never throws", () => {
  it.each([
    { name: "undecodable bytes", input: Uint8Array.from([0x0a, 0x09, 0x41]), error: /cannot decode/ },
    {
      name: "no name",
      input: (() => {
        const T = messageType("envoy.config.cluster.v3.Cluster");
        return T.encode(T.fromObject({ type: "EDS" })).finish();
      })(),
      error: /^name: must be set$/,
    },
  ])("$name is an error with its field path", ({ input, error }) => {
    const d = clusterType.decode(input);
    expect(d.ok).toBe(false);
    if (!d.ok)
      expect(d.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ")).toMatch(error);
  });

  it("withValidation keeps the name on rejection", () => {
    const t = withValidation(clusterType, (c) =>
      c.name === "ok" ? valid(c) : invalid([{ path: "name", message: "not ok" }]),
    );
    expect(t.decode(clusterBytes("ok")).ok).toBe(true);
    expect(t.decode(clusterBytes("bad"))).toEqual({
      ok: false,
      name: "bad",
      errors: [{ path: "name", message: "not ok" }],
    });
  });

  it("a throwing check rejects the resource instead of throwing", () => {
    const t = withValidation(clusterType, () => {
      throw new Error("boom");
    });
    expect(t.decode(clusterBytes("x"))).toEqual({
      ok: false,
      name: "x",
      errors: [{ path: "", message: "validation failed: boom" }],
    });
  });
});
