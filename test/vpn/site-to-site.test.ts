// End to end: a chain whose middle hop is a VPN pair, applied to the control server and run by real
// function hosts. The mesh CA certifies each gateway's own key (CSR in node metadata), SDS brings the
// certificates, the near gateway tunnels every connection as HTTP/2 CONNECT over mutual TLS 1.3 to
// the far one, which hands it to the load balancer with a PROXY v2 header. Certificates live a few
// seconds here, so the tests run across rotations.
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { connect as http2Connect } from "node:http2";
import { connect, createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionHost } from "../../functions/sdk/host.js";
import { createIdentity } from "../../functions/sdk/identity.js";
import { certWindow, MeshCa } from "../../services/control/ca/index.js";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { AdsClient, TYPE_URL } from "../../xds/index.js";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import { startTestHost } from "../support/hosts.js";
import { object } from "../support/manifest.js";

const NET = 10 + Math.floor(Math.random() * 200);
const siteA = (n: number) => `127.67.${NET}.${n}`;
const siteB = (n: number) => `127.68.${NET}.${n}`;
const CLIENT = siteA(100);
const LIFETIME_MS = 3000; // renewed every 2 s

let control: TestControl;
let backend: Server;
let hosts: FunctionHost[] = [];
let port = 0;
let tunnelPort = 0;

/** Answers each connection with the sha256 of everything it received, once the client half-closes. */
async function hashingBackend(): Promise<Server> {
  const server = createServer((s) => {
    const hash = createHash("sha256");
    s.on("data", (d) => hash.update(d));
    s.on("end", () => s.end(hash.digest("hex")));
    s.on("error", () => undefined);
  });
  server.listen(0, siteB(50));
  await once(server, "listening");
  return server;
}

function manifest() {
  return {
    items: [
      object("Network", "s2s-a", { cidr: `127.67.${NET}.0/24` }),
      object("Network", "s2s-b", { cidr: `127.68.${NET}.0/24` }),
      object("Service", "s2s-db", {
        network: "s2s-b",
        ports: [{ name: "tcp", port }],
        endpoints: [{ address: siteB(50), port: (backend.address() as { port: number }).port }],
      }),
      object("ServiceFunction", "s2s-fw", { type: "firewall" }),
      object("ServiceFunction", "s2s-vpn-a", { type: "vpn", config: { peer: "s2s-vpn-b", tunnelPort } }),
      object("ServiceFunction", "s2s-vpn-b", { type: "vpn" }),
      object("ServiceFunction", "s2s-lb", { type: "loadbalancer" }),
      object("ServiceChain", "s2s", {
        service: "s2s-db",
        ingress: { port },
        hops: [
          {
            function: "s2s-fw",
            config: { defaultAction: "deny", allow: [{ from: [{ cidr: `127.67.${NET}.0/24` }] }] },
          },
          { function: "s2s-vpn-a", config: { authority: "db.site-b:5432" } },
          { function: "s2s-lb" },
        ],
      }),
    ],
  };
}

