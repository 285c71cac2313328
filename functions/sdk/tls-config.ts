// The TLS subset the host runs (DESIGN.md "VPN hops, tunnels and secrets"): an Envoy
// UpstreamTlsContext on a Cluster or DownstreamTlsContext on a filter chain, and SDS Secrets. Contexts
// name their certificate and trust by SDS secret; the private key is the instance's own (it never
// travels). Everything the host does not implement is a field error with its path, so a NACK says
// exactly what to change. Never throws.
import { X509Certificate } from "node:crypto";
import { isObject, present, rejectUnknown, wrappedValue } from "./proto-json.js";
import { ErrorList, type Validated } from "./validated.js";

const PREFIX = "type.googleapis.com/";
export const TLS_TYPE_URL = {
  upstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  downstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  secret: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
} as const;

export const TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls";

/** A peer certificate's URI SAN must match one of these (Envoy StringMatcher: prefix or exact). */
export interface SanMatcher {
  kind: "prefix" | "exact";
  value: string;
}

/** What one TLS context asks for; the PEMs come from the secrets it names. */
export interface TlsContextPlan {
  /** SDS name of our certificate (tls_certificate_sds_secret_configs[0]). */
  certificateSecret: string;
  /** SDS name of the trusted roots (validation_context_sds_secret_config). */
  validationSecret: string;
  /** The peer's URI SAN must match one of these. Empty: any certificate the roots trust. */
  sanMatchers: SanMatcher[];
  /** ALPN offered and required: always ["h2"]. */
  alpn: string[];
  /** Upstream only: the SNI to send. */
  sni: string | undefined;
}

function adsSource(v: unknown, at: string, errors: ErrorList): void {
  // An SDS config must point back at the ADS stream; an absent one means the same in Catena.
  if (v === undefined || v === null) return;
  if (!isObject(v) || !isObject(v.ads)) {
    errors.add(at, "only ADS (sds_config: {ads: {}}) is supported");
    return;
  }
  rejectUnknown(v, new Set(["ads", "resource_api_version", "initial_fetch_timeout"]), at, errors);
}

function sdsName(v: unknown, at: string, errors: ErrorList): string {
  if (!isObject(v) || typeof v.name !== "string" || v.name === "") {
    errors.add(`${at}.name`, "must be set");
    return "";
  }
  rejectUnknown(v, new Set(["name", "sds_config"]), at, errors);
  adsSource(v.sds_config, `${at}.sds_config`, errors);
  return v.name;
}

const COMMON_FIELDS = new Set([
  "tls_params",
  "alpn_protocols",
  "tls_certificate_sds_secret_configs",
  "combined_validation_context",
  "validation_context_sds_secret_config",
]);

