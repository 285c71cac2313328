// End to end: identities make CSRs, the CA certifies them, and node:tls runs mutual TLS 1.3 with them.
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIdentity } from "../../../functions/sdk/identity.js";
import { certWindow } from "./cert-window.js";
import { MeshCa } from "./mesh-ca.js";

const DAY = 24 * 3_600_000;
let tmp: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "catena-ca-tls-"));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function member(ca: MeshCa, fn: string, instance: string): Promise<{ key: string; cert: string }> {
  const id = await createIdentity(instance);
  const issued = await ca.issue(id.csrPem, ca.spiffeId(fn, instance), certWindow(Date.now(), DAY));
  expect(id.matches(issued.certPem)).toBe(true);
  return { key: id.privateKeyPem, cert: issued.certPem };
}

interface Outcome {
  serverPeer?: string;
  clientPeer?: string;
  serverError?: string;
  protocol?: string | null;
}

async function handshake(
  ca: MeshCa,
  server: { key: string; cert: string },
  client: { key: string; cert: string },
) {
  const outcome: Outcome = {};
  const srv = tls.createServer({
    ...server,
    ca: ca.rootPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  const serverSide = new Promise<void>((resolve) => {
    srv.on("secureConnection", (socket) => {
      outcome.serverPeer = socket.getPeerCertificate().subjectaltname;
      socket.end("hello");
      resolve();
    });
    srv.on("tlsClientError", (err, socket) => {
      // A refused client certificate closes the socket: the reason is in authorizationError.
      outcome.serverError = String(socket.authorizationError ?? err.message);
      resolve();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  const sock = tls.connect({
    host: "127.0.0.1",
    port,
    ...client,
    ca: ca.rootPem,
    minVersion: "TLSv1.3",
    // URI SAN only: the caller checks the SPIFFE ID, not a host name.
    checkServerIdentity: () => undefined,
  });
  sock.on("secureConnect", () => {
    outcome.clientPeer = sock.getPeerCertificate().subjectaltname;
    outcome.protocol = sock.getProtocol();
  });
  sock.on("error", () => {});
  sock.resume();
  await serverSide;
  sock.destroy();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return outcome;
}

describe("mutual TLS with mesh certificates", () => {
  it("succeeds over TLS 1.3 between two members of the mesh", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: "catena.local" });
    const server = await member(ca, "vpn-b", "vpn-b-0");
    const client = await member(ca, "vpn-a", "vpn-a-0");
    const outcome = await handshake(ca, server, client);
    expect(outcome.serverError).toBeUndefined();
    expect(outcome.serverPeer).toBe("URI:spiffe://catena.local/function/vpn-a/vpn-a-0");
    expect(outcome.clientPeer).toBe("URI:spiffe://catena.local/function/vpn-b/vpn-b-0");
    expect(outcome.protocol).toBe("TLSv1.3");
  });

  it("refuses a client certified by another root", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: "catena.local" });
    const stranger = await MeshCa.open({ dataDir: path.join(tmp, "other"), trustDomain: "catena.local" });
    const server = await member(ca, "vpn-b", "vpn-b-0");
    const client = await member(stranger, "vpn-a", "vpn-a-0");
    const outcome = await handshake(ca, server, client);
    expect(outcome.serverPeer).toBeUndefined();
    expect(outcome.serverError).toMatch(/^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/);
  });
});
