import { describe, expect, it } from "vitest";
import { silentLogger } from "../../xds/logger.js";
import type { Connection, HostHelper, PluginEvent, Verdict } from "../sdk/define-function.js";
import firewall, { RBAC_TYPE_URL } from "./plugin.js";

function helper(events: PluginEvent[], counts: Map<string, number>): HostHelper {
  return {
    log: silentLogger,
    emit: (e) => events.push(e),
    metrics: { counter: (name) => ({ add: (n = 1) => counts.set(name, (counts.get(name) ?? 0) + n) }) },
    scope: { function: "firewall", nodeId: "n", hop: 0 },
  };
}

const conn = (source: string, port = 8080): Connection => ({
  id: 1,
  source: { address: source, port: 5000 },
  destination: { address: "127.64.0.1", port },
  peer: { address: "127.64.0.9", port: 6000 },
  chain: "c",
  hop: 0,
  listener: "c/0",
});

const ip = (address: string, len: number) => ({
  remote_ip: { address_prefix: address, prefix_len: { value: len } },
});

/** The compiler's two filters: DENY (a match denies), then ALLOW (no match denies). */
const denyFilter = {
  stat_prefix: "c/0",
  rules: {
    action: "DENY",
    policies: { "deny-0": { permissions: [{ any: true }], principals: [ip("10.0.0.66", 32)] } },
  },
};
const allowFilter = {
  stat_prefix: "c/0",
  rules: {
    action: "ALLOW",
    policies: {
      "allow-0": { permissions: [{ destination_port: 8080 }], principals: [ip("10.0.0.0", 8)] },
    },
  },
};

function make(raw: unknown, events: PluginEvent[] = [], counts = new Map<string, number>()) {
  const cfg = firewall.parseConfig(raw, RBAC_TYPE_URL);
  if (!cfg.ok) throw new Error(JSON.stringify(cfg.errors));
  return firewall.createFilter(cfg.value, helper(events, counts));
}

describe("firewall plugin (RBAC)", () => {
  it.each([
    { name: "an allowed source and port", source: "10.1.2.3", port: 8080, allowed: true },
    { name: "a denied source inside the allowed block", source: "10.0.0.66", port: 8080, allowed: false },
    { name: "an allowed source on another port", source: "10.1.2.3", port: 22, allowed: false },
    { name: "a source outside every block", source: "192.168.0.1", port: 8080, allowed: false },
    { name: "an IPv4-mapped source", source: "::ffff:10.1.2.3", port: 8080, allowed: true },
  ])("DENY then ALLOW: $name", ({ source, port, allowed }) => {
    const filters = [make(denyFilter), make(allowFilter)];
    const c = conn(source, port);
    const verdicts = filters.map((f) => f.onConnection(c) as Verdict);
    expect(verdicts.every((v) => v.allow)).toBe(allowed);
  });

  it("tests the original client (PROXY source), not the previous hop", () => {
    const f = make(allowFilter);
    expect(f.onConnection(conn("10.9.9.9"))).toMatchObject({ allow: true });
  });

  it("counts every denial and rate-limits its events", () => {
    const events: PluginEvent[] = [];
    const counts = new Map<string, number>();
    const f = make(allowFilter, events, counts);
    for (let i = 0; i < 25; i++) f.onConnection(conn("192.168.0.1"));
    expect(counts.get("denied")).toBe(25);
    expect(events.length).toBe(10);
    expect(events[0]).toMatchObject({
      verb: "denied",
      data: { source: "192.168.0.1", rule: "default", chain: "c" },
    });
  });

  it("refuses principals it cannot match, with the path", () => {
    const r = firewall.parseConfig(
      {
        rules: {
          action: "ALLOW",
          policies: { p: { permissions: [{ any: true }], principals: [{ header: {} }] } },
        },
      },
      RBAC_TYPE_URL,
    );
    expect(r).toMatchObject({ ok: false, errors: [{ path: "rules.policies.p.principals[0].header" }] });
  });
});
