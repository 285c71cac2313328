// `catena function vpn` as a real process: it sends its CSR in node metadata, its tunnel listener waits
// for the certificate issued for that CSR, then binds and answers mutual-TLS CONNECTs.
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCatena } from "../support/cli.js";
import { httpStatus } from "../support/http.js";
import { uniqueRoot } from "../support/nats.js";
import { freePort, startBackend, startXds, until, type XdsServer } from "./support/harness.js";
import {
  clientCertificate,
  csrOf,
  publishFor,
  secretResources,
  spiffeId,
  startCa,
  type TestCa,
  terminatorResources,
  tryConnect,
  type VpnInstance,
} from "./support/vpn.js";

const B: VpnInstance = { fn: "vpn-b", id: "vpn-cli-b", address: "127.77.2.2" };
let xds: XdsServer;
let ca: TestCa;

beforeAll(async () => {
  xds = await startXds();
  ca = await startCa();
});

afterAll(async () => {
  await xds?.close();
  await ca?.close();
});

describe("catena function vpn", () => {
  it("runs as a process: CSR out, certificate in, tunnel listener bound and answering", async () => {
    const tunnelPort = await freePort(B.address);
    const backend = await startBackend(0, "127.77.2.10");
    const resources = terminatorResources({
      me: B,
      tunnelPort,
      from: ["vpn-a"],
      routes: [
        {
          chain: "c",
          hop: 0,
          authority: "web:80",
          backends: [{ address: backend.address, port: backend.port }],
        },
      ],
    });
    publishFor(xds, B.id, resources);
    const child = spawnCatena(
      ["function", "vpn", "--function", B.fn, "--node-id", B.id, "--xds-addr", xds.address],
      { CATENA_ADDRESS: B.address, CATENA_ADMIN_ADDR: `${B.address}:0`, CATENA_NATS_PREFIX: uniqueRoot() },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await until(
        () => /admin http:\/\/\S+/.test(stderr),
        () => `the admin address (stderr: ${stderr})`,
        20_000,
      );
      const admin = (/admin (http:\/\/\S+)/.exec(stderr) as RegExpExecArray)[1];
      const csr = await csrOf(xds, B.id);
      expect(xds.server.status.node(B.id)?.node.metadata).toMatchObject({ type: "vpn", address: B.address });
      // No secrets yet: the tunnel listener waits, so the instance is not ready.
      await new Promise((r) => setTimeout(r, 300));
      expect(await httpStatus(`${admin}/readyz`)).toBe(503);
      const cert = await ca.ca.issue(csr, spiffeId(B.fn, B.id), ca.window(1));
      publishFor(xds, B.id, [...resources, ...secretResources(B, cert.certPem, ca.ca.rootPem)]);
      let ready = 0;
      for (let i = 0; i < 100 && ready !== 200; i++) {
        ready = await httpStatus(`${admin}/readyz`);
        if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ready).toBe(200);
      const client = await clientCertificate(ca.ca, spiffeId("vpn-a", "probe"), ca.window(1));
      const r = await tryConnect(B.address, tunnelPort, "web:80", {
        certPem: client.certPem,
        keyPem: client.identity.privateKeyPem,
        caPem: ca.ca.rootPem,
      });
      expect(r).toMatchObject({ ok: true, status: 200 });
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
      await backend.close();
    }
  });
});