function commonTlsContext(raw: unknown, at: string, plan: TlsContextPlan, errors: ErrorList): void {
  if (!isObject(raw)) {
    errors.add(at, "must be set");
    return;
  }
  rejectUnknown(raw, COMMON_FIELDS, at, errors);
  // TLS 1.3 only: both bounds must say so (an absent bound would let the peer negotiate 1.2).
  const tp = isObject(raw.tls_params) ? raw.tls_params : {};
  rejectUnknown(
    tp,
    new Set(["tls_minimum_protocol_version", "tls_maximum_protocol_version"]),
    `${at}.tls_params`,
    errors,
  );
  for (const f of ["tls_minimum_protocol_version", "tls_maximum_protocol_version"])
    if (tp[f] !== "TLSv1_3") errors.add(`${at}.tls_params.${f}`, "must be TLSv1_3 (TLS 1.3 only)");
  const alpn = Array.isArray(raw.alpn_protocols) ? raw.alpn_protocols : [];
  if (alpn.length !== 1 || alpn[0] !== "h2") errors.add(`${at}.alpn_protocols`, 'must be ["h2"]');
  const certs = Array.isArray(raw.tls_certificate_sds_secret_configs)
    ? raw.tls_certificate_sds_secret_configs
    : [];
  if (certs.length !== 1)
    errors.add(
      `${at}.tls_certificate_sds_secret_configs`,
      `must name exactly one secret, found ${certs.length}`,
    );
  else plan.certificateSecret = sdsName(certs[0], `${at}.tls_certificate_sds_secret_configs[0]`, errors);

  const cvcAt = `${at}.combined_validation_context`;
  const cvc = raw.combined_validation_context;
  if (!isObject(cvc)) {
    // Roots without SAN matchers: any certificate they issued is accepted.
    if (isObject(raw.validation_context_sds_secret_config)) {
      plan.validationSecret = sdsName(
        raw.validation_context_sds_secret_config,
        `${at}.validation_context_sds_secret_config`,
        errors,
      );
      return;
    }
    errors.add(cvcAt, "must be set (the peer is always verified)");
    return;
  }
  if (present(raw, "validation_context_sds_secret_config"))
    errors.add(`${at}.validation_context_sds_secret_config`, "give it inside combined_validation_context");
  rejectUnknown(
    cvc,
    new Set(["default_validation_context", "validation_context_sds_secret_config"]),
    cvcAt,
    errors,
  );
  plan.validationSecret = sdsName(
    cvc.validation_context_sds_secret_config,
    `${cvcAt}.validation_context_sds_secret_config`,
    errors,
  );
  const dvcAt = `${cvcAt}.default_validation_context`;
  const dvc = isObject(cvc.default_validation_context) ? cvc.default_validation_context : {};
  rejectUnknown(dvc, new Set(["match_typed_subject_alt_names"]), dvcAt, errors);
  const sans = Array.isArray(dvc.match_typed_subject_alt_names) ? dvc.match_typed_subject_alt_names : [];
  sans.forEach((s, i) => {
    const sAt = `${dvcAt}.match_typed_subject_alt_names[${i}]`;
    if (!isObject(s)) {
      errors.add(sAt, "must be an object");
      return;
    }
    rejectUnknown(s, new Set(["san_type", "matcher", "oid"]), sAt, errors);
    if (s.san_type !== "URI") errors.add(`${sAt}.san_type`, "only URI is supported");
    const m = isObject(s.matcher) ? s.matcher : {};
    rejectUnknown(m, new Set(["prefix", "exact"]), `${sAt}.matcher`, errors);
    if (typeof m.prefix === "string" && m.prefix !== "")
      plan.sanMatchers.push({ kind: "prefix", value: m.prefix });
    else if (typeof m.exact === "string" && m.exact !== "")
      plan.sanMatchers.push({ kind: "exact", value: m.exact });
    else errors.add(`${sAt}.matcher`, "must be a non-empty prefix or exact matcher");
  });
}

function emptyPlan(): TlsContextPlan {
  return { certificateSecret: "", validationSecret: "", sanMatchers: [], alpn: ["h2"], sni: undefined };
}

/** envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext; `at` prefixes every path. */
export function compileUpstreamTlsContext(raw: unknown, at: string): Validated<TlsContextPlan> {
  const errors = new ErrorList();
  const plan = emptyPlan();
  const u = isObject(raw) ? raw : {};
  rejectUnknown(u, new Set(["common_tls_context", "sni"]), at, errors);
  if (typeof u.sni === "string" && u.sni !== "") plan.sni = u.sni;
  commonTlsContext(u.common_tls_context, `${at}.common_tls_context`, plan, errors);
  return errors.result(plan);
}

/** envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext (mutual TLS only). */
export function compileDownstreamTlsContext(raw: unknown, at: string): Validated<TlsContextPlan> {
  const errors = new ErrorList();
  const plan = emptyPlan();
  const d = isObject(raw) ? raw : {};
  rejectUnknown(d, new Set(["common_tls_context", "require_client_certificate"]), at, errors);
  if (wrappedValue(d.require_client_certificate) !== true)
    errors.add(`${at}.require_client_certificate`, "must be true (mutual TLS only)");
  commonTlsContext(d.common_tls_context, `${at}.common_tls_context`, plan, errors);
  return errors.result(plan);
}

