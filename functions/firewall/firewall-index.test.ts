import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatIpv4, formatIpv6 } from "../sdk/ip-address.js";
import { decodeFirewallConfig } from "./catena-config.js";
import type { Cidr } from "./cidr.js";
import { FirewallIndex } from "./firewall-index.js";
import { LinearFirewall } from "./linear-firewall.js";
import type { FirewallPolicy, FirewallRule } from "./policy.js";
import { buildPortSegments } from "./port-segments.js";

function policy(config: unknown): FirewallPolicy {
  const r = decodeFirewallConfig(config);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

interface DecisionCase {
  name: string;
  config: unknown;
  checks: [source: string, port: number, allowed: boolean, rule?: string][];
}

const cases: DecisionCase[] = [
  {
    name: "the design's example: default deny, allow loopback on 8080",
    config: { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [8080] }] },
    checks: [
      ["127.0.0.1", 8080, true, "allow[0]"],
      ["127.200.3.4", 8080, true, "allow[0]"],
      ["127.0.0.1", 8081, false],
      ["10.0.0.1", 8080, false],
      ["::1", 8080, false],
    ],
  },
  {
    name: "default allow with no rules",
    config: { defaultAction: "allow" },
    checks: [
      ["1.2.3.4", 1, true],
      ["::", 65535, true],
    ],
  },
  {
    name: "nested CIDRs: the first matching rule in order names the decision",
    config: {
      defaultAction: "deny",
      allow: [
        { name: "wide", from: [{ cidr: "10.0.0.0/8" }], ports: [443] },
        { name: "narrow", from: [{ cidr: "10.1.0.0/16" }] },
      ],
    },
    checks: [
      ["10.1.2.3", 443, true, "wide"],
      ["10.1.2.3", 80, true, "narrow"],
      ["10.2.0.1", 80, false],
      ["10.2.0.1", 443, true, "wide"],
    ],
  },
  {
    name: "deny overrides allow wherever it is listed (except-like carve-out)",
    config: {
      defaultAction: "deny",
      allow: [{ from: [{ cidr: "127.64.0.0/16" }], ports: [{ port: 9000, endPort: 9100 }] }],
      deny: [{ name: "bad-host", from: [{ cidr: "127.64.0.66/32" }] }],
    },
    checks: [
      ["127.64.0.65", 9050, true, "allow[0]"],
      ["127.64.0.66", 9050, false, "bad-host"],
      ["127.64.0.66", 22, false, "bad-host"],
      ["127.64.0.67", 9101, false],
      ["127.64.0.67", 9100, true, "allow[0]"],
      ["127.64.0.67", 9000, true, "allow[0]"],
      ["127.64.0.67", 8999, false],
    ],
  },
  {
    name: "ipBlock except carves addresses out of an allow",
    config: {
      defaultAction: "deny",
      allow: [{ from: [{ ipBlock: { cidr: "127.64.0.0/16", except: ["127.64.9.0/24"] } }] }],
    },
    checks: [
      ["127.64.8.255", 1, true, "allow[0]"],
      ["127.64.9.0", 1, false],
      ["127.64.9.255", 1, false],
      ["127.64.10.0", 1, true, "allow[0]"],
    ],
  },
  {
    name: "default allow with a deny on a port range",
    config: { defaultAction: "allow", deny: [{ ports: [{ port: 1, endPort: 1023 }] }] },
    checks: [
      ["8.8.8.8", 22, false, "deny[0]"],
      ["2001:db8::1", 1023, false, "deny[0]"],
      ["8.8.8.8", 1024, true],
      ["not-an-ip", 22, false, "deny[0]"],
      ["not-an-ip", 8080, true],
    ],
  },
  {
    name: "IPv6 prefixes and IPv4-mapped sources",
    config: {
      defaultAction: "deny",
      allow: [
        { name: "v6", from: [{ cidr: "2001:db8:aa::/48" }], ports: [80, 443] },
        { name: "v4", from: [{ cidr: "192.0.2.0/24" }], ports: [80] },
      ],
      deny: [{ name: "v6-host", from: [{ cidr: "2001:db8:aa::bad/128" }] }],
    },
    checks: [
      ["2001:db8:aa:1::5", 443, true, "v6"],
      ["2001:db8:ab::5", 443, false],
      ["2001:db8:aa::bad", 80, false, "v6-host"],
      ["::ffff:192.0.2.7", 80, true, "v4"],
      ["192.0.2.7", 443, false],
    ],
  },
  {
    name: "a rule with an empty from matches nothing; without from, everything",
    config: {
      defaultAction: "deny",
      allow: [
        { name: "none", from: [] },
        { name: "all", ports: [7] },
      ],
    },
    checks: [
      ["1.1.1.1", 7, true, "all"],
      ["1.1.1.1", 8, false],
    ],
  },
  {
    name: "implied default: deny when allow rules are listed",
    config: { allow: [{ from: [{ cidr: "10.0.0.0/8" }] }] },
    checks: [
      ["10.0.0.1", 1, true, "allow[0]"],
      ["11.0.0.1", 1, false],
    ],
  },
];

