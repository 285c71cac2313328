// Two control servers on one bucket sign with one mesh root, and, that root being Ed25519, issue
// the same certificate bytes for the same instance key and window: an instance that fails over to
// the other server keeps its secret's version.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIdentity } from "../../functions/sdk/identity.js";
import { AdsClient, TYPE_URL } from "../../xds/index.js";
import { post } from "../support/control.js";
import { type Replicas, startReplicas, waitUntil } from "./replicas.js";

let replicas: Replicas;

beforeAll(async () => {
  replicas = await startReplicas(2);
});

afterAll(async () => {
  await replicas?.stop();
});

/** The certificate secret a node with this CSR gets from one server, and its version. */
async function certificateFrom(xdsAddr: string, csr: string): Promise<{ pem: string; version: string }> {
  const client = new AdsClient({
    servers: [xdsAddr],
    node: { id: "ca-gw-1", cluster: "ca-gw", metadata: { type: "vpn", csr } },
  });
  const name = "spiffe://catena.local/function/ca-gw/ca-gw-1";
  const watch = client.watch(TYPE_URL.secret, [name]);
  try {
    for await (const event of watch) {
      if (event.type !== "changed") continue;
      const value = event.value as { tls_certificate?: { certificate_chain?: { inline_string?: string } } };
      return { pem: value.tls_certificate?.certificate_chain?.inline_string ?? "", version: event.version };
    }
    throw new Error("watch ended");
  } finally {
    watch.close();
    client.close();
  }
}

describe("the mesh CA with two control servers", () => {
  it("both keep the same root, and issue the same certificate for the same key", async () => {
    const [a, b] = replicas.servers;
    if (!a || !b) throw new Error("two replicas");
    const roots = await Promise.all([a, b].map((s) => readFile(join(s.dataDir, "ca", "root.crt"), "utf8")));
    expect(roots[1]).toBe(roots[0]);

    const res = await post(a.url, "/v1/apply", {
      apiVersion: "catena.dev/v1alpha1",
      kind: "ServiceFunction",
      metadata: { name: "ca-gw" },
      spec: { type: "vpn" },
    });
    expect(res.status).toBe(200);
    const id = await createIdentity("ca-gw-1");
    const fromA = await certificateFrom(a.server.xdsAddr, id.csrPem);
    // B learns of the ServiceFunction from the shared bucket.
    const fromB = await waitUntil(
      () => certificateFrom(b.server.xdsAddr, id.csrPem),
      "a certificate from the second server",
      15_000,
    );
    expect(id.matches(fromA.pem)).toBe(true);
    expect(fromB.pem).toBe(fromA.pem);
    expect(fromB.version).toBe(fromA.version);
  });
});
