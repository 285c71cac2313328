// The mesh CA (docs/design.md "VPN hops, tunnels and secrets"): certifies the key in an instance's CSR
// with its SPIFFE ID for one renewal window. With an Ed25519 root the leaf is a pure function of
// (CSR key, SPIFFE ID, window): the serial is derived from them and Ed25519 signatures are deterministic.
import "reflect-metadata";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  webcrypto,
} from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import type { CertWindow } from "./cert-window.js";

x509.cryptoProvider.set(webcrypto);

export interface MeshCaOptions {
  /** The control server's data directory; the generated root lives in `<dataDir>/ca/`. */
  dataDir: string;
  trustDomain: string;
  /** Operator-supplied CA certificate and key (PEM), used in place, instead of the generated root. */
  certFile?: string;
  keyFile?: string;
}

export interface IssuedCertificate {
  certPem: string;
  notBefore: Date;
  notAfter: Date;
  /** Hex, as in the certificate. */
  serial: string;
}

const ROOT_CN = "Catena mesh CA";
const ROOT_YEARS = 10;
/** SPIFFE trust domain names: lower-case letters, digits, dots, dashes, underscores. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

interface Signer {
  key: webcrypto.CryptoKey;
  algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
}

export class MeshCa {
  readonly trustDomain: string;
  readonly rootPem: string;
  readonly #signer: Signer;
  readonly #issuerName: x509.Name;
  /** The extensions every leaf has (built once: their ASN.1 encoding is a third of issue()'s time). */
  readonly #fixed: {
    bc: x509.Extension;
    ku: x509.Extension;
    kuRsa: x509.Extension;
    eku: x509.Extension;
    aki: x509.Extension;
  };

  private constructor(
    trustDomain: string,
    root: x509.X509Certificate,
    signer: Signer,
    authorityKeyId: string,
  ) {
    this.trustDomain = trustDomain;
    this.rootPem = root.toString("pem");
    this.#signer = signer;
    // Re-encoded from the root's own bytes so the leaf's issuer matches the root's subject.
    this.#issuerName = new x509.Name(root.subjectName.toArrayBuffer());
    this.#fixed = {
      bc: new x509.BasicConstraintsExtension(false, undefined, true),
      ku: new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      kuRsa: new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      eku: new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      aki: new x509.AuthorityKeyIdentifierExtension(authorityKeyId),
    };
  }

  static async open(options: MeshCaOptions): Promise<MeshCa> {
    const { trustDomain } = options;
    if (!TRUST_DOMAIN.test(trustDomain)) {
      throw new Error(
        `bad trust domain ${JSON.stringify(trustDomain)}: use lower-case letters, digits, . - _`,
      );
    }
    if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
      throw new Error("the CA certificate and key files go together: give both or neither");
    }
    let certFile = options.certFile;
    let keyFile = options.keyFile;
    if (certFile === undefined || keyFile === undefined) {
      const dir = path.join(options.dataDir, "ca");
      certFile = path.join(dir, "root.crt");
      keyFile = path.join(dir, "root.key");
      // The cert is written last: without it, a key file is a leftover no one can have trusted.
      if (!(await exists(certFile))) await generateRoot(dir, certFile, keyFile, trustDomain);
    }
    return MeshCa.#load(trustDomain, certFile, keyFile);
  }

  static async #load(trustDomain: string, certFile: string, keyFile: string): Promise<MeshCa> {
    const certText = await readFile(certFile, "utf8");
    const blocks = certText.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
    if (blocks !== 1) {
      throw new Error(
        blocks === 0
          ? `${certFile}: not a PEM certificate`
          : `${certFile}: holds ${blocks} certificates; give the CA certificate alone`,
      );
    }
    let root: x509.X509Certificate;
    let nodeRoot: NodeX509Certificate;
    try {
      root = new x509.X509Certificate(certText);
      nodeRoot = new NodeX509Certificate(certText);
    } catch (err) {
      throw new Error(`${certFile}: cannot parse the certificate: ${message(err)}`);
    }
    if (!nodeRoot.ca) throw new Error(`${certFile}: not a CA certificate (basicConstraints CA:TRUE missing)`);

    if (process.platform !== "win32") {
      const mode = (await stat(keyFile)).mode & 0o777;
      if (mode & 0o077) {
        throw new Error(
          `${keyFile}: the CA key is readable by group or others (mode ${mode.toString(8).padStart(4, "0")}); chmod 600 it`,
        );
      }
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(await readFile(keyFile, "utf8"));
    } catch (err) {
      throw new Error(`${keyFile}: cannot parse the private key (unencrypted PEM expected): ${message(err)}`);
    }
    const keySpki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
    const certSpki = nodeRoot.publicKey.export({ type: "spki", format: "der" });
    if (!keySpki.equals(certSpki))
      throw new Error(`${keyFile}: the key does not match the certificate ${certFile}`);

    const signer = await importSigner(privateKey, keyFile);
    const ski = root.getExtension(x509.SubjectKeyIdentifierExtension);
    const authorityKeyId = ski
      ? ski.keyId
      : Buffer.from(await root.publicKey.getKeyIdentifier()).toString("hex");
    return new MeshCa(trustDomain, root, signer, authorityKeyId);
  }

  spiffeId(fn: string, instance: string): string {
    for (const [what, v] of [
      ["function", fn],
      ["instance", instance],
    ] as const) {
      if (v === "" || v.includes("/"))
        throw new Error(`bad ${what} name ${JSON.stringify(v)} for a SPIFFE ID`);
    }
    return `spiffe://${this.trustDomain}/function/${fn}/${instance}`;
  }

  async issue(csrPem: string, spiffeId: string, window: CertWindow): Promise<IssuedCertificate> {
    if (!spiffeId.startsWith(`spiffe://${this.trustDomain}/`)) {
      throw new Error(`${spiffeId} is not in the trust domain ${this.trustDomain}`);
    }
    const csr = parseCsr(csrPem);
    let valid: boolean;
    try {
      valid = await csr.verify();
    } catch (err) {
      throw new Error(`CSR signature cannot be checked: ${message(err)}`);
    }
    if (!valid) throw new Error("CSR signature does not verify");

    const spki = Buffer.from(csr.publicKey.rawData);
    const isRsa = createPublicKey({ key: spki, format: "der", type: "spki" }).asymmetricKeyType === "rsa";
    const fixed = this.#fixed;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: leafSerial(spiffeId, spki, window.index),
      issuer: this.#issuerName,
      // No subject: the identity is the SAN alone, which RFC 5280 then wants critical.
      notBefore: window.notBefore,
      notAfter: window.notAfter,
      publicKey: csr.publicKey,
      signingKey: this.#signer.key,
      signingAlgorithm: this.#signer.algorithm,
      extensions: [
        fixed.bc,
        isRsa ? fixed.kuRsa : fixed.ku,
        fixed.eku,
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }], true),
        fixed.aki,
      ],
    });
    return {
      certPem: leaf.toString("pem"),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      serial: leaf.serialNumber,
    };
  }
}

