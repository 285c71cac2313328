// Test support for VPN hops: resources per DESIGN.md "VPN hops, tunnels and secrets" built with the
// xds/ builders the compiler uses (initiator listener with tunneling_config, tunnel cluster with an
// UpstreamTlsContext, the peer's CONNECT terminator and exit cluster, SDS secrets without a private
// key), a mesh CA issuing for the CSR each instance sent in its node metadata, and raw mTLS clients.
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { type ClientHttp2Session, connect as h2connect } from "node:http2";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { loadBuiltinFunctions } from "../../../functions/builtins.js";
import type { FunctionDefinition } from "../../../functions/sdk/define-function.js";
import type { EventSink } from "../../../functions/sdk/events.js";
import { FunctionHost } from "../../../functions/sdk/host.js";
import { createIdentity, type Identity } from "../../../functions/sdk/identity.js";
import { type CertWindow, certWindow, MeshCa } from "../../../services/control/ca/index.js";
import {
  type CommonTlsInput,
  clusterLoadAssignment,
  connectTerminatorListener,
  downstreamTlsSocket,
  edsCluster,
  type Resource,
  Snapshot,
  tcpProxyListener,
  tlsCertificateSecret,
  validationContextSecret,
} from "../../../xds/index.js";
import { until, type XdsServer } from "./harness.js";

export const TRUST_DOMAIN = "catena.local";
export const ROOTCA = "ROOTCA";
export const TUNNEL_HEADER = "x-catena-downstream";

export const spiffeId = (fn: string, instance: string) =>
  `spiffe://${TRUST_DOMAIN}/function/${fn}/${instance}`;
export const spiffePrefix = (fn: string) => `spiffe://${TRUST_DOMAIN}/function/${fn}/`;

export interface VpnInstance {
  /** The ServiceFunction (vpn-a...): its SPIFFE IDs are spiffe://T/function/<fn>/<id>. */
  fn: string;
  id: string;
  address: string;
}

function mtls(me: VpnInstance, peers: string[]): CommonTlsInput {
  return {
    certificateSecret: spiffeId(me.fn, me.id),
    validationSecret: ROOTCA,
    sanUriPrefixes: peers.map(spiffePrefix),
    alpnProtocols: ["h2"],
    tlsVersion: "TLSv1_3",
  };
}

/** The initiating instance of vpn hop `hop` of chain `chain`: listener `C/h` tunnelling to `endpoints`. */
export function initiatorResources(o: {
  chain: string;
  hop?: number;
  port: number;
  service: string;
  me: VpnInstance;
  peerFn: string;
  /** Where the tunnel goes: the peer's instances at its tunnel port (or something in between). */
  endpoints: { address: string; port: number }[];
  authority: string;
}): Resource[] {
  const h = o.hop ?? 0;
  const name = `${o.chain}/${h}`;
  return [
    tcpProxyListener({
      name,
      address: o.me.address,
      port: o.port,
      tcpProxy: {
        cluster: `${name}/next`,
        statPrefix: name,
        tunnelingHostname: o.authority,
        tunnelingHeaders: { [TUNNEL_HEADER]: "%DOWNSTREAM_REMOTE_ADDRESS%" },
      },
      metadata: { catena: { chain: o.chain, hop: h, service: o.service } },
    }),
    edsCluster({
      name: `${name}/next`,
      connectTimeoutMs: 3000,
      http2: true,
      upstreamTls: mtls(o.me, [o.peerFn]),
      metadata: { catena: { connectRetries: 1 } },
    }),
    clusterLoadAssignment({ clusterName: `${name}/next`, endpoints: o.endpoints }),
  ];
}

/** The peer instance: listener `vpn/Q` terminating CONNECT for each route, and each route's exit cluster. */
export function terminatorResources(o: {
  me: VpnInstance;
  tunnelPort: number;
  /** ServiceFunctions allowed to tunnel here. */
  from: string[];
  routes: {
    chain: string;
    hop: number;
    authority: string;
    backends: { address: string; port: number }[];
    /** PROXY v2 to what the exit connects to (the next hop). */
    proxyProtocol?: boolean;
  }[];
}): Resource[] {
  const out: Resource[] = [
    connectTerminatorListener({
      name: `vpn/${o.tunnelPort}`,
      address: o.me.address,
      port: o.tunnelPort,
      transportSocket: downstreamTlsSocket(mtls(o.me, o.from)),
      routes: o.routes.map((r) => ({
        name: `${r.chain}/${r.hop}`,
        domains: [r.authority],
        cluster: `${r.chain}/${r.hop}/exit`,
      })),
      metadata: { catena: { tunnelPort: o.tunnelPort } },
    }),
  ];
  for (const r of o.routes) {
    const name = `${r.chain}/${r.hop}/exit`;
    out.push(
      edsCluster({
        name,
        connectTimeoutMs: 3000,
        ...(r.proxyProtocol ? { upstreamProxyProtocol: "V2" as const } : {}),
        metadata: { catena: { chain: r.chain, hop: r.hop + 1 } },
      }),
      clusterLoadAssignment({ clusterName: name, endpoints: r.backends }),
    );
  }
  return out;
}

export function secretResources(me: VpnInstance, certPem: string, rootPem: string): Resource[] {
  return [
    tlsCertificateSecret({ name: spiffeId(me.fn, me.id), certificateChain: certPem }),
    validationContextSecret({ name: ROOTCA, trustedCa: rootPem }),
  ];
}

export function publishFor(xds: XdsServer, id: string, resources: Resource[]): void {
  xds.cache.setSnapshot(id, Snapshot.from(resources));
}

// ---- the mesh CA ----

