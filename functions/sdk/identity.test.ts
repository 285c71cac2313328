import "reflect-metadata";
import { createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { createIdentity } from "./identity.js";

x509.cryptoProvider.set(webcrypto);

/** A certificate for `publicKey`, signed by a throwaway key (enough for matches()). */
async function certFor(publicKey: x509.PublicKey): Promise<string> {
  const signer = (await webcrypto.subtle.generateKey({ name: "Ed25519" }, false, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    issuer: "CN=test",
    publicKey,
    signingKey: signer.privateKey,
    signingAlgorithm: { name: "Ed25519" },
  });
  return cert.toString("pem");
}

describe("createIdentity", () => {
  it("makes an Ed25519 key and a CSR for it that verifies", async () => {
    const id = await createIdentity("vpn-a-0");
    expect(id.csrPem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const csr = new x509.Pkcs10CertificateRequest(id.csrPem);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe("CN=vpn-a-0");
    expect(csr.publicKey.algorithm.name).toBe("Ed25519");

    const key = createPrivateKey(id.privateKeyPem);
    expect(id.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(key.asymmetricKeyType).toBe("ed25519");
    const spki = createPublicKey(key).export({ type: "spki", format: "der" });
    expect(Buffer.from(csr.publicKey.rawData).equals(spki)).toBe(true);
  });

  it("leaves the subject empty without a hint, and makes a new key each time", async () => {
    const a = await createIdentity("");
    const b = await createIdentity("");
    expect(new x509.Pkcs10CertificateRequest(a.csrPem).subject).toBe("");
    expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
  });

  it("matches a certificate for its own key only", async () => {
    const id = await createIdentity("x");
    const other = await createIdentity("y");
    const ours = await certFor(new x509.Pkcs10CertificateRequest(id.csrPem).publicKey);
    const theirs = await certFor(new x509.Pkcs10CertificateRequest(other.csrPem).publicKey);
    expect(id.matches(ours)).toBe(true);
    expect(id.matches(theirs)).toBe(false);
    expect(id.matches("not a certificate")).toBe(false);
    // The private key pairs with that certificate in a TLS context.
    expect(() => tls.createSecureContext({ key: id.privateKeyPem, cert: ours })).not.toThrow();
    expect(() => tls.createSecureContext({ key: id.privateKeyPem, cert: theirs })).toThrow();
  });
});
