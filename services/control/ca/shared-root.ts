// Several control servers on one bucket (`--store nats-kv`) must sign with one root, or an instance
// that fails over gets a certificate its peers do not trust. The first server to start puts its root
// in a KV key taken with create (one winner); every other server writes that root into its own data
// directory and opens it from there. Like Istio's istio-ca-secret, the key is then as safe as the
// bucket: restrict who may read `<ROOT>_CA` with NATS permissions, or give every server the same
// --ca-cert/--ca-key instead.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import { MeshCa, type MeshCaOptions } from "./mesh-ca.js";

const ROOT_KEY = "root";

interface SharedRoot {
  cert: string;
  key: string;
}

/** The CA every server on `kv` shares: the one already there, else ours (generated if need be). */
export async function openSharedMeshCa(kv: KV, options: MeshCaOptions): Promise<MeshCa> {
  if (options.certFile || options.keyFile) return MeshCa.open(options); // the operator's, on every server
  const dir = join(options.dataDir, "ca");
  const existing = await readShared(kv);
  if (existing) {
    await writeRoot(dir, existing);
    return MeshCa.open(options);
  }
  const own = await MeshCa.open(options);
  const mine: SharedRoot = {
    cert: await readFile(join(dir, "root.crt"), "utf8"),
    key: await readFile(join(dir, "root.key"), "utf8"),
  };
  try {
    await kv.create(ROOT_KEY, JSON.stringify(mine));
    return own;
  } catch {
    // Another server got there first: its root is the mesh's.
    const theirs = await readShared(kv);
    if (!theirs)
      throw new Error(`mesh CA: the shared root in the CA bucket could be neither created nor read`);
    await writeRoot(dir, theirs);
    return MeshCa.open(options);
  }
}

async function readShared(kv: KV): Promise<SharedRoot | undefined> {
  const entry = await kv.get(ROOT_KEY);
  if (entry?.operation !== "PUT") return undefined;
  const value = entry.json<Partial<SharedRoot>>();
  if (typeof value.cert !== "string" || typeof value.key !== "string")
    throw new Error(`mesh CA: the CA bucket key ${ROOT_KEY} is not a {cert, key} pair`);
  return { cert: value.cert, key: value.key };
}

/** Key first, each file atomically: a crash leaves either the old root or the new one. */
async function writeRoot(dir: string, root: SharedRoot): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const [name, text, mode] of [
    ["root.key", root.key, 0o600],
    ["root.crt", root.cert, 0o644],
  ] as const) {
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, text, { mode });
    await rename(tmp, join(dir, name));
  }
}
