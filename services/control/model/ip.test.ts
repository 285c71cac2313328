import { describe, expect, it } from "vitest";
import {
  type Cidr,
  cidrAddress,
  cidrContains,
  cidrSize,
  cidrsOverlap,
  formatCidr,
  formatIp,
  hostCidr,
  parseCidr,
  parseIp,
} from "./ip.js";

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

describe("parseIp and formatIp", () => {
  it.each([
    { name: "IPv4", text: "127.64.0.40", family: 4, canonical: "127.64.0.40" },
    { name: "IPv4 zero", text: "0.0.0.0", family: 4, canonical: "0.0.0.0" },
    { name: "IPv6 loopback", text: "::1", family: 6, canonical: "::1" },
    { name: "IPv6 unspecified", text: "::", family: 6, canonical: "::" },
    {
      name: "IPv6 full form compresses",
      text: "fd00:0064:0000:0000:0000:0000:0000:0001",
      family: 6,
      canonical: "fd00:64::1",
    },
    { name: "IPv6 upper case", text: "FD00::AB", family: 6, canonical: "fd00::ab" },
    { name: "IPv6 longest zero run wins", text: "1:0:0:2:0:0:0:3", family: 6, canonical: "1:0:0:2::3" },
    { name: "IPv6 first run on a tie", text: "1:0:0:2:3:0:0:4", family: 6, canonical: "1::2:3:0:0:4" },
    {
      name: "IPv6 single zero group not compressed",
      text: "1:0:2:3:4:5:6:7",
      family: 6,
      canonical: "1:0:2:3:4:5:6:7",
    },
    { name: "IPv4-mapped IPv6", text: "::ffff:127.0.0.1", family: 6, canonical: "::ffff:127.0.0.1" },
    {
      name: "IPv4 tail after groups",
      text: "64:ff9b::192.0.2.33",
      family: 6,
      canonical: "64:ff9b::c000:221",
    },
  ])("$name", ({ text, family, canonical }) => {
    const ip = parseIp(text);
    expect(ip?.family).toBe(family);
    expect(formatIp(ip!)).toBe(canonical);
  });

  it.each([
    { name: "octet over 255", text: "127.0.0.256" },
    { name: "leading zero (octal to some tools)", text: "010.0.0.1" },
    { name: "three octets", text: "10.0.1" },
    { name: "hostname", text: "web.example" },
    { name: "IPv6 zone id", text: "fe80::1%eth0" },
    { name: "two ::", text: "1::2::3" },
    { name: "empty", text: "" },
  ])("rejects $name", ({ text }) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe("parseCidr", () => {
  it.each([
    { name: "IPv4 /16", text: "127.64.0.0/16", size: 65536n },
    { name: "IPv4 /32", text: "10.1.2.3/32", size: 1n },
    { name: "IPv4 /0", text: "0.0.0.0/0", size: 1n << 32n },
    { name: "IPv6 /64", text: "fd00:64::/64", size: 1n << 64n },
    { name: "IPv6 /128", text: "::1/128", size: 1n },
  ])("parses $name", ({ text, size }) => {
    const c = cidr(text);
    expect(formatCidr(c)).toBe(text);
    expect(cidrSize(c)).toBe(size);
  });

  it.each([
    {
      name: "host bits set (IPv4)",
      text: "127.64.0.1/16",
      message: "127.64.0.1/16 is not a network address; did you mean 127.64.0.0/16",
    },
    {
      name: "host bits set (IPv6)",
      text: "fd00::1/64",
      message: "fd00::1/64 is not a network address; did you mean fd00::/64",
    },
    {
      name: "no prefix",
      text: "10.0.0.0",
      message: '"10.0.0.0" is not a CIDR (expected address/prefix, such as 10.0.0.0/16)',
    },
    {
      name: "prefix too long for IPv4",
      text: "10.0.0.0/33",
      message: '"10.0.0.0/33" is not a CIDR: the prefix length must be 0 to 32 for IPv4',
    },
    {
      name: "prefix not a number",
      text: "fd00::/x",
      message: '"fd00::/x" is not a CIDR: the prefix length must be 0 to 128 for IPv6',
    },
    {
      name: "bad address",
      text: "10.0.0.300/8",
      message: '"10.0.0.300/8" is not a CIDR: 10.0.0.300 is not an IP address',
    },
  ])("rejects $name", ({ text, message }) => {
    expect(parseCidr(text)).toEqual({ ok: false, message });
  });
});

describe("containment and overlap", () => {
  it.each([
    { name: "subnet inside", outer: "10.0.0.0/8", inner: "10.1.0.0/16", contains: true, overlaps: true },
    { name: "equal networks", outer: "10.0.0.0/8", inner: "10.0.0.0/8", contains: true, overlaps: true },
    {
      name: "supernet is not inside",
      outer: "10.1.0.0/16",
      inner: "10.0.0.0/8",
      contains: false,
      overlaps: true,
    },
    {
      name: "disjoint neighbours",
      outer: "10.0.0.0/24",
      inner: "10.0.1.0/24",
      contains: false,
      overlaps: false,
    },
    {
      name: "last address of a range",
      outer: "10.0.0.0/24",
      inner: "10.0.0.255/32",
      contains: true,
      overlaps: true,
    },
    { name: "IPv6 inside", outer: "fd00::/16", inner: "fd00:64::/64", contains: true, overlaps: true },
    { name: "IPv6 disjoint", outer: "fd00::/16", inner: "fd01::/16", contains: false, overlaps: false },
    // ::ffff:10.0.0.0/104 is 10.0.0.0/8 mapped into IPv6, yet families never mix.
    {
      name: "families never mix",
      outer: "10.0.0.0/8",
      inner: "::ffff:10.0.0.0/104",
      contains: false,
      overlaps: false,
    },
  ])("$name", ({ outer, inner, contains, overlaps }) => {
    expect(cidrContains(cidr(outer), cidr(inner))).toBe(contains);
    expect(cidrsOverlap(cidr(outer), cidr(inner))).toBe(overlaps);
    expect(cidrsOverlap(cidr(inner), cidr(outer))).toBe(overlaps);
  });

  it("contains addresses", () => {
    const net = cidr("127.64.0.0/16");
    expect(cidrContains(net, parseIp("127.64.255.255")!)).toBe(true);
    expect(cidrContains(net, parseIp("127.65.0.0")!)).toBe(false);
    expect(cidrContains(cidr("fd00::/8"), parseIp("fd12::1")!)).toBe(true);
    expect(cidrContains(cidr("fd00::/8"), parseIp("127.0.0.1")!)).toBe(false);
  });

  it("walks addresses by offset for IPAM", () => {
    const net = cidr("127.64.0.0/30");
    expect(formatIp(cidrAddress(net, 1n)!)).toBe("127.64.0.1");
    expect(formatIp(cidrAddress(net, 3n)!)).toBe("127.64.0.3");
    expect(cidrAddress(net, 4n)).toBeUndefined();
    expect(cidrAddress(net, -1n)).toBeUndefined();
    expect(formatCidr(hostCidr(parseIp("fd00::5")!))).toBe("fd00::5/128");
  });
});
