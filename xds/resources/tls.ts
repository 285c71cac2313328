// TLS transport sockets over SDS: the common context both ends share, and its two wrappers.
import { FILTER_NAME, TYPE_URL } from "../type-urls.js";
import { adsConfigSource, typedConfig } from "./typed-config.js";

export interface CommonTlsInput {
  /** SDS Secret with our certificate, fetched over ADS. */
  certificateSecret?: string;
  /** SDS Secret with the validation context (trusted CA), fetched over ADS. */
  validationSecret?: string;
  /** The peer must present a URI SAN starting with one of these (SPIFFE ID prefixes). */
  sanUriPrefixes?: readonly string[];
  alpnProtocols?: readonly string[];
  /** Pin both ends of the version range, e.g. "TLSv1_3". */
  tlsVersion?: "TLSv1_2" | "TLSv1_3";
}

/** envoy.extensions.transport_sockets.tls.v3.CommonTlsContext in proto object form. */
export function commonTlsContext(input: CommonTlsInput): Record<string, unknown> {
  const common: Record<string, unknown> = {};
  if (input.tlsVersion) {
    common.tls_params = {
      tls_minimum_protocol_version: input.tlsVersion,
      tls_maximum_protocol_version: input.tlsVersion,
    };
  }
  if (input.alpnProtocols?.length) common.alpn_protocols = [...input.alpnProtocols];
  if (input.certificateSecret) {
    common.tls_certificate_sds_secret_configs = [
      { name: input.certificateSecret, sds_config: adsConfigSource() },
    ];
  }
  const validation = input.validationSecret
    ? { name: input.validationSecret, sds_config: adsConfigSource() }
    : undefined;
  if (input.sanUriPrefixes?.length) {
    // SAN matching sits in the default context; the trusted CA comes from SDS (Envoy merges them).
    common.combined_validation_context = {
      default_validation_context: {
        match_typed_subject_alt_names: input.sanUriPrefixes.map((prefix) => ({
          san_type: "URI",
          matcher: { prefix },
        })),
      },
      ...(validation ? { validation_context_sds_secret_config: validation } : {}),
    };
  } else if (validation) {
    common.validation_context_sds_secret_config = validation;
  }
  return common;
}

/** A cluster's `transport_socket`: TLS as client. */
export function upstreamTlsSocket(input: CommonTlsInput & { sni?: string }): Record<string, unknown> {
  return {
    name: FILTER_NAME.tlsTransportSocket,
    typed_config: typedConfig(TYPE_URL.upstreamTlsContext, {
      common_tls_context: commonTlsContext(input),
      ...(input.sni ? { sni: input.sni } : {}),
    }),
  };
}

/** A filter chain's `transport_socket`: TLS as server, a client certificate required unless told. */
export function downstreamTlsSocket(
  input: CommonTlsInput & { requireClientCertificate?: boolean },
): Record<string, unknown> {
  return {
    name: FILTER_NAME.tlsTransportSocket,
    typed_config: typedConfig(TYPE_URL.downstreamTlsContext, {
      common_tls_context: commonTlsContext(input),
      require_client_certificate: { value: input.requireClientCertificate ?? true },
    }),
  };
}

/** `typed_extension_protocol_options` making a cluster speak HTTP/2 to its endpoints. */
export function http2ProtocolOptions(): Record<string, unknown> {
  return {
    [FILTER_NAME.httpProtocolOptions]: typedConfig(TYPE_URL.httpProtocolOptions, {
      explicit_http_config: { http2_protocol_options: {} },
    }),
  };
}
