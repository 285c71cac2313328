// Proxyless gRPC through the whole control server: Services applied as manifests reach a real
// @grpc/grpc-js-xds client dialing xds:///<service>, which follows endpoint changes and weights
// without a restart, and keeps working on its last config while the control server is down.

import { rm } from "node:fs/promises";
import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceError,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { register } from "@grpc/grpc-js-xds";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawService } from "../../xds/wire/services.js";
import { post, startTestControl, type TestControl } from "../support/control.js";

const ECHO = "/catena.test.Echo/Who";
const identity = (b: Buffer) => b;

async function backend(name: string): Promise<{ name: string; server: Server; port: number }> {
  const server = new Server();
  server.addService(rawService([{ path: ECHO, requestStream: false, responseStream: false }]), {
    Who: (_call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { name, server, port };
}

function call(client: Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      ECHO,
      identity,
      identity,
      Buffer.alloc(0),
      { deadline: Date.now() + 10_000 },
      (err: ServiceError | null, res?: Buffer) => (err || !res ? reject(err) : resolve(res.toString())),
    );
  });
}

async function tally(client: Client, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const who = await call(client);
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  return counts;
}

/** Calls until `done(counts of the last window)` holds; the client converges asynchronously. */
async function until(
  client: Client,
  done: (counts: Map<string, number>) => boolean,
  window = 30,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (done(await tally(client, window))) return;
    if (Date.now() > deadline) throw new Error("client did not converge");
  }
}

let control: TestControl;
let backends: { name: string; server: Server; port: number }[];
let client: Client;

function service(endpoints: { name: string; weight?: number }[]) {
  return {
    items: [
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Network",
        metadata: { name: "grpcnet" },
        spec: { cidr: "127.80.0.0/16" },
      },
      {
        apiVersion: "catena.dev/v1alpha1",
        kind: "Service",
        metadata: { name: "echo" },
        spec: {
          network: "grpcnet",
          ports: [{ name: "grpc", port: 50051 }],
          endpoints: endpoints.map((e) => ({
            address: "127.0.0.1",
            port: backends.find((b) => b.name === e.name)?.port,
            ...(e.weight ? { weight: e.weight } : {}),
          })),
        },
      },
    ],
  };
}

async function apply(body: unknown): Promise<void> {
  const res = await post(control.url, "/v1/apply", body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

beforeAll(async () => {
  backends = [await backend("b1"), await backend("b2"), await backend("b3")];
  control = await startTestControl();
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      {
        server_uri: control.server.xdsAddr,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    node: { id: "proxyless-test", cluster: "proxyless", locality: {} },
  });
  register();
  await apply(service([{ name: "b1" }, { name: "b2" }]));
  client = new Client("xds:///echo", credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await control?.stop();
  // The restarted server was given the first one's data directory, so its stop() leaves it.
  if (control) await rm(control.dataDir, { recursive: true, force: true });
  for (const b of backends ?? []) b.server.forceShutdown();
});

describe("proxyless gRPC", () => {
  it("reaches both endpoints of a Service applied as a manifest", async () => {
    await until(client, (c) => c.has("b1") && c.has("b2"));
    const node = control.server.xds.status.node("proxyless-test");
    expect(node?.streams).toBeGreaterThan(0);
  });

  it("follows an apply that adds an endpoint, without a restart", async () => {
    await apply(service([{ name: "b1" }, { name: "b2" }, { name: "b3" }]));
    await until(client, (c) => c.has("b3"));
  });

  it("stops calling an endpoint once it is removed", async () => {
    await apply(service([{ name: "b2" }, { name: "b3" }]));
    await until(client, (c) => !c.has("b1"));
    const after = await tally(client, 60);
    expect(after.get("b1") ?? 0).toBe(0);
  });

  it("splits 1:3 by endpoint weight", async () => {
    await apply(
      service([
        { name: "b2", weight: 1 },
        { name: "b3", weight: 3 },
      ]),
    );
    // Converged once a window is clearly weighted; then measure a fresh sample.
    await until(client, (c) => (c.get("b3") ?? 0) > 2 * (c.get("b2") ?? 0), 40);
    const counts = await tally(client, 400);
    const share = (counts.get("b3") ?? 0) / 400;
    expect(share).toBeGreaterThan(0.67);
    expect(share).toBeLessThan(0.83);
  });

  it("keeps working on its last config while the control server is down, and converges after a restart", async () => {
    const { dataDir, root } = control;
    const xdsAddr = control.server.xdsAddr;
    await control.server.close();
    const during = await tally(client, 20);
    expect([...during.keys()].every((k) => k === "b2" || k === "b3")).toBe(true);

    control = await startTestControl({ dataDir, root, xdsAddr });
    await apply(service([{ name: "b1" }]));
    await until(client, (c) => c.size === 1 && c.has("b1"));
  });
});