export interface TestCa {
  ca: MeshCa;
  dir: string;
  /** A window valid now, distinct per `index` (rotation pushes a new one). */
  window(index: number, lifetimeMs?: number): CertWindow;
  close(): Promise<void>;
}

export async function startCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), "catena-vpn-ca-"));
  const ca = await MeshCa.open({ dataDir: dir, trustDomain: TRUST_DOMAIN });
  return {
    ca,
    dir,
    window: (index, lifetimeMs = 3_600_000) => {
      const now = Date.now();
      return {
        index,
        notBefore: new Date(now - 120_000 - index * 1000),
        notAfter: new Date(now + lifetimeMs + index * 1000),
        renewAt: new Date(now + lifetimeMs / 2),
      };
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A window that ended an hour ago. */
export function expiredWindow(): CertWindow {
  const w = certWindow(Date.now() - 10 * 3_600_000, 3_600_000);
  return w;
}

/** The CSR the instance sent as node metadata (it connects in the background after start). */
export async function csrOf(xds: XdsServer, id: string): Promise<string> {
  let csr: unknown;
  await until(() => {
    csr = xds.server.status.node(id)?.node.metadata.csr;
    return typeof csr === "string" && csr !== "";
  }, `node ${id}'s CSR in its metadata`);
  return csr as string;
}

// ---- hosts ----

let builtins: FunctionDefinition<unknown>[] | undefined;

export async function startVpnHost(o: {
  xds: XdsServer;
  me: VpnInstance;
  events?: EventSink;
  tunnelKeepaliveMs?: number;
  drainTimeoutMs?: number;
}): Promise<FunctionHost> {
  builtins ??= await loadBuiltinFunctions();
  return FunctionHost.start({
    type: "vpn",
    functionName: o.me.fn,
    nodeId: o.me.id,
    xdsServers: [o.xds.address],
    address: o.me.address,
    adminAddr: `${o.me.address}:0`,
    functions: builtins,
    events: o.events,
    ...(process.env.DEBUG_VPN
      ? {
          logger: {
            debug: () => {},
            info: (m: string, f?: unknown) => console.error(o.me.id, "info", m, JSON.stringify(f)),
            warn: (m: string, f?: unknown) => console.error(o.me.id, "warn", m, JSON.stringify(f)),
            error: (m: string, f?: unknown) => console.error(o.me.id, "error", m, JSON.stringify(f)),
          },
        }
      : {}),
    tunnelKeepaliveMs: o.tunnelKeepaliveMs,
    drainTimeoutMs: o.drainTimeoutMs,
    xdsBackoff: { initialMs: 50, maxMs: 500, multiplier: 2, jitter: 0.1 },
  });
}

// ---- raw clients of a tunnel port ----

export interface ClientCredentials {
  certPem?: string;
  keyPem?: string;
  caPem: string;
}

/** Opens a TLS + HTTP/2 session and one CONNECT; "ok" when answered 200, else why not. */
export async function tryConnect(
  host: string,
  port: number,
  authority: string,
  creds: ClientCredentials,
  localAddress?: string,
): Promise<{ ok: boolean; status?: number; error?: string; session?: ClientHttp2Session }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: { ok: boolean; status?: number; error?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const session = h2connect(`https://${host}:${port}`, {
      createConnection: () =>
        tlsConnect({
          socket: netConnect({ host, port, localAddress }),
          ...(creds.certPem ? { cert: creds.certPem, key: creds.keyPem } : {}),
          ca: creds.caPem,
          minVersion: "TLSv1.3",
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        }),
    });
    const timer = setTimeout(() => finish({ ok: false, error: "timeout" }), 5000);
    session.on("error", (e) => finish({ ok: false, error: e.message }));
    session.on("close", () => finish({ ok: false, error: "closed" }));
    const stream = session.request({ ":method": "CONNECT", ":authority": authority }, { endStream: false });
    stream.on("error", (e) => finish({ ok: false, error: e.message }));
    stream.on("response", (h) => {
      const status = Number(h[":status"]);
      finish({ ok: status === 200, status });
    });
    stream.on("close", () => finish({ ok: false, error: `stream closed ${stream.rstCode}` }));
  });
}

/** A test identity with a certificate from `ca` for `spiffe` in `window`. */
export async function clientCertificate(
  ca: MeshCa,
  spiffe: string,
  window: CertWindow,
): Promise<{ identity: Identity; certPem: string }> {
  const identity = await createIdentity("test-client");
  const issued = await ca.issue(identity.csrPem, spiffe, window);
  return { identity, certPem: issued.certPem };
}

// ---- a TCP relay that records what passes it ----

export interface RecordingRelay {
  address: string;
  port: number;
  /** Every byte seen, both directions. */
  seen(): Buffer;
  connections: number;
  /** While frozen, bytes are read and dropped (a silent path: keepalives go unanswered). */
  frozen: boolean;
  close(): Promise<void>;
}

export async function startRecordingRelay(
  address: string,
  target: { address: string; port: number },
): Promise<RecordingRelay> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const r: RecordingRelay = {
    address,
    port: 0,
    seen: () => Buffer.concat(chunks),
    connections: 0,
    frozen: false,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server: Server = createServer((client) => {
    r.connections++;
    const up = netConnect({ host: target.address, port: target.port });
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        up.destroy();
      });
    }
    const forward = (from: Socket, to: Socket) => {
      from.on("data", (c: Buffer) => {
        chunks.push(Buffer.from(c));
        if (r.frozen) return;
        if (!to.write(c)) {
          from.pause();
          to.once("drain", () => from.resume());
        }
      });
      from.on("end", () => to.end());
    };
    forward(client, up);
    forward(up, client);
  });
  server.listen(0, address);
  await once(server, "listening");
  r.port = (server.address() as { port: number }).port;
  return r;
}
