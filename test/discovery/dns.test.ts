// The discovery function against real resolvers (Debian's dig and Node's c-ares resolver), fed over
// xDS by a real control server: A, SRV, NXDOMAIN vs NODATA, truncation over UDP and the same answer
// over TCP, registrations reaching DNS, forwarding outside the zone.
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post } from "../support/control.js";
import { apply, BASE_MANIFESTS, dig, eventually, type Mesh, startMesh } from "./support.js";

const BIG = `
apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: big}
spec:
  network: edge
  ports: [{name: http, port: 80}]
  endpoints:
${Array.from({ length: 100 }, (_, i) => `    - {address: 10.0.0.${i + 1}, port: 80}`).join("\n")}
`;

describe("discovery DNS", () => {
  let mesh: Mesh;
  let resolver: Resolver;

  beforeAll(async () => {
    mesh = await startMesh(`${BASE_MANIFESTS}---${BIG}`, { ttlSeconds: 7 });
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${mesh.dnsHost}:${mesh.dnsPort}`]);
  }, 30_000);
  afterAll(() => mesh?.stop());

  it("dig: A for <service>.catena. lists the endpoints, authoritative, with the TTL", async () => {
    const out = await dig(mesh, "web.catena.", "A", "+noall", "+answer", "+comments");
    expect(out).toContain("status: NOERROR");
    expect(out).toMatch(/flags: qr aa/);
    const answers = out.split("\n").filter((l) => /\tA\t/.test(l));
    expect(answers.map((l) => l.split(/\s+/).at(-1)).sort()).toEqual(["127.0.0.1", "127.0.0.2"]);
    expect(answers.every((l) => l.split(/\s+/)[1] === "7")).toBe(true);
  });

  it("dig: SRV _http._tcp.web.catena. with ports and weights, targets resolvable", async () => {
    const out = await dig(mesh, "_http._tcp.web.catena.", "SRV", "+noall", "+answer", "+additional");
    const srv = out
      .split("\n")
      .filter((l) => /\tSRV\t/.test(l))
      .map((l) => l.split(/\s+/).slice(-4).join(" "))
      .sort();
    expect(srv).toEqual(["0 1 9001 127-0-0-1.web.catena.", "0 3 9002 127-0-0-2.web.catena."]);
    expect(out).toMatch(/127-0-0-2\.web\.catena\.\s+7\s+IN\s+A\s+127\.0\.0\.2/);
  });

  it("dig: a missing name is NXDOMAIN, an existing name without the type is NODATA, both with the SOA", async () => {
    const nx = await dig(mesh, "nope.catena.", "A", "+noall", "+comments", "+authority");
    expect(nx).toContain("status: NXDOMAIN");
    expect(nx).toMatch(/catena\.\s+7\s+IN\s+SOA\s+ns\.catena\. hostmaster\.catena\. \d+ 3600 600 86400 7/);
    const nodata = await dig(mesh, "web.catena.", "AAAA", "+noall", "+comments", "+authority");
    expect(nodata).toContain("status: NOERROR");
    expect(nodata).toContain("ANSWER: 0");
    expect(nodata).toMatch(/IN\s+SOA/);
  });

  it("dig: many endpoints truncate over UDP (TC, no records); TCP gives all of them", async () => {
    const udp = await dig(mesh, "big.catena.", "A", "+ignore", "+noall", "+comments");
    expect(udp).toMatch(/flags: qr aa tc/);
    expect(udp).toContain("ANSWER: 0");
    const tcp = await dig(mesh, "big.catena.", "A", "+tcp", "+short");
    expect(tcp.trim().split("\n")).toHaveLength(100);
    // dig without +ignore falls back to TCP by itself, as resolvers do.
    const fallback = await dig(mesh, "big.catena.", "A", "+short");
    expect(fallback.trim().split("\n").sort()).toEqual(tcp.trim().split("\n").sort());
  });

  it("Node's resolver: A, SRV, ENOTFOUND for a missing name, ENODATA for a missing type", async () => {
    expect((await resolver.resolve4("web.catena")).sort()).toEqual(["127.0.0.1", "127.0.0.2"]);
    const srv = await resolver.resolveSrv("_http._tcp.web.catena");
    expect(srv.map((s) => `${s.name}:${s.port}/${s.weight}`).sort()).toEqual([
      "127-0-0-1.web.catena:9001/1",
      "127-0-0-2.web.catena:9002/3",
    ]);
    await expect(resolver.resolve4("nope.catena")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(resolver.resolve6("web.catena")).rejects.toMatchObject({ code: "ENODATA" });
    // c-ares retries truncated UDP answers over TCP.
    expect(await resolver.resolve4("big.catena")).toHaveLength(100);
  });

  it("outside the zone: REFUSED without an upstream", async () => {
    expect(await dig(mesh, "example.com.", "A", "+noall", "+comments")).toContain("status: REFUSED");
  });

  it("a self-registered endpoint appears in DNS; a Service applied later too", async () => {
    const res = await post(mesh.control.url, "/v1/services/web/endpoints", {
      address: "127.0.0.3",
      port: 9003,
      ttlSeconds: 30,
    });
    expect(res.status).toBe(201);
    await eventually(async () =>
      (await resolver.resolve4("web.catena")).includes("127.0.0.3") ? true : undefined,
    );
    await apply(
      mesh.control,
      `apiVersion: catena.dev/v1alpha1
kind: Service
metadata: {name: late}
spec: {network: edge, ports: [{name: grpc, port: 50051}], endpoints: [{address: "fd00::7", port: 50051}]}`,
    );
    await eventually(async () =>
      (await resolver.resolve6("late.catena").catch(() => [])).length > 0 ? true : undefined,
    );
    expect(await resolver.resolve6("late.catena")).toEqual(["fd00::7"]);
  });
});

describe("discovery DNS with an upstream resolver", () => {
  let mesh: Mesh;
  let dnsmasq: ChildProcess;

  beforeAll(async () => {
    const started = await startDnsmasq();
    dnsmasq = started.process;
    mesh = await startMesh(BASE_MANIFESTS, { upstream: `127.0.0.1:${started.port}` });
    await eventually(
      async () =>
        (await dig(mesh, "example.test.", "+short").catch(() => "")).trim() === "10.9.8.7" ? true : undefined,
      20_000,
    );
  }, 60_000);
  afterAll(async () => {
    await mesh?.stop();
    dnsmasq?.kill();
  });

  it("names outside the zone are forwarded, over UDP and TCP; the zone stays ours", async () => {
    expect((await dig(mesh, "example.test.", "+short")).trim()).toBe("10.9.8.7");
    expect((await dig(mesh, "example.test.", "+tcp", "+short")).trim()).toBe("10.9.8.7");
    expect(await dig(mesh, "web.catena.", "+noall", "+comments")).toMatch(/flags: qr aa/);
  });
});

/** dnsmasq on a free port, answering example.test; another port when the one picked is taken for TCP. */
async function startDnsmasq(): Promise<{ process: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    const child = spawn(
      "/usr/sbin/dnsmasq",
      [
        "-k",
        "--no-resolv",
        "--no-hosts",
        `--port=${port}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--pid-file",
        "--address=/example.test/10.9.8.7",
      ],
      { stdio: "ignore" },
    );
    const exited = new Promise<boolean>((resolve) => child.once("exit", () => resolve(true)));
    const died = await Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
    if (!died) return { process: child, port };
    if (attempt >= 5) throw new Error("dnsmasq does not start");
  }
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
