import "reflect-metadata";
import { X509Certificate as NodeX509, webcrypto } from "node:crypto";
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIdentity } from "../../../functions/sdk/identity.js";
import { certWindow } from "./cert-window.js";
import { MeshCa } from "./mesh-ca.js";

x509.cryptoProvider.set(webcrypto);

const TD = "catena.local";
const DAY = 24 * 3_600_000;
let tmp: string;

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "catena-ca-"));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function derToPem(der: Buffer, label: string): string {
  return x509.PemConverter.encode(der, label);
}

/** A self-signed ECDSA P-256 CA written as an operator would give it. */
async function operatorRoot(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=Operator CA, O=Example",
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 365 * DAY),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certFile = path.join(dir, "op.crt");
  const keyFile = path.join(dir, "op.key");
  await writeFile(certFile, cert.toString("pem"));
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  await writeFile(keyFile, derToPem(pkcs8, "PRIVATE KEY"), { mode: 0o600 });
  return { certFile, keyFile };
}

describe("MeshCa root", () => {
  it("generates an Ed25519 root, writes it with tight modes, and reloads the same one", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const dir = path.join(tmp, "ca");
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, "root.key"))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, "root.crt"))).mode & 0o777).toBe(0o644);
    expect(await readFile(path.join(dir, "root.key"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----/);

    const root = new NodeX509(ca.rootPem);
    expect(root.ca).toBe(true);
    expect(root.publicKey.asymmetricKeyType).toBe("ed25519");
    expect(root.subject.split("\n").sort()).toEqual(["CN=Catena mesh CA", `O=${TD}`]);
    expect(root.subjectAltName).toBe(`URI:spiffe://${TD}`);
    expect(root.verify(root.publicKey)).toBe(true);
    const years = (Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365.25 * DAY);
    expect(Math.round(years)).toBe(10);
    const parsed = new x509.X509Certificate(ca.rootPem);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.critical).toBe(true);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    expect(ku?.critical).toBe(true);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(parsed.getExtension(x509.SubjectKeyIdentifierExtension)).toBeTruthy();

    const again = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    expect(again.rootPem).toBe(ca.rootPem);
  });

  it("refuses a CA key readable by group", async () => {
    await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const keyFile = path.join(tmp, "ca", "root.key");
    await chmod(keyFile, 0o640);
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      new RegExp(`${keyFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*readable by group or others`),
    );
  });

  it("refuses a key that does not match the certificate", async () => {
    const other = path.join(tmp, "other");
    await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    await MeshCa.open({ dataDir: other, trustDomain: TD });
    const keyFile = path.join(tmp, "ca", "root.key");
    await copyFile(path.join(other, "ca", "root.key"), keyFile);
    await chmod(keyFile, 0o600);
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      /root\.key: the key does not match/,
    );
  });

  it("refuses unparsable PEM and a certificate that is not a CA", async () => {
    await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const certFile = path.join(tmp, "ca", "root.crt");
    const keyFile = path.join(tmp, "ca", "root.key");
    const good = await readFile(certFile, "utf8");

    await writeFile(keyFile, "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n", {
      mode: 0o600,
    });
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      /root\.key: cannot parse the private key/,
    );
    await writeFile(certFile, "hello");
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      /root\.crt: not a PEM certificate/,
    );
    await writeFile(certFile, "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n");
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      /root\.crt: cannot parse the certificate/,
    );
    await writeFile(certFile, good + good);
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(/holds 2 certificates/);

    // A leaf from this CA, as if it were the root.
    await rm(path.join(tmp, "ca"), { recursive: true });
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const id = await createIdentity("x");
    const leaf = await ca.issue(id.csrPem, ca.spiffeId("f", "i"), certWindow(Date.now(), DAY));
    await writeFile(certFile, leaf.certPem);
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD })).rejects.toThrow(
      /root\.crt: not a CA certificate/,
    );
  });

  it("uses an operator-supplied ECDSA P-256 CA in place", async () => {
    const { certFile, keyFile } = await operatorRoot(tmp);
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: "example.org", certFile, keyFile });
    expect(ca.rootPem.trim()).toBe((await readFile(certFile, "utf8")).trim());
    await expect(stat(path.join(tmp, "ca"))).rejects.toThrow(/ENOENT/);

    const id = await createIdentity("x");
    const spiffeId = ca.spiffeId("vpn-a", "vpn-a-0");
    expect(spiffeId).toBe("spiffe://example.org/function/vpn-a/vpn-a-0");
    const issued = await ca.issue(id.csrPem, spiffeId, certWindow(Date.now(), DAY));
    const leaf = new NodeX509(issued.certPem);
    const root = new NodeX509(ca.rootPem);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.subjectAltName).toBe(`URI:${spiffeId}`);
    const aki = new x509.X509Certificate(issued.certPem).getExtension(x509.AuthorityKeyIdentifierExtension);
    const ski = new x509.X509Certificate(ca.rootPem).getExtension(x509.SubjectKeyIdentifierExtension);
    expect(aki?.keyId).toBe(ski?.keyId);

    await chmod(keyFile, 0o604);
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: TD, certFile, keyFile })).rejects.toThrow(
      /op\.key/,
    );
  });

  it("validates names", async () => {
    await expect(MeshCa.open({ dataDir: tmp, trustDomain: "Bad/Domain" })).rejects.toThrow(/trust domain/);
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    expect(ca.trustDomain).toBe(TD);
    expect(ca.spiffeId("fw", "fw-0")).toBe(`spiffe://${TD}/function/fw/fw-0`);
    expect(() => ca.spiffeId("a/b", "i")).toThrow(/function/);
    expect(() => ca.spiffeId("f", "")).toThrow(/instance/);
  });
});