/** Polls until `probe` gives a value (bounded). */
async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) {
      const chain = (await getJson(control.url, "/v1/servicechains/s2s")).body;
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(chain)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ready(): Promise<boolean> {
  const body = (await getJson(control.url, "/v1/servicechains/s2s")).body as {
    status?: { conditions?: { type: string; status: string }[] };
  };
  return body.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Sends `payload` through the chain from `from`; resolves with the backend's digest, or "closed". */
function sendThrough(
  payload: Buffer,
  from = CLIENT,
  pace?: { chunks: number; everyMs: number },
  to = { host: siteA(1), port: 0 },
) {
  return new Promise<string>((resolve) => {
    const s: Socket = connect({ host: to.host, port: to.port || port, localAddress: from });
    let answer = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      answer += d;
    });
    s.on("close", () => resolve(answer === "" ? "closed" : answer));
    s.on("error", () => undefined);
    s.on("connect", async () => {
      if (!pace) {
        s.end(payload);
        return;
      }
      const size = Math.ceil(payload.length / pace.chunks);
      for (let i = 0; i < pace.chunks && !s.destroyed; i++) {
        s.write(payload.subarray(i * size, (i + 1) * size));
        await new Promise((r) => setTimeout(r, pace.everyMs));
      }
      s.end();
    });
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The certificate the far gateway presents now, seen by a client holding a mesh certificate of vpn-a. */
async function farCertificate(): Promise<X509Certificate | undefined> {
  const ca = await MeshCa.open({ dataDir: control.dataDir, trustDomain: "catena.local" });
  const id = await createIdentity("probe");
  const { certPem } = await ca.issue(
    id.csrPem,
    ca.spiffeId("s2s-vpn-a", "probe"),
    certWindow(Date.now(), 60_000),
  );
  const s = tlsConnect({
    host: siteB(1),
    port: tunnelPort,
    ca: ca.rootPem,
    cert: certPem,
    key: id.privateKeyPem,
    checkServerIdentity: () => undefined, // SPIFFE IDs are URI SANs, not host names
    ALPNProtocols: ["h2"],
  });
  const peer = await new Promise<X509Certificate | undefined>((resolve) => {
    s.on("secureConnect", () => resolve(s.getPeerX509Certificate()));
    s.on("error", () => resolve(undefined));
  });
  s.destroy();
  return peer;
}

beforeAll(async () => {
  backend = await hashingBackend();
  port = await freePort(siteA(1));
  tunnelPort = await freePort(siteB(1));
  control = await startTestControl({ ca: { lifetimeMs: LIFETIME_MS } });
  const res = await post(control.url, "/v1/apply", manifest());
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  // A short drain: a listener replaced under a live connection would cut it within the test.
  const start = (type: string, functionName: string, nodeId: string, address: string) =>
    startTestHost({
      type,
      functionName,
      nodeId,
      address,
      xdsServers: [control.server.xdsAddr],
      drainTimeoutMs: 1000,
    });
  hosts = await Promise.all([
    start("firewall", "s2s-fw", "s2s-fw-1", siteA(1)),
    start("vpn", "s2s-vpn-a", "s2s-vpn-a-1", siteA(2)),
    start("vpn", "s2s-vpn-b", "s2s-vpn-b-1", siteB(1)),
    start("loadbalancer", "s2s-lb", "s2s-lb-1", siteB(2)),
  ]);
  await until("chain Ready", ready);
}, 60_000);

afterAll(async () => {
  for (const h of hosts) h.destroy();
  await Promise.all(hosts.map((h) => h.close().catch(() => undefined)));
  await control?.stop();
  backend?.close();
});

describe("a chain through a VPN pair (control server, mesh CA, SDS)", () => {
  it("carries data intact through the tunnel, several connections at once", async () => {
    const payloads = [
      randomBytes(4 << 20),
      randomBytes(1 << 20),
      randomBytes(333_333),
      Buffer.alloc(0),
      ...Array.from({ length: 4 }, () => randomBytes(10_000)),
    ];
    const far = () => ({ sessions: 0, streams: 0, ...hosts[2]?.tunnelStats(`vpn/${tunnelPort}`) });
    const before = far();
    const digests = await Promise.all(payloads.map((p) => sendThrough(p)));
    expect(digests).toEqual(payloads.map(sha));
    // Each connection was a CONNECT stream at the far gateway; they shared the near gateway's TLS
    // connection (a new one only when a certificate rotation, every 2 s here, fell within the run).
    const after = far();
    expect(after.streams - before.streams).toBe(payloads.length);
    expect(after.sessions - before.sessions).toBeLessThanOrEqual(3);
  });

  it("a second chain tunnelling to the same gateway changes its routes, not its connections", async () => {
    const port2 = await freePort(siteA(2));
    const long = randomBytes(1 << 20);
    const longRun = sendThrough(long, CLIENT, { chunks: 30, everyMs: 100 }); // ~3 s, past the 1 s drain
    await new Promise((r) => setTimeout(r, 300));
    const sessions = { ...hosts[2]?.tunnelStats(`vpn/${tunnelPort}`) };
    const second = [
      object("Service", "s2s-db2", {
        network: "s2s-b",
        ports: [{ name: "tcp", port: port2 }],
        endpoints: [{ address: siteB(50), port: (backend.address() as { port: number }).port }],
      }),
      object("ServiceChain", "s2s-2", {
        service: "s2s-db2",
        ingress: { port: port2 },
        hops: [{ function: "s2s-vpn-a", config: { authority: "db2.site-b:5432" } }],
      }),
    ];
    const res = await post(control.url, "/v1/apply", { items: second });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const payload = randomBytes(70_000);
    const viaSecond = await waitFor(async () => {
      const digest = await sendThrough(payload, CLIENT, undefined, { host: siteA(2), port: port2 });
      return digest === sha(payload) ? digest : undefined;
    });
    expect(viaSecond).toBe(sha(payload));
    expect(await longRun).toBe(sha(long));
    // The far gateway's listener is the same one: its counters went on from where they were.
    expect(hosts[2]?.tunnelStats(`vpn/${tunnelPort}`)?.sessions).toBeGreaterThanOrEqual(
      sessions.sessions ?? 0,
    );
    const deleted = await post(control.url, "/v1/delete", { items: second });
    expect(deleted.status).toBe(200);
  }, 30_000);

  it("the firewall still decides on the client before the tunnel", async () => {
    expect(await sendThrough(randomBytes(100), "127.0.0.1")).toBe("closed");
  });

  it("a long connection and new ones run across two certificate rotations without a drop", async () => {
    const before = await farCertificate();
    const long = randomBytes(2 << 20);
    const longRun = sendThrough(long, CLIENT, { chunks: 50, everyMs: 100 }); // ~5 s, two rotations
    const shorts: Promise<boolean>[] = [];
    for (let i = 0; i < 10; i++) {
      const p = randomBytes(50_000);
      shorts.push(sendThrough(p).then((d) => d === sha(p)));
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await longRun).toBe(sha(long));
    expect(await Promise.all(shorts)).toEqual(Array(10).fill(true));
    // The far gateway serves a newer certificate than when the run began.
    const after = await farCertificate();
    expect(after?.serialNumber).toBeDefined();
    expect(after?.serialNumber).not.toBe(before?.serialNumber);
  }, 30_000);

  it("the far gateway refuses a client without a mesh certificate, and one from a foreign CA", async () => {
    const handshake = (extra: { cert?: string; key?: string }) =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({
          host: siteB(1),
          port: tunnelPort,
          rejectUnauthorized: false,
          ALPNProtocols: ["h2"],
          minVersion: "TLSv1.3",
          ...extra,
        });
        s.on("secureConnect", () => {
          // TLS 1.3: the server checks the client certificate after the client's Finished.
          s.once("data", () => resolve("data"));
          s.once("close", () => resolve("closed"));
          s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        });
        s.on("error", (err) => resolve(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`));
      });
    expect(await handshake({})).not.toBe("data");
    const foreignDir = `${control.dataDir}-foreign`;
    const foreign = await MeshCa.open({ dataDir: foreignDir, trustDomain: "catena.local" });
    const id = await createIdentity("intruder");
    const { certPem } = await foreign.issue(
      id.csrPem,
      foreign.spiffeId("s2s-vpn-a", "intruder"),
      certWindow(Date.now(), 60_000),
    );
    expect(await handshake({ cert: certPem, key: id.privateKeyPem })).not.toBe("data");
    await rm(foreignDir, { recursive: true, force: true });
  });

  it("a node gets only its own secrets: another node's certificate is never sent", async () => {
    const nosy = await createIdentity("s2s-nosy");
    const client = new AdsClient({
      servers: [control.server.xdsAddr],
      node: { id: "s2s-nosy", cluster: "s2s-vpn-a", metadata: { type: "vpn", csr: nosy.csrPem } },
    });
    const own = "spiffe://catena.local/function/s2s-vpn-a/s2s-nosy";
    const others = [
      "spiffe://catena.local/function/s2s-vpn-b/s2s-vpn-b-1",
      "spiffe://catena.local/function/s2s-vpn-a/s2s-vpn-a-1",
    ];
    const got = new Map<string, unknown>();
    const watch = client.watch(TYPE_URL.secret, [own, "ROOTCA", ...others]);
    try {
      const reading = (async () => {
        for await (const event of watch) if (event.type === "changed") got.set(event.name, event.value);
      })();
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          if (got.has(own) && got.has("ROOTCA")) {
            clearInterval(tick);
            resolve();
          }
        }, 50);
      });
      await new Promise((r) => setTimeout(r, 500)); // anything else would have come with them
      watch.close();
      await reading;
    } finally {
      client.close();
    }
    expect([...got.keys()].sort()).toEqual(["ROOTCA", own]);
    // What it got certifies its own key, and nothing else.
    const secret = got.get(own) as { tls_certificate?: { certificate_chain?: { inline_string?: string } } };
    expect(nosy.matches(secret.tls_certificate?.certificate_chain?.inline_string ?? "")).toBe(true);
  });

  it("issued certificates carry the instance's SPIFFE ID and the configured lifetime", async () => {
    const ca = await MeshCa.open({ dataDir: control.dataDir, trustDomain: "catena.local" });
    const root = new X509Certificate(ca.rootPem);
    const peer = await farCertificate();
    expect(peer).toBeDefined();
    expect(peer?.checkIssued(root)).toBe(true);
    expect(peer?.subjectAltName).toBe("URI:spiffe://catena.local/function/s2s-vpn-b/s2s-vpn-b-1");
    const life = Date.parse(peer?.validTo ?? "") - Date.parse(peer?.validFrom ?? "");
    expect(life).toBeGreaterThanOrEqual(LIFETIME_MS - 1000);
    expect(life).toBeLessThanOrEqual(LIFETIME_MS + 61_000);
  });

  it("a gateway admitted to the far end opens only its own chains' routes (403 for another chain's)", async () => {
    // A second near gateway, vpn-c, tunnels another chain to the same far gateway.
    const portC = await freePort(siteA(3));
    const other = [
      object("ServiceFunction", "s2s-vpn-c", { type: "vpn", config: { peer: "s2s-vpn-b", tunnelPort } }),
      object("Service", "s2s-db3", {
        network: "s2s-b",
        ports: [{ name: "tcp", port: portC }],
        endpoints: [{ address: siteB(50), port: (backend.address() as { port: number }).port }],
      }),
      object("ServiceChain", "s2s-3", {
        service: "s2s-db3",
        ingress: { port: portC },
        hops: [{ function: "s2s-vpn-c", config: { authority: "db3.site-b:5432" } }],
      }),
    ];
    expect((await post(control.url, "/v1/apply", { items: other })).status).toBe(200);
    const statusAs = async (fn: string, authority: string): Promise<number | string> => {
      const ca = await MeshCa.open({ dataDir: control.dataDir, trustDomain: "catena.local" });
      const id = await createIdentity("probe");
      const { certPem } = await ca.issue(id.csrPem, ca.spiffeId(fn, "probe"), certWindow(Date.now(), 60_000));
      const session = http2Connect(`https://${siteB(1)}:${tunnelPort}`, {
        createConnection: () =>
          tlsConnect({
            host: siteB(1),
            port: tunnelPort,
            ca: ca.rootPem,
            cert: certPem,
            key: id.privateKeyPem,
            checkServerIdentity: () => undefined,
            ALPNProtocols: ["h2"],
          }),
      });
      session.on("error", () => undefined);
      try {
        return await new Promise<number | string>((resolve) => {
          const req = session.request({ ":method": "CONNECT", ":authority": authority });
          req.on("response", (h) => resolve(Number(h[":status"])));
          req.on("error", (err) => resolve(err.message));
          req.on("close", () => resolve("closed"));
        });
      } finally {
        session.destroy();
      }
    };
    // The far gateway learns vpn-c (its TLS context and routes change): wait for vpn-c's route.
    await waitFor(async () => ((await statusAs("s2s-vpn-c", "db3.site-b:5432")) === 200 ? true : undefined));
    expect(await statusAs("s2s-vpn-a", "db.site-b:5432")).toBe(200);
    expect(await statusAs("s2s-vpn-a", "db3.site-b:5432")).toBe(403);
    expect(await statusAs("s2s-vpn-c", "db.site-b:5432")).toBe(403);
    expect((await post(control.url, "/v1/delete", { items: other })).status).toBe(200);
  });
});
