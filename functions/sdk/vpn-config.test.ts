// The VPN resources as the compiler emits them (xds/ builders) compile into tunnel plans; everything
// else in the TLS contexts, the CONNECT terminator and tunneling_config is refused with its field path.
import { describe, expect, it } from "vitest";
import {
  type CommonTlsInput,
  connectTerminatorListener,
  downstreamTlsSocket,
  edsCluster,
  listenerFromObject,
  type Resource,
  secretType,
  TYPE_URL,
  tcpProxyListener,
  tlsCertificateSecret,
  validationContextSecret,
} from "../../xds/index.js";
import { decodeAny } from "../../xds/resource.js";
import { clusterType } from "../../xds/resource-types/cluster.js";
import { listenerType } from "../../xds/resource-types/listener.js";
import { loadBuiltinFunctions } from "../builtins.js";
import { authorized, formatTunnelHeaders, matchAuthority } from "./connect-config.js";
import { FunctionRegistry } from "./define-function.js";
import { createIdentity } from "./identity.js";
import { compileListener } from "./listener-config.js";
import { loadHostProtos } from "./protos.js";
import { compileSecret, matchedSan, uriSans } from "./tls-config.js";
import { compileCluster } from "./upstream-cluster.js";
import { formatFieldErrors } from "./validated.js";

loadHostProtos();
const registry = new FunctionRegistry();
for (const f of await loadBuiltinFunctions()) registry.register(f);

function json(r: Resource): Record<string, unknown> {
  const any = decodeAny(r.any);
  const type =
    r.typeUrl === TYPE_URL.cluster ? clusterType : r.typeUrl === TYPE_URL.secret ? secretType : listenerType;
  const d = type.decode(any?.value ?? new Uint8Array());
  if (!d.ok) throw new Error(formatFieldErrors(d.errors));
  return d.value as Record<string, unknown>;
}

const TD = "catena.local";
const mtls = (instance: string, peers: string[]): CommonTlsInput => ({
  certificateSecret: `spiffe://${TD}/function/vpn-a/${instance}`,
  validationSecret: "ROOTCA",
  sanUriPrefixes: peers.map((p) => `spiffe://${TD}/function/${p}/`),
  alpnProtocols: ["h2"],
  tlsVersion: "TLSv1_3",
});

const tunnelCluster = (tls = mtls("a-1", ["vpn-b"]), http2 = true) =>
  edsCluster({
    name: "c/0/next",
    connectTimeoutMs: 5000,
    http2,
    upstreamTls: tls,
    metadata: { catena: { connectRetries: 1 } },
  });

const initiator = (
  headers: Record<string, string> = { "x-catena-downstream": "%DOWNSTREAM_REMOTE_ADDRESS%" },
) =>
  tcpProxyListener({
    name: "c/0",
    address: "127.68.0.1",
    port: 8080,
    tcpProxy: {
      cluster: "c/0/next",
      statPrefix: "c/0",
      tunnelingHostname: "web:8080",
      tunnelingHeaders: headers,
    },
    metadata: { catena: { chain: "c", hop: 0, service: "web" } },
  });

const terminator = (tls: Record<string, unknown> = downstreamTlsSocket(mtls("b-1", ["vpn-a"]))) =>
  connectTerminatorListener({
    name: "vpn/15008",
    address: "127.68.0.2",
    port: 15008,
    transportSocket: tls,
    routes: [{ name: "c/0", domains: ["web:8080"], cluster: "c/0/exit" }],
    metadata: { catena: { tunnelPort: 15008 } },
  });

/** Replaces one path of a decoded resource (for fields the builders do not set). */
function patched(r: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(r);
  let o: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[path[path.length - 1] as string] = value;
  return copy;
}