// ---- secrets ----

export type SecretPlan =
  | { name: string; kind: "certificate"; certPem: string; notAfter: number }
  | { name: string; kind: "validation"; caPem: string };

function dataSourcePem(v: unknown, at: string, errors: ErrorList): string {
  if (!isObject(v)) {
    errors.add(at, "must be set");
    return "";
  }
  rejectUnknown(v, new Set(["inline_string", "inline_bytes"]), at, errors);
  if (typeof v.inline_string === "string" && v.inline_string !== "") return v.inline_string;
  // Bytes arrive base64 in the JSON form.
  if (typeof v.inline_bytes === "string" && v.inline_bytes !== "")
    return Buffer.from(v.inline_bytes, "base64").toString("utf8");
  errors.add(at, "only inline_string or inline_bytes is supported");
  return "";
}

/** A Secret: a certificate chain (paired with our own key, which must match it) or trusted roots. */
export function compileSecret(json: unknown, ownsKeyOf: (certPem: string) => boolean): Validated<SecretPlan> {
  const errors = new ErrorList();
  const s = isObject(json) ? json : {};
  const name = typeof s.name === "string" ? s.name : "";
  rejectUnknown(s, new Set(["name", "tls_certificate", "validation_context"]), "", errors);
  // rejectUnknown's paths start with a dot at the top level.
  for (const e of errors.errors) e.path = e.path.replace(/^\./, "");
  if (isObject(s.tls_certificate)) {
    const tc = s.tls_certificate;
    if (present(tc, "private_key"))
      errors.add(
        "tls_certificate.private_key",
        "not accepted: the instance pairs the chain with the key it made (the key never travels)",
      );
    rejectUnknown(tc, new Set(["certificate_chain", "private_key"]), "tls_certificate", errors);
    const pem = dataSourcePem(tc.certificate_chain, "tls_certificate.certificate_chain", errors);
    if (pem === "") return errors.result({ name, kind: "certificate", certPem: "", notAfter: 0 });
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(pem);
    } catch (e) {
      errors.add("tls_certificate.certificate_chain", `not a PEM certificate: ${(e as Error).message}`);
      return errors.result({ name, kind: "certificate", certPem: pem, notAfter: 0 });
    }
    if (!ownsKeyOf(pem))
      errors.add(
        "tls_certificate.certificate_chain",
        "the certificate's public key is not this instance's (it was issued for another key)",
      );
    return errors.result({ name, kind: "certificate", certPem: pem, notAfter: Date.parse(leaf.validTo) });
  }
  if (isObject(s.validation_context)) {
    const vc = s.validation_context;
    rejectUnknown(vc, new Set(["trusted_ca"]), "validation_context", errors);
    const pem = dataSourcePem(vc.trusted_ca, "validation_context.trusted_ca", errors);
    if (pem !== "") {
      try {
        new X509Certificate(pem);
      } catch (e) {
        errors.add("validation_context.trusted_ca", `not a PEM certificate: ${(e as Error).message}`);
      }
    }
    return errors.result({ name, kind: "validation", caPem: pem });
  }
  errors.add("", "a Secret must hold tls_certificate or validation_context");
  return errors.result({ name, kind: "validation", caPem: "" });
}

// ---- peer identity ----

/** The URI SANs of a certificate, from Node's `subjectaltname` text ("URI:a, DNS:b", values maybe quoted). */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(", ")) {
    if (!part.startsWith("URI:")) continue;
    let v = part.slice(4);
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        continue;
      }
    }
    out.push(v);
  }
  return out;
}

/** The first URI SAN that one of the matchers accepts; undefined when none does. */
export function matchedSan(uris: readonly string[], matchers: readonly SanMatcher[]): string | undefined {
  if (matchers.length === 0) return uris[0] ?? "";
  for (const u of uris)
    for (const m of matchers) if (m.kind === "prefix" ? u.startsWith(m.value) : u === m.value) return u;
  return undefined;
}
