import { describe, expect, it } from "vitest";
import { decodeFirewallConfig } from "./catena-config.js";
import { formatCidr } from "./cidr.js";
import { FirewallIndex } from "./firewall-index.js";
import { decodeRbacConfig } from "./rbac-config.js";

describe("decodeFirewallConfig errors", () => {
  it.each([
    { name: "not an object", input: 5, errors: [/^: firewall config must be an object/] },
    {
      name: "bad defaultAction",
      input: { defaultAction: "maybe" },
      errors: [/^defaultAction: must be allow or deny/],
    },
    { name: "unknown top-level field", input: { allows: [] }, errors: [/^allows: unknown field/] },
    { name: "allow not a list", input: { allow: {} }, errors: [/^allow: must be a list/] },
    {
      name: "bad cidr and bad port in one rule, both reported",
      input: { allow: [{ from: [{ cidr: "10.0.0.0/40" }], ports: [0] }] },
      errors: [
        /^allow\[0\]\.from\[0\]\.cidr: "10\.0\.0\.0\/40" is not a CIDR/,
        /^allow\[0\]\.ports\[0\]: must be a port/,
      ],
    },
    {
      name: "endPort below port",
      input: { deny: [{ ports: [{ port: 100, endPort: 99 }] }] },
      errors: [/^deny\[0\]\.ports\[0\]\.endPort: must not be below port/],
    },
    {
      name: "except outside its cidr",
      input: { allow: [{ from: [{ cidr: "10.0.0.0/16", except: ["10.0.0.0/8"] }] }] },
      errors: [/^allow\[0\]\.from\[0\]\.except\[0\]: must lie inside cidr/],
    },
    {
      name: "unknown rule field",
      input: { allow: [{ form: [] }] },
      errors: [/^allow\[0\]\.form: unknown field/],
    },
    {
      name: "duplicate rule names across allow and deny",
      input: { allow: [{ name: "x" }], deny: [{ name: "x" }] },
      errors: [/^deny\[0\]\.name: rule name "x" is used twice/],
    },
  ])("$name", ({ input, errors }) => {
    const r = decodeFirewallConfig(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const lines = r.errors.map((e) => `${e.path}: ${e.message}`);
    expect(lines).toHaveLength(errors.length);
    for (const [i, re] of errors.entries()) expect(lines[i]).toMatch(re);
  });

  it("puts deny rules first and keeps ids from names or paths", () => {
    const r = decodeFirewallConfig({
      defaultAction: "allow",
      allow: [{ from: [{ cidr: "10.0.0.0/8" }] }],
      deny: [{ name: "block", ports: [22, { port: 23, endPort: 25 }] }],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.rules.map((x) => [x.id, x.action])).toEqual([
      ["block", "deny"],
      ["allow[0]", "allow"],
    ]);
    expect(r.value.rules[0]?.ports).toEqual([
      { start: 22, end: 22 },
      { start: 23, end: 25 },
    ]);
  });
});

const cidr = (address_prefix: string, prefix_len: number) => ({
  address_prefix,
  prefix_len: { value: prefix_len },
});

describe("decodeRbacConfig (Envoy RBAC network filter)", () => {
  it("ALLOW: a matching policy allows, no match denies", () => {
    const r = decodeRbacConfig({
      stat_prefix: "fw",
      rules: {
        action: "ALLOW",
        policies: {
          web: {
            permissions: [{ destination_port: 8080 }],
            principals: [{ remote_ip: cidr("127.0.0.0", 8) }],
          },
        },
      },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.address).toBe("remote");
    const fw = new FirewallIndex(r.value.policy);
    expect(fw.decide("127.0.0.1", 8080)).toEqual({ allowed: true, rule: "web" });
    expect(fw.decide("127.0.0.1", 8081)).toEqual({ allowed: false });
  });

  it("DENY: a matching policy denies, no match allows", () => {
    const r = decodeRbacConfig({
      rules: {
        action: "DENY",
        policies: {
          ssh: {
            permissions: [{ destination_port_range: { start: 22, end: 23 } }],
            principals: [{ any: true }],
          },
        },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const fw = new FirewallIndex(r.value.policy);
    expect(fw.decide("8.8.8.8", 22)).toEqual({ allowed: false, rule: "ssh" });
    // Int32Range is half-open: end 23 excludes 23.
    expect(fw.decide("8.8.8.8", 23)).toEqual({ allowed: true });
  });

  it("reports the first matching policy by name, as Envoy's ordered map does", () => {
    const any = { permissions: [{ any: true }], principals: [{ any: true }] };
    const r = decodeRbacConfig({ rules: { action: "ALLOW", policies: { zeta: any, alpha: any } } });
    if (!r.ok) throw new Error("decode");
    expect(new FirewallIndex(r.value.policy).decide("1.1.1.1", 1)).toEqual({ allowed: true, rule: "alpha" });
  });

  it("expresses ipBlock except as and_ids with not_id", () => {
    const r = decodeRbacConfig({
      rules: {
        action: "ALLOW",
        policies: {
          p: {
            permissions: [
              {
                or_rules: {
                  rules: [{ destination_port: 80 }, { destination_port_range: { start: 9000, end: 9101 } }],
                },
              },
            ],
            principals: [
              {
                and_ids: {
                  ids: [
                    { direct_remote_ip: cidr("127.64.0.0", 16) },
                    { not_id: { direct_remote_ip: cidr("127.64.9.0", 24) } },
                  ],
                },
              },
            ],
          },
        },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.address).toBe("direct");
    const fw = new FirewallIndex(r.value.policy);
    expect(fw.decide("127.64.8.1", 80).allowed).toBe(true);
    expect(fw.decide("127.64.9.1", 80).allowed).toBe(false);
    expect(fw.decide("127.64.8.1", 9100).allowed).toBe(true);
    expect(fw.decide("127.64.8.1", 9101).allowed).toBe(false);
    expect(r.value.policy.rules[0]?.sources?.map(formatCidr)).not.toContain("127.64.9.0/24");
  });

  it("LOG allows everything while still naming the matching policy", () => {
    const r = decodeRbacConfig({
      rules: {
        action: "LOG",
        policies: { seen: { permissions: [{ any: true }], principals: [{ any: true }] } },
      },
    });
    if (!r.ok) throw new Error("decode");
    expect(r.value.logOnly).toBe(true);
    expect(new FirewallIndex(r.value.policy).decide("1.1.1.1", 1)).toEqual({ allowed: true, rule: "seen" });
  });

  it("treats absent rules as allow all", () => {
    const r = decodeRbacConfig({ stat_prefix: "x" });
    expect(r.ok && new FirewallIndex(r.value.policy).decide("1.1.1.1", 1).allowed).toBe(true);
  });

  it("reports every unsupported or malformed field with its path", () => {
    const r = decodeRbacConfig({
      rules: {
        action: "DENY",
        policies: {
          a: { permissions: [{ header: { name: "x" } }], principals: [{ authenticated: {} }] },
          b: { permissions: [], principals: [{ remote_ip: { address_prefix: "nope", prefix_len: 8 } }] },
          c: {
            permissions: [{ destination_port: 1, any: true }],
            principals: [{ remote_ip: cidr("10.0.0.0", 8) }, { direct_remote_ip: cidr("10.0.0.0", 8) }],
          },
        },
      },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path)).toEqual([
      "rules.policies.a.permissions[0].header",
      "rules.policies.a.principals[0].authenticated",
      "rules.policies.b.permissions",
      "rules.policies.b.principals[0].remote_ip",
      "rules.policies.c.permissions[0]",
      "rules.policies",
    ]);
  });
});
