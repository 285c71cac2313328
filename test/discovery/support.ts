// A control server with a discovery function reading it over xDS, in-process, for discovery tests.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type Discovery, runDiscovery } from "../../functions/discovery/index.js";
import { post, settled, startTestControl, type TestControl } from "../support/control.js";

const run = promisify(execFile);

export interface Mesh {
  control: TestControl;
  discovery: Discovery;
  dnsHost: string;
  dnsPort: number;
  stop(): Promise<void>;
}

export const BASE_MANIFESTS = `
apiVersion: catena.dev/v1alpha1
kind: Network
metadata: {name: edge}
spec: {cidr: 127.64.0.0/16}
---
apiVersion: catena.dev/v1alpha1
kind: ServiceFunction
metadata: {name: dns}
spec: {type: discovery, replicas: 1}
---
apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: web}
spec:
  network: edge
  ports: [{name: http, port: 8080}]
  endpoints:
    - {address: 127.0.0.1, port: 9001}
    - {address: 127.0.0.2, port: 9002, weight: 3}
`;

export async function apply(control: TestControl, yaml: string): Promise<void> {
  const res = await post(control.url, "/v1/apply", yaml);
  if (res.status !== 200) throw new Error(`apply failed: ${JSON.stringify(res.body)}`);
}

export async function startMesh(
  manifests = BASE_MANIFESTS,
  options: { ttlSeconds?: number; upstream?: string } = {},
) {
  const control = await startTestControl();
  await apply(control, manifests);
  await settled(control);
  const discovery = await runDiscovery({
    nodeId: "dns-1",
    functionName: "dns",
    xdsServers: [control.server.xdsAddr],
    dnsAddr: "127.0.0.1:0",
    ttlSeconds: options.ttlSeconds ?? 5,
    ...(options.upstream ? { upstream: options.upstream } : {}),
  });
  await discovery.synced;
  const [host, port] = discovery.dnsAddress.split(":") as [string, string];
  const mesh: Mesh = {
    control,
    discovery,
    dnsHost: host,
    dnsPort: Number(port),
    async stop() {
      await discovery.close();
      await control.stop();
    },
  };
  return mesh;
}

/** Runs Debian's dig against the mesh's DNS; returns its stdout. */
export async function dig(mesh: Mesh, ...args: string[]): Promise<string> {
  const { stdout } = await run("dig", [
    `@${mesh.dnsHost}`,
    "-p",
    String(mesh.dnsPort),
    "+time=2",
    "+tries=1",
    ...args,
  ]);
  return stdout;
}

/** Polls until `check` returns a value other than undefined (or throws after timeoutMs). */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5000,
  stepMs = 20,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
