import { describe, expect, it } from "vitest";
import {
  cidrContains,
  complementCidrs,
  formatCidr,
  intersectCidrs,
  parseCidr,
  subtractCidrs,
} from "./cidr.js";

const c = (s: string) => {
  const r = parseCidr(s);
  if (!r) throw new Error(`bad cidr ${s}`);
  return r;
};

describe("parseCidr", () => {
  it.each([
    { input: "10.0.0.0/8", want: "10.0.0.0/8" },
    { input: "10.1.2.3/8", want: "10.0.0.0/8" },
    { input: "10.1.2.3", want: "10.1.2.3/32" },
    { input: "0.0.0.0/0", want: "0.0.0.0/0" },
    { input: "192.168.1.255/23", want: "192.168.0.0/23" },
    { input: "2001:db8::1/32", want: "2001:db8::/32" },
    { input: "::/0", want: "::/0" },
    { input: "::1", want: "::1/128" },
    { input: "fe80::/10", want: "fe80::/10" },
    { input: "::ffff:10.0.0.0/104", want: "10.0.0.0/8" },
    { input: "::ffff:10.1.2.3", want: "10.1.2.3/32" },
  ])("$input → $want", ({ input, want }) => {
    expect(formatCidr(c(input))).toBe(want);
  });

  it.each([
    "",
    "10.0.0.0/33",
    "10.0.0.0/",
    "10.0.0.0/08",
    "::/129",
    "10.0.0/8",
    "fe80::1%eth0/64",
    "x/8",
    "10.0.0.0/-1",
  ])("rejects %j", (input) => {
    expect(parseCidr(input)).toBeUndefined();
  });
});

describe("CIDR set operations", () => {
  it("contains nested blocks of the same family only", () => {
    expect(cidrContains(c("10.0.0.0/8"), c("10.9.0.0/16"))).toBe(true);
    expect(cidrContains(c("10.9.0.0/16"), c("10.0.0.0/8"))).toBe(false);
    expect(cidrContains(c("0.0.0.0/0"), c("::/128"))).toBe(false);
  });

  it("subtracts an except into disjoint blocks that cover the rest", () => {
    const out = subtractCidrs(c("127.64.0.0/16"), [c("127.64.9.0/24")]).map(formatCidr);
    expect(out).toHaveLength(8);
    expect(out).toContain("127.64.128.0/17");
    expect(out).toContain("127.64.8.0/24");
    expect(out).not.toContain("127.64.9.0/24");
    const total = subtractCidrs(c("127.64.0.0/16"), [c("127.64.9.0/24")]).reduce(
      (n, x) => n + 2 ** (32 - x.prefix),
      0,
    );
    expect(total).toBe(65536 - 256);
  });

  it("subtracts the whole block, a disjoint block, and nested excepts", () => {
    expect(subtractCidrs(c("10.0.0.0/8"), [c("0.0.0.0/0")])).toEqual([]);
    expect(subtractCidrs(c("10.0.0.0/8"), [c("11.0.0.0/8")]).map(formatCidr)).toEqual(["10.0.0.0/8"]);
    const nested = subtractCidrs(c("10.0.0.0/8"), [c("10.1.0.0/16"), c("10.1.2.0/24")]);
    expect(nested.reduce((n, x) => n + 2 ** (32 - x.prefix), 0)).toBe(2 ** 24 - 2 ** 16);
  });

  it("intersects and complements", () => {
    expect(intersectCidrs([c("10.0.0.0/8")], [c("10.1.0.0/16"), c("11.0.0.0/8")]).map(formatCidr)).toEqual([
      "10.1.0.0/16",
    ]);
    const comp = complementCidrs([c("0.0.0.0/1")]);
    expect(comp.map(formatCidr)).toEqual(["128.0.0.0/1", "::/0"]);
  });
});