describe("VPN resources the host runs", () => {
  it("the initiator's listener tunnels each connection with its headers", () => {
    const r = compileListener(json(initiator()), registry);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.tunneling?.hostname).toBe("web:8080");
    expect(r.value.cluster).toBe("c/0/next");
    const h = formatTunnelHeaders(r.value.tunneling as NonNullable<typeof r.value.tunneling>, {
      source: { address: "10.0.0.7", port: 4242 },
      destination: { address: "127.68.0.1", port: 8080 },
    });
    expect(h).toEqual({ "x-catena-downstream": "10.0.0.7:4242" });
  });

  it("the tunnel cluster: TLS 1.3, h2, our certificate and the roots by SDS, the peer's SAN prefix", () => {
    const r = compileCluster(json(tunnelCluster()));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.http2).toBe(true);
    expect(r.value.tls).toEqual({
      certificateSecret: `spiffe://${TD}/function/vpn-a/a-1`,
      validationSecret: "ROOTCA",
      sanMatchers: [{ kind: "prefix", value: `spiffe://${TD}/function/vpn-b/` }],
      alpn: ["h2"],
      sni: undefined,
    });
    expect(r.value.connectAttempts).toBe(2);
  });

  it("the terminator: mutual TLS and CONNECT routes by authority", () => {
    const r = compileListener(json(terminator()), registry);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.tls?.sanMatchers).toEqual([{ kind: "prefix", value: `spiffe://${TD}/function/vpn-a/` }]);
    const c = r.value.connect;
    expect(c).toBeDefined();
    if (!c) return;
    expect(matchAuthority(c, "web:8080")).toMatchObject({ cluster: "c/0/exit", chain: "c", nextHop: 1 });
    expect(matchAuthority(c, "WEB:8080")?.cluster).toBe("c/0/exit");
    expect(matchAuthority(c, "db:5432")).toBeUndefined();
  });

  it("routes with principals: the RBAC HTTP filter lets each chain's gateways open only its own authority", () => {
    const l = connectTerminatorListener({
      name: "vpn/15008",
      address: "127.68.0.2",
      port: 15008,
      transportSocket: downstreamTlsSocket(mtls("b-1", ["vpn-a", "vpn-c"])),
      routes: [
        {
          name: "c/0",
          domains: ["web:8080"],
          cluster: "c/0/exit",
          principals: [`spiffe://${TD}/function/vpn-a/`],
        },
        {
          name: "d/0",
          domains: ["db:5432"],
          cluster: "d/0/exit",
          principals: [`spiffe://${TD}/function/vpn-c/`],
        },
      ],
    });
    const r = compileListener(json(l), registry);
    expect(r.ok, r.ok ? "" : formatFieldErrors(r.errors)).toBe(true);
    if (!r.ok || !r.value.connect) return;
    const plan = r.value.connect;
    const a = [`spiffe://${TD}/function/vpn-a/a-1`];
    const c = [`spiffe://${TD}/function/vpn-c/c-1`];
    expect(authorized(plan, "web:8080", a)).toBe(true);
    expect(authorized(plan, "WEB:8080", a)).toBe(true);
    expect(authorized(plan, "db:5432", a)).toBe(false);
    expect(authorized(plan, "db:5432", c)).toBe(true);
    expect(authorized(plan, "web:8080", c)).toBe(false);
    expect(authorized(plan, "web:8080", [])).toBe(false);
    // Without principals no filter is emitted: every peer the TLS context admits may CONNECT.
    const open = compileListener(json(terminator()), registry);
    expect(open.ok && open.value.connect && authorized(open.value.connect, "web:8080", c)).toBe(true);
  });

  it("an RBAC HTTP filter beyond the tunnel subset is refused with its path", () => {
    const base = json(
      connectTerminatorListener({
        name: "vpn/15008",
        address: "127.68.0.2",
        port: 15008,
        transportSocket: downstreamTlsSocket(mtls("b-1", ["vpn-a"])),
        routes: [{ name: "c/0", domains: ["web:8080"], cluster: "c/0/exit", principals: ["spiffe://x/"] }],
      }),
    );
    const at = [
      "filter_chains",
      "0",
      "filters",
      "0",
      "typed_config",
      "http_filters",
      "0",
      "typed_config",
      "rules",
    ];
    const walk = (o: Record<string, unknown>, path: string[]) =>
      path.reduce<Record<string, unknown>>((x, k) => x[k] as Record<string, unknown>, o);
    const deny = structuredClone(base);
    walk(deny, at).action = "DENY";
    const r1 = compileListener(deny, registry);
    expect(r1.ok ? "" : formatFieldErrors(r1.errors)).toContain("rules.action: only ALLOW is supported");
    const byIp = structuredClone(base);
    (walk(byIp, [...at, "policies", "c/0"]) as { principals: unknown[] }).principals = [
      { remote_ip: { address_prefix: "10.0.0.0", prefix_len: { value: 8 } } },
    ];
    const r2 = compileListener(byIp, registry);
    expect(r2.ok ? "" : formatFieldErrors(r2.errors)).toContain('policies["c/0"].principals[0]');
  });

  it("the exit cluster names the chain and hop its PROXY header carries", () => {
    const r = compileCluster(
      json(
        edsCluster({
          name: "c/0/exit",
          upstreamProxyProtocol: "V2",
          metadata: { catena: { chain: "c", hop: 1 } },
        }),
      ),
    );
    expect(r.ok && r.value).toMatchObject({ chain: "c", hop: 1, proxyProtocol: true });
  });

  const common = ["transport_socket", "typed_config", "common_tls_context"];
  it.each([
    {
      name: "TLS 1.2 allowed",
      value: () =>
        patched(json(tunnelCluster()), [...common, "tls_params", "tls_minimum_protocol_version"], "TLSv1_2"),
      error:
        /transport_socket\.typed_config\.common_tls_context\.tls_params\.tls_minimum_protocol_version: must be TLSv1_3/,
    },
    {
      name: "cipher suites",
      value: () => patched(json(tunnelCluster()), [...common, "tls_params", "cipher_suites"], ["AES128"]),
      error: /common_tls_context\.tls_params\.cipher_suites: not supported/,
    },
    {
      name: "ALPN http/1.1",
      value: () => json(tunnelCluster({ ...mtls("a-1", ["vpn-b"]), alpnProtocols: ["http/1.1"] })),
      error: /common_tls_context\.alpn_protocols: must be \["h2"\]/,
    },
    {
      name: "a SAN matcher on DNS names",
      value: () =>
        patched(
          json(tunnelCluster()),
          [
            ...common,
            "combined_validation_context",
            "default_validation_context",
            "match_typed_subject_alt_names",
          ],
          [{ san_type: "DNS", matcher: { prefix: "x" } }],
        ),
      error: /match_typed_subject_alt_names\[0\]\.san_type: only URI is supported/,
    },
    {
      name: "a CRL",
      value: () =>
        patched(
          json(tunnelCluster()),
          [...common, "combined_validation_context", "default_validation_context", "crl"],
          { inline_string: "x" },
        ),
      error: /default_validation_context\.crl: not supported/,
    },
    {
      name: "TLS without HTTP/2",
      value: () => json(tunnelCluster(mtls("a-1", ["vpn-b"]), false)),
      error: /typed_extension_protocol_options: a TLS cluster carries HTTP\/2 CONNECT tunnels/,
    },
  ])("a cluster with $name is refused with its field path", ({ value, error }) => {
    const r = compileCluster(value());
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(error);
  });

  const hcm = ["filter_chains", "0", "filters", "0", "typed_config"];
  it.each([
    {
      name: "an optional client certificate",
      value: () =>
        json(terminator(downstreamTlsSocket({ ...mtls("b-1", ["vpn-a"]), requireClientCertificate: false }))),
      error: /transport_socket\.typed_config\.require_client_certificate: must be true/,
    },
    {
      name: "session ticket keys",
      value: () =>
        patched(
          json(terminator()),
          ["filter_chains", "0", "transport_socket", "typed_config", "session_timeout"],
          {
            seconds: 5,
          },
        ),
      error: /transport_socket\.typed_config\.session_timeout: not supported/,
    },
    {
      name: "HTTP/1 codec",
      value: () => patched(json(terminator()), [...hcm, "codec_type"], "HTTP1"),
      error: /filters\[0\]\.typed_config\.codec_type: must be HTTP2/,
    },
    {
      name: "an access log",
      value: () => patched(json(terminator()), [...hcm, "access_log"], [{ name: "x" }]),
      error: /filters\[0\]\.typed_config\.access_log: not supported/,
    },
    {
      name: "a route that proxies CONNECT instead of terminating it",
      value: () =>
        patched(
          json(terminator()),
          [...hcm, "route_config", "virtual_hosts", "0", "routes", "0", "route", "upgrade_configs"],
          [{ upgrade_type: "CONNECT" }],
        ),
      error: /virtual_hosts\[0\]\.routes\[0\]\.route\.upgrade_configs: must be/,
    },
    {
      name: "a route on a path",
      value: () =>
        patched(json(terminator()), [...hcm, "route_config", "virtual_hosts", "0", "routes", "0", "match"], {
          prefix: "/",
        }),
      error: /routes\[0\]\.match\.prefix: not supported/,
    },
    {
      name: "RDS",
      value: () => {
        const l = patched(json(terminator()), [...hcm, "rds"], { route_config_name: "x" });
        return patched(l, [...hcm, "route_config"], undefined);
      },
      error: /filters\[0\]\.typed_config\.rds: not supported/,
    },
    {
      name: "a PROXY listener filter",
      value: () =>
        patched(
          json(terminator()),
          ["listener_filters"],
          [
            {
              name: "envoy.filters.listener.proxy_protocol",
              typed_config: { "@type": TYPE_URL.listenerProxyProtocol },
            },
          ],
        ),
      error: /listener_filters: not supported on a tunnel listener/,
    },
    {
      name: "an unknown header command",
      value: () => json(initiator({ "x-catena-downstream": "%UPSTREAM_HOST%" })),
      error: /tunneling_config\.headers_to_add\[0\]\.header\.value: %UPSTREAM_HOST% is not supported/,
    },
    {
      name: "a connection-specific header",
      value: () => json(initiator({ connection: "close" })),
      error: /headers_to_add\[0\]\.header\.key: "connection" cannot be sent/,
    },
  ])("a listener with $name is refused with its field path", ({ value, error }) => {
    const r = compileListener(value(), registry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(error);
  });

  it("a TLS filter chain in front of tcp_proxy is refused (only the CONNECT terminator takes TLS)", () => {
    const l = json(initiator());
    const fc = (l.filter_chains as Record<string, unknown>[])[0] as Record<string, unknown>;
    fc.transport_socket = json(terminator()).filter_chains
      ? ((json(terminator()).filter_chains as Record<string, unknown>[])[0] as Record<string, unknown>)
          .transport_socket
      : undefined;
    const r = compileListener(l, registry);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(formatFieldErrors(r.errors)).toMatch(/filter_chains\[0\]\.transport_socket: a TLS filter chain/);
  });

  it("listenerFromObject round trip keeps the HCM as the only filter", () => {
    const l = json(terminator());
    const filters = ((l.filter_chains as Record<string, unknown>[])[0] as Record<string, unknown>)
      .filters as unknown[];
    const copy = patched(l, ["filter_chains", "0", "filters"], [...filters, ...filters]);
    const r = compileListener(json(listenerFromObject(copy as { name: string })), registry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(/http_connection_manager must be the only filter/);
  });
});

