// The VPN hop in the Envoy dialect (docs/design.md, "VPN hops, tunnels and secrets"): the near
// gateway tunnels each connection as an HTTP/2 CONNECT stream over mutual TLS 1.3 to an instance
// of its peer, whose terminating listener routes the stream by authority to where the chain goes on.
import {
  type CommonTlsInput,
  type ConnectRoute,
  clusterLoadAssignment,
  connectTerminatorListener,
  downstreamTlsSocket,
  edsCluster,
  type Resource,
  tlsCertificateSecret,
  validationContextSecret,
} from "../../../xds/index.js";

/** The trust bundle's SDS name (Istio's name for the same thing). */
export const ROOT_CA_SECRET = "ROOTCA";
/** HBONE's port, when a vpn hop names no tunnelPort. */
export const DEFAULT_TUNNEL_PORT = 15008;
/** The CONNECT header carrying the original client (ip:port) to the far gateway. */
export const DOWNSTREAM_HEADER = "x-catena-downstream";
export const DEFAULT_TRUST_DOMAIN = "catena.local";

export function spiffeId(trustDomain: string, fn: string, instance: string): string {
  return `spiffe://${trustDomain}/function/${fn}/${instance}`;
}

/** Every instance of a ServiceFunction: what a SAN prefix matcher authorises. */
export function spiffePrefix(trustDomain: string, fn: string): string {
  return `spiffe://${trustDomain}/function/${fn}/`;
}

/** The listener name of a gateway's tunnel port (one per port, whatever the number of chains). */
export function tunnelListenerName(port: number): string {
  return `vpn/${port}`;
}

function mtls(trustDomain: string, fn: string, instance: string, peers: readonly string[]): CommonTlsInput {
  return {
    certificateSecret: spiffeId(trustDomain, fn, instance),
    validationSecret: ROOT_CA_SECRET,
    sanUriPrefixes: peers.map((p) => spiffePrefix(trustDomain, p)),
    alpnProtocols: ["h2"],
    tlsVersion: "TLSv1_3",
  };
}

/** Cluster and assignment `name` on instance `instance` of `fn`: the peer's instances at its tunnel port, over mTLS + HTTP/2. */
export function tunnelClusterResources(input: {
  name: string;
  trustDomain: string;
  fn: string;
  instance: string;
  peer: string;
  peerInstances: readonly { address: string }[];
  port: number;
}): Resource[] {
  return [
    edsCluster({
      name: input.name,
      connectTimeoutMs: 5000,
      http2: true,
      upstreamTls: mtls(input.trustDomain, input.fn, input.instance, [input.peer]),
      // A gateway instance just connected may not have bound its tunnel port yet.
      metadata: { catena: { connectRetries: 1 } },
    }),
    clusterLoadAssignment({
      clusterName: input.name,
      endpoints: input.peerInstances.map((p) => ({ address: p.address, port: input.port, weight: 1 })),
    }),
  ];
}

/** The terminating listener of one peer instance on one tunnel port. */
export function tunnelTerminatorListener(input: {
  trustDomain: string;
  fn: string;
  instance: { id: string; address: string };
  port: number;
  routes: readonly ConnectRoute[];
  /** ServiceFunctions allowed to tunnel here. */
  from: readonly string[];
}): Resource {
  const name = tunnelListenerName(input.port);
  return connectTerminatorListener({
    name,
    address: input.instance.address,
    port: input.port,
    transportSocket: downstreamTlsSocket(mtls(input.trustDomain, input.fn, input.instance.id, input.from)),
    routes: input.routes,
    metadata: { catena: { tunnelPort: input.port } },
  });
}

/** An instance's own certificate (no private key: it never left the instance) and the trust bundle. */
export function instanceSecrets(input: {
  trustDomain: string;
  fn: string;
  instance: string;
  certificatePem: string;
  rootPem: string;
}): Resource[] {
  return [
    tlsCertificateSecret({
      name: spiffeId(input.trustDomain, input.fn, input.instance),
      certificateChain: input.certificatePem,
    }),
    validationContextSecret({ name: ROOT_CA_SECRET, trustedCa: input.rootPem }),
  ];
}
