// A function instance's own identity (docs/design.md "VPN hops, tunnels and secrets"): an Ed25519 key
// made at start that never leaves the process, and the CSR sent as node metadata `csr` for the mesh CA.
import "reflect-metadata";
import { generateKeyPair, type KeyObject, webcrypto, X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);

export interface Identity {
  /** PKCS#10 CSR (PEM); the CA ignores its subject and certifies only the key. */
  readonly csrPem: string;
  /** PKCS#8 PEM, for tls.createSecureContext({key}). */
  readonly privateKeyPem: string;
  /** Whether a certificate (PEM) carries our public key: a chain for another key is refused. */
  matches(certPem: string): boolean;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** `subjectHint` goes in the CSR's CN, for people reading it (the node id, say); empty for none. */
export async function createIdentity(subjectHint: string): Promise<Identity> {
  const { publicKey, privateKey } = await generateKeyPairAsync("ed25519");
  const spki = publicKey.export({ type: "spki", format: "der" });
  const keys = {
    publicKey: await webcrypto.subtle.importKey("spki", spki, { name: "Ed25519" }, true, ["verify"]),
    privateKey: await importPrivate(privateKey),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(subjectHint === "" ? {} : { name: [{ CN: [subjectHint] }] }),
    keys,
    signingAlgorithm: { name: "Ed25519" },
  });
  const csrPem = csr.toString("pem");
  const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return {
    csrPem,
    privateKeyPem,
    matches(certPem: string): boolean {
      try {
        return new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" }).equals(spki);
      } catch {
        return false;
      }
    },
  };
}

function importPrivate(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
}
