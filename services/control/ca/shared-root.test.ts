import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SHARED_NATS_URL, uniqueRoot } from "../../../test/support/nats.js";
import { openSharedMeshCa } from "./shared-root.js";

let nc: NatsConnection;
const bucket = `${uniqueRoot().toUpperCase()}_CA`;
const dirs: string[] = [];
const dir = async () => {
  const d = await mkdtemp(join(tmpdir(), "catena-ca-shared-"));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  nc = await connect({ servers: SHARED_NATS_URL });
});

afterAll(async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
  await nc.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("a root shared through KV", () => {
  it("servers starting together on one bucket end up with one root, kept 0600 in each data dir", async () => {
    const kv = await new Kvm(nc).create(bucket, { history: 1 });
    const [a, b, c] = await Promise.all([
      dir().then((d) => openSharedMeshCa(kv, { dataDir: d, trustDomain: "example.org" })),
      dir().then((d) => openSharedMeshCa(kv, { dataDir: d, trustDomain: "example.org" })),
      dir().then((d) => openSharedMeshCa(kv, { dataDir: d, trustDomain: "example.org" })),
    ]);
    expect(b.rootPem).toBe(a.rootPem);
    expect(c.rootPem).toBe(a.rootPem);
    for (const d of dirs) expect((await stat(join(d, "ca", "root.key"))).mode & 0o777).toBe(0o600);
    // A server started later, with a root of its own on disk, takes the shared one.
    const late = await dir();
    const own = await openSharedMeshCa(await new Kvm(nc).create(`${bucket}_OTHER`, { history: 1 }), {
      dataDir: late,
      trustDomain: "example.org",
    });
    expect(own.rootPem).not.toBe(a.rootPem);
    const joined = await openSharedMeshCa(kv, { dataDir: late, trustDomain: "example.org" });
    expect(joined.rootPem).toBe(a.rootPem);
    await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}_OTHER`);
  });
});