describe("MeshCa.issue", () => {
  it("issues an X.509-SVID for the window: one URI SAN, both EKUs, no subject", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const id = await createIdentity("ignored-subject");
    const spiffeId = ca.spiffeId("vpn-a", "vpn-a-7f3");
    const window = certWindow(Date.now(), DAY);
    const issued = await ca.issue(id.csrPem, spiffeId, window);

    const leaf = new NodeX509(issued.certPem);
    const root = new NodeX509(ca.rootPem);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.subject ?? "").toBe("");
    expect(leaf.subjectAltName).toBe(`URI:${spiffeId}`);
    expect(id.matches(issued.certPem)).toBe(true);
    expect(new Date(leaf.validFrom).getTime()).toBe(window.notBefore.getTime());
    expect(new Date(leaf.validTo).getTime()).toBe(window.notAfter.getTime());
    expect(issued.notBefore.getTime()).toBe(window.notBefore.getTime());
    expect(issued.notAfter.getTime()).toBe(window.notAfter.getTime());
    expect(issued.serial).toBe(leaf.serialNumber.toLowerCase());
    expect(Number.parseInt(leaf.serialNumber.slice(0, 2), 16) & 0x80).toBe(0);

    const parsed = new x509.X509Certificate(issued.certPem);
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.critical).toBe(true);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([["url", spiffeId]]);
    const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
    expect(eku?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    expect(ku?.critical).toBe(true);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const bc = parsed.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.critical).toBe(true);
    expect(bc?.ca).toBe(false);
  });

  it("is deterministic with an Ed25519 root, across two CAs opened on the same directory", async () => {
    const a = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const b = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const id = await createIdentity("x");
    const spiffeId = a.spiffeId("f", "i");
    const window = certWindow(Date.now(), DAY);
    const one = await a.issue(id.csrPem, spiffeId, window);
    const two = await b.issue(id.csrPem, spiffeId, window);
    expect(two.certPem).toBe(one.certPem);
    expect(two.serial).toBe(one.serial);

    const next = await a.issue(id.csrPem, spiffeId, certWindow(window.renewAt.getTime(), DAY));
    expect(next.serial).not.toBe(one.serial);
    const other = await a.issue(id.csrPem, a.spiffeId("f", "j"), window);
    expect(other.serial).not.toBe(one.serial);
  });

  it("rejects a CSR whose signature does not verify", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const id = await createIdentity("x");
    const der = pemToDer(id.csrPem);
    der[der.length - 1] = der[der.length - 1]! ^ 0x01; // the signature is the DER's last bytes
    const broken = derToPem(der, "CERTIFICATE REQUEST");
    await expect(ca.issue(broken, ca.spiffeId("f", "i"), certWindow(Date.now(), DAY))).rejects.toThrow(
      "CSR signature does not verify",
    );
  });

  it("rejects garbage and foreign SPIFFE IDs", async () => {
    const ca = await MeshCa.open({ dataDir: tmp, trustDomain: TD });
    const w = certWindow(Date.now(), DAY);
    const sid = ca.spiffeId("f", "i");
    await expect(ca.issue("hello", sid, w)).rejects.toThrow(/CSR is not PEM/);
    await expect(
      ca.issue("-----BEGIN CERTIFICATE REQUEST-----\nbm9wZQ==\n-----END CERTIFICATE REQUEST-----\n", sid, w),
    ).rejects.toThrow(/CSR cannot be parsed/);
    const id = await createIdentity("x");
    await expect(ca.issue(id.csrPem, "spiffe://elsewhere/function/f/i", w)).rejects.toThrow(/trust domain/);
  });
});
