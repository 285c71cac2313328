import { encodeResource, type Resource } from "../resource.js";
import { TYPE_URL } from "../type-urls.js";

export interface TlsCertificateSecretInput {
  name: string;
  certificateChain: string;
  /** Left out when the key never leaves its holder (the mesh CA certifies a CSR's key). */
  privateKey?: string;
}

export interface ValidationContextSecretInput {
  name: string;
  trustedCa: string;
}

/** A certificate and key, inline (PEM). */
export function tlsCertificateSecret(input: TlsCertificateSecretInput): Resource {
  return encodeResource(TYPE_URL.secret, input.name, {
    name: input.name,
    tls_certificate: {
      certificate_chain: { inline_string: input.certificateChain },
      ...(input.privateKey !== undefined ? { private_key: { inline_string: input.privateKey } } : {}),
    },
  });
}

/** Trusted CA certificates (PEM) for validating the peer. */
export function validationContextSecret(input: ValidationContextSecretInput): Resource {
  return encodeResource(TYPE_URL.secret, input.name, {
    name: input.name,
    validation_context: { trusted_ca: { inline_string: input.trustedCa } },
  });
}
