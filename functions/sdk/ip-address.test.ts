import { isIP, SocketAddress } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatIp, formatIpv6, parseIp, parseIpv4, parseIpv6Into, unmapIpv4 } from "./ip-address.js";

describe("parseIpv4", () => {
  it.each([
    { input: "0.0.0.0", want: 0 },
    { input: "1.2.3.4", want: 0x01020304 },
    { input: "127.0.0.1", want: 0x7f000001 },
    { input: "255.255.255.255", want: 0xffffffff },
  ])("$input", ({ input, want }) => {
    expect(parseIpv4(input)).toBe(want);
  });

  it.each([
    "",
    "1",
    "1.2.3",
    "1.2.3.4.5",
    "256.0.0.1",
    "01.2.3.4",
    "1..2.3",
    "1.2.3.4 ",
    " 1.2.3.4",
    "a.b.c.d",
    "1.2.3.1000",
  ])("rejects %j", (input) => {
    expect(parseIpv4(input)).toBe(-1);
  });

  it("agrees with node:net on dotted quads", () => {
    fc.assert(
      fc.property(fc.ipV4(), (s) => {
        const v = parseIpv4(s);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(formatIp({ family: 4, v4: v })).toBe(s);
      }),
    );
  });
});

describe("parseIpv6Into", () => {
  it.each([
    { input: "::", want: "::" },
    { input: "::1", want: "::1" },
    { input: "1::", want: "1::" },
    { input: "2001:DB8:0:0:0:0:0:1", want: "2001:db8::1" },
    { input: "2001:db8:0:0:1:0:0:1", want: "2001:db8::1:0:0:1" },
    { input: "1:2:3:4:5:6:7:8", want: "1:2:3:4:5:6:7:8" },
    { input: "1:0:3:4:5:6:7:8", want: "1:0:3:4:5:6:7:8" },
    { input: "::ffff:1.2.3.4", want: "::ffff:1.2.3.4" },
    { input: "0:0:0:0:0:ffff:102:304", want: "::ffff:1.2.3.4" },
    { input: "64:ff9b::192.0.2.33", want: "64:ff9b::c000:221" },
    { input: "fe80::1%eth0", want: "fe80::1" },
    { input: "1:2:3:4:5:6::", want: "1:2:3:4:5:6::" },
    { input: "::2:3:4:5:6:7:8", want: "0:2:3:4:5:6:7:8" },
  ])("$input", ({ input, want }) => {
    const out = new Uint8Array(16);
    expect(parseIpv6Into(input, out)).toBe(true);
    expect(formatIpv6(out)).toBe(want);
  });

  it.each([
    "",
    ":",
    ":::",
    "1:::2",
    "1::2::3",
    "12345::",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    ":1",
    "1:",
    "g::",
    "::1.2.3.4.5",
    "::1.2.3",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1.2.3.4:5",
    "1.2.3.4",
  ])("rejects %j", (input) => {
    expect(parseIpv6Into(input, new Uint8Array(16))).toBe(false);
  });

  it("matches node:net on validity and canonical text", () => {
    fc.assert(
      fc.property(fc.ipV6(), (s) => {
        const out = new Uint8Array(16);
        expect(parseIpv6Into(s, out)).toBe(true);
        const text = formatIpv6(out);
        const back = new Uint8Array(16);
        expect(parseIpv6Into(text, back)).toBe(true);
        expect(back).toEqual(out);
        // glibc prints ::/96 with a dotted tail (IPv4-compatible); RFC 5952 does not.
        if (!out.subarray(0, 12).every((b) => b === 0)) {
          expect(text).toBe(new SocketAddress({ address: s, family: "ipv6" }).address);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees with node:net on arbitrary text", () => {
    const alphabet = fc.constantFrom(..."0123456789abcdefABCDEF:.".split(""));
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 45 }), (s) => {
        expect(parseIpv6Into(s, new Uint8Array(16))).toBe(isIP(s) === 6);
      }),
      { numRuns: 5000 },
    );
  });
});

describe("parseIp", () => {
  it("keeps IPv4-mapped IPv6 as IPv6 until unmapped", () => {
    const ip = parseIp("::ffff:10.1.2.3");
    expect(ip?.family).toBe(6);
    expect(unmapIpv4(ip!)).toEqual({ family: 4, v4: 0x0a010203 });
    expect(unmapIpv4(parseIp("::1")!)).toEqual(parseIp("::1"));
  });

  it("returns undefined for neither family", () => {
    expect(parseIp("example.com")).toBeUndefined();
    expect(parseIp("1.2.3.4:80")).toBeUndefined();
  });
});