describe("secrets", async () => {
  const me = await createIdentity("me");
  const other = await createIdentity("other");
  // A self-signed certificate is enough to tell keys apart.
  const { MeshCa, certWindow } = await import("../../services/control/ca/index.js");
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "catena-vpn-config-"));
  const ca = await MeshCa.open({ dataDir: dir, trustDomain: TD });
  const window = certWindow(Date.now(), 3_600_000);
  const mine = await ca.issue(me.csrPem, `spiffe://${TD}/function/vpn-a/a-1`, window);
  const theirs = await ca.issue(other.csrPem, `spiffe://${TD}/function/vpn-a/a-1`, window);
  await rm(dir, { recursive: true, force: true });

  it("a certificate for our key is taken, without a private key", () => {
    const r = compileSecret(
      json(tlsCertificateSecret({ name: "spiffe://x", certificateChain: mine.certPem })),
      (pem) => me.matches(pem),
    );
    expect(r.ok && r.value.kind).toBe("certificate");
  });

  it("a certificate for another key is refused", () => {
    const r = compileSecret(
      json(tlsCertificateSecret({ name: "spiffe://x", certificateChain: theirs.certPem })),
      (pem) => me.matches(pem),
    );
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(formatFieldErrors(r.errors)).toMatch(
        /tls_certificate\.certificate_chain: the certificate's public key is not this instance's/,
      );
  });

  it("a private key in the secret is refused (the key never travels)", () => {
    const r = compileSecret(
      json(
        tlsCertificateSecret({
          name: "spiffe://x",
          certificateChain: mine.certPem,
          privateKey: me.privateKeyPem,
        }),
      ),
      (pem) => me.matches(pem),
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(formatFieldErrors(r.errors)).toMatch(/tls_certificate\.private_key: not accepted/);
  });

  it("trusted roots", () => {
    const r = compileSecret(
      json(validationContextSecret({ name: "ROOTCA", trustedCa: ca.rootPem })),
      () => false,
    );
    expect(r.ok && r.value.kind).toBe("validation");
  });

  it("the SPIFFE ID is read from the URI SAN and matched by prefix", () => {
    const uris = uriSans(`DNS:x, URI:spiffe://${TD}/function/vpn-a/a-1`);
    expect(uris).toEqual([`spiffe://${TD}/function/vpn-a/a-1`]);
    expect(matchedSan(uris, [{ kind: "prefix", value: `spiffe://${TD}/function/vpn-a/` }])).toBe(uris[0]);
    expect(matchedSan(uris, [{ kind: "prefix", value: `spiffe://${TD}/function/vpn-c/` }])).toBeUndefined();
    expect(
      matchedSan(
        [`spiffe://${TD}/function/vpn-ab/x`],
        [{ kind: "prefix", value: `spiffe://${TD}/function/vpn-a/` }],
      ),
    ).toBeUndefined();
  });
});