describe("FirewallIndex decisions", () => {
  it.each(cases)("$name", ({ config, checks }) => {
    const p = policy(config);
    for (const decider of [new FirewallIndex(p), new LinearFirewall(p)]) {
      for (const [source, port, allowed, rule] of checks) {
        const d = decider.decide(source, port);
        expect({ source, port, ...d }).toEqual({ source, port, allowed, ...(rule ? { rule } : {}) });
      }
    }
  });

  it("accepts pre-parsed addresses", () => {
    const index = new FirewallIndex(policy({ allow: [{ from: [{ cidr: "10.0.0.0/8" }] }] }));
    expect(index.decide({ family: 4, v4: 0x0a000001 }, 1).allowed).toBe(true);
    expect(index.decide({ family: 4, v4: 0x0b000001 }, 1).allowed).toBe(false);
  });

  it("returns the same decision object for repeated decisions (no allocation)", () => {
    const index = new FirewallIndex(policy({ allow: [{ from: [{ cidr: "10.0.0.0/8" }] }] }));
    expect(index.decide("10.0.0.1", 1)).toBe(index.decide("10.9.9.9", 2));
  });
});

describe("buildPortSegments", () => {
  it("gives each port to the lowest rule covering it", () => {
    const segs = buildPortSegments([
      { rule: 3, ports: [{ start: 0, end: 65535 }] },
      { rule: 1, ports: [{ start: 100, end: 200 }] },
      { rule: 2, ports: [{ start: 150, end: 300 }] },
    ]);
    expect(segs).toEqual({ starts: [0, 100, 201, 301], owners: [3, 1, 2, 3] });
  });

  it("leaves uncovered ports ownerless and merges neighbours", () => {
    const segs = buildPortSegments([
      { rule: 0, ports: [{ start: 10, end: 19 }] },
      { rule: 0, ports: [{ start: 20, end: 29 }] },
      { rule: 1, ports: [{ start: 65535, end: 65535 }] },
    ]);
    expect(segs).toEqual({ starts: [0, 10, 30, 65535], owners: [-1, 0, -1, 1] });
  });
});

// Random rule sets over a small address space so that rules overlap often.
const cidr4 = fc
  .record({
    a: fc.integer({ min: 0, max: 3 }),
    b: fc.integer({ min: 0, max: 255 }),
    prefix: fc.integer({ min: 0, max: 32 }),
  })
  .map(({ a, b, prefix }): Cidr => {
    const bytes = Uint8Array.of(10, a, b, 0);
    const v = ((10 << 24) | (a << 16) | (b << 8)) >>> 0;
    const masked = prefix === 0 ? 0 : (v & (0xffffffff << (32 - prefix))) >>> 0;
    bytes.set([masked >>> 24, (masked >>> 16) & 0xff, (masked >>> 8) & 0xff, masked & 0xff]);
    return { family: 4, bytes, prefix };
  });
const cidr6 = fc
  .record({ x: fc.integer({ min: 0, max: 7 }), prefix: fc.integer({ min: 0, max: 128 }) })
  .map(({ x, prefix }): Cidr => {
    const bytes = new Uint8Array(16);
    bytes[0] = 0x20;
    bytes[1] = 0x01;
    bytes[15] = x;
    bytes[7] = x;
    for (let i = 0; i < 16; i++) {
      const keep = prefix - i * 8;
      if (keep < 8) bytes[i] = keep <= 0 ? 0 : (bytes[i] as number) & (0xff << (8 - keep));
    }
    return { family: 6, bytes, prefix };
  });
const portRange = fc
  .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }))
  .map(([x, y]) => ({ start: Math.min(x, y), end: Math.max(x, y) }));
const rule = fc.record({
  action: fc.constantFrom("allow" as const, "deny" as const),
  sources: fc.option(fc.array(fc.oneof(cidr4, cidr6), { maxLength: 3 }), { nil: undefined }),
  ports: fc.option(fc.array(portRange, { maxLength: 3 }), { nil: undefined }),
});
const policyArb = fc.record({
  defaultAction: fc.constantFrom("allow" as const, "deny" as const),
  rules: fc
    .array(rule, { maxLength: 30 })
    .map((rs) =>
      rs.map((r, i): FirewallRule => ({ id: `r${i}`, action: r.action, sources: r.sources, ports: r.ports })),
    ),
});
const address = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
    .map(([a, b, c]) => formatIpv4(((10 << 24) | (a << 16) | (b << 8) | c) >>> 0)),
  fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 })).map(([x, y]) => {
    const bytes = new Uint8Array(16);
    bytes[0] = 0x20;
    bytes[1] = 0x01;
    bytes[7] = x;
    bytes[15] = y;
    return formatIpv6(bytes);
  }),
  fc.ipV4(),
  fc.ipV6(),
  fc.constant("::ffff:10.0.0.1"),
);

describe("FirewallIndex against the linear scan", () => {
  it("decides exactly like the linear scan on random rule sets and addresses", () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.array(fc.tuple(address, fc.integer({ min: 0, max: 45 })), { minLength: 1, maxLength: 40 }),
        (p, probes) => {
          const index = new FirewallIndex(p);
          const linear = new LinearFirewall(p);
          for (const [source, port] of probes)
            expect(index.decide(source, port)).toEqual(linear.decide(source, port));
        },
      ),
      { numRuns: 400 },
    );
  });
});
