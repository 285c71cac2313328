import { describe, expect, it } from "vitest";
import { FirewallIndex } from "../../../functions/firewall/firewall-index.js";
import { decodeRbacConfig } from "../../../functions/firewall/rbac-config.js";
import type { Kind, StoredResource } from "../model/resource.js";
import { compileServicePolicy, type PolicyModel, policyFilters, selectsService } from "./policy.js";

let uid = 0;
function obj(
  kind: Kind,
  name: string,
  spec: Record<string, unknown>,
  labels?: Record<string, string>,
): StoredResource {
  uid++;
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind,
    metadata: {
      name,
      ...(labels && { labels }),
      resourceVersion: "1",
      generation: 1,
      uid: `u${uid}`,
      creationTimestamp: "",
    },
    spec,
  };
}

function model(objects: StoredResource[]): PolicyModel {
  return {
    get: (kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name),
    list: (kind) => objects.filter((o) => o.kind === kind),
  };
}

const base = [
  obj("Network", "n", { cidr: "10.0.0.0/16" }),
  obj("Network", "locked", { cidr: "10.9.0.0/16", isolation: "default-deny" }),
  obj("Workload", "web", { kind: "vm", networks: [{ name: "n", address: "10.0.1.1" }] }, { app: "web" }),
  obj("Workload", "db-1", { kind: "vm", networks: [{ name: "n" }] }, { app: "db" }),
];
const db = obj("Service", "db", {
  network: "n",
  selector: { app: "db" },
  ports: [{ name: "sql", port: 5432 }],
});

/** The compiled RBAC, decoded and indexed the way the firewall function does. */
function decide(filters: ReturnType<typeof policyFilters>, source: string, port: number): boolean {
  return filters.every((f) => {
    const config: Record<string, unknown> = f.typedConfig;
    const decoded = decodeRbacConfig(config);
    if (!decoded.ok) throw new Error(JSON.stringify(decoded.errors));
    return new FirewallIndex(decoded.value.policy).decide(source, port).allowed;
  });
}

describe("NetworkPolicy → RBAC", () => {
  it("selects a Service by its selector's labels, its Workloads, or its own labels", () => {
    const m = model([...base, db]);
    expect(selectsService({ app: "db" }, db, m)).toBe(true);
    expect(selectsService({}, db, m)).toBe(true);
    expect(selectsService({ app: "web" }, db, m)).toBe(false);
    const bare = obj("Service", "bare", { network: "n", ports: [{ name: "p", port: 1 }] }, { team: "x" });
    expect(selectsService({ team: "x" }, bare, m)).toBe(true);
  });

  it("a Service no policy concerns gets nothing", () => {
    expect(compileServicePolicy(db, 5432, [], model([...base, db]))).toBeUndefined();
  });

  it("ipBlock except becomes and_ids with not_id; endPort becomes an exclusive range end", () => {
    const p = obj("NetworkPolicy", "p", {
      subject: { selector: { app: "db" } },
      ingress: [
        {
          from: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.9.0/24"] } }],
          ports: [{ port: 5400, endPort: 5500 }],
        },
      ],
    });
    const compiled = compileServicePolicy(db, 5432, [], model([...base, db, p]));
    expect(compiled?.allow?.["p/ingress-0"]).toEqual({
      permissions: [{ destination_port_range: { start: 5400, end: 5501 } }],
      principals: [
        {
          and_ids: {
            ids: [
              { remote_ip: { address_prefix: "10.0.0.0", prefix_len: { value: 16 } } },
              { not_id: { remote_ip: { address_prefix: "10.0.9.0", prefix_len: { value: 24 } } } },
            ],
          },
        },
      ],
    });
    const filters = policyFilters(compiled as NonNullable<typeof compiled>, "c/0");
    expect(decide(filters, "10.0.1.1", 5432)).toBe(true);
    expect(decide(filters, "10.0.9.1", 5432)).toBe(false);
    expect(decide(filters, "10.1.0.1", 5432)).toBe(false);
  });

  it("ports name the workloads' port: a chain on another port matches through targetPort", () => {
    const svc = obj("Service", "db", {
      network: "n",
      selector: { app: "db" },
      ports: [{ name: "sql", port: 15432, targetPort: 5432 }],
    });
    const p = obj("NetworkPolicy", "p", {
      subject: { selector: { app: "db" } },
      ingress: [{ from: [{ selector: { app: "web" } }], ports: [{ port: 5432 }] }],
    });
    const compiled = compileServicePolicy(svc, 15432, [], model([...base, svc, p]));
    expect(compiled?.allow?.["p/ingress-0"]?.permissions).toEqual([{ destination_port: 15432 }]);
  });

  it("deny overrides allow, and a default-deny network isolates without a policy", () => {
    const p = obj("NetworkPolicy", "p", {
      subject: { selector: { app: "db" } },
      ingress: [{ from: [{ network: "n" }] }],
      deny: [{ from: [{ selector: { app: "web" } }] }],
    });
    const compiled = compileServicePolicy(db, 5432, [], model([...base, db, p]));
    const filters = policyFilters(compiled as NonNullable<typeof compiled>, "c/0");
    expect(filters.map((f) => (f.typedConfig.rules as { action: string }).action)).toEqual(["DENY", "ALLOW"]);
    expect(decide(filters, "10.0.1.1", 5432)).toBe(false);
    expect(decide(filters, "10.0.2.2", 5432)).toBe(true);
    const vault = obj("Service", "vault", { network: "locked", ports: [{ name: "p", port: 1 }] });
    expect(compileServicePolicy(vault, 1, [], model([...base, vault]))).toEqual({
      sources: ["network/locked"],
      deny: {},
      allow: {},
    });
  });

  it("egress: a selected workload is denied where its rules do not reach", () => {
    const p = obj("NetworkPolicy", "out", {
      subject: { selector: { app: "web" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ ipBlock: { cidr: "10.5.0.0/16" } }] }],
    });
    const m = model([...base, db, p]);
    expect(compileServicePolicy(db, 5432, ["10.0.3.3"], m)?.deny["egress-not-allowed"]).toEqual({
      permissions: [{ any: true }],
      principals: [{ remote_ip: { address_prefix: "10.0.1.1", prefix_len: { value: 32 } } }],
    });
    expect(compileServicePolicy(db, 5432, ["10.5.0.9"], m)).toBeUndefined();
  });
});