function parseCsr(csrPem: string): x509.Pkcs10CertificateRequest {
  if (typeof csrPem !== "string" || !/-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(csrPem)) {
    throw new Error("CSR is not PEM (no CERTIFICATE REQUEST block)");
  }
  try {
    return new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new Error(`CSR cannot be parsed: ${message(err)}`);
  }
}

/** First 16 bytes of sha256(spiffeId ‖ 0x00 ‖ SPKI DER ‖ uint64be(window)), top bit cleared (positive). */
function leafSerial(spiffeId: string, spki: Buffer, windowIndex: number): string {
  const index = Buffer.alloc(8);
  index.writeBigUInt64BE(BigInt(windowIndex));
  const digest = createHash("sha256")
    .update(spiffeId, "utf8")
    .update(Buffer.of(0))
    .update(spki)
    .update(index)
    .digest()
    .subarray(0, 16);
  digest[0] = digest[0]! & 0x7f;
  return digest.toString("hex");
}

async function importSigner(key: KeyObject, keyFile: string): Promise<Signer> {
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const type = key.asymmetricKeyType;
  let importAlg: webcrypto.Algorithm | webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  let algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
  if (type === "ed25519") {
    importAlg = algorithm = { name: "Ed25519" };
  } else if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const named = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!named) throw new Error(`${keyFile}: unsupported EC curve ${curve} (P-256 or P-384)`);
    importAlg = { name: "ECDSA", namedCurve: named };
    algorithm = { name: "ECDSA", hash: named === "P-256" ? "SHA-256" : "SHA-384" } as webcrypto.EcdsaParams;
  } else if (type === "rsa") {
    importAlg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as webcrypto.RsaHashedImportParams;
    algorithm = { name: "RSASSA-PKCS1-v1_5" };
  } else {
    throw new Error(`${keyFile}: unsupported key type ${type} (Ed25519, ECDSA P-256/P-384 or RSA)`);
  }
  const cryptoKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, importAlg, false, ["sign"]);
  return { key: cryptoKey as webcrypto.CryptoKey, algorithm };
}

async function generateRoot(
  dir: string,
  certFile: string,
  keyFile: string,
  trustDomain: string,
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const keys = (await webcrypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString("hex"),
    name: [{ O: [trustDomain] }, { CN: [ROOT_CN] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: { name: "Ed25519" },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
  await writeAtomically(keyFile, keyPem, 0o600);
  await writeAtomically(certFile, cert.toString("pem"), 0o644);
}

/** Temp file created with its final mode (never briefly world-readable), synced, then renamed. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(tmp, "wx", mode);
  try {
    await handle.writeFile(text);
    await handle.chmod(mode); // the umask may have narrowed it; 0644 is wanted for the cert
    await handle.sync();
    await handle.close();
    await rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
