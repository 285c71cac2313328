// DELs made while the control server was unreachable: CNI DEL must succeed (the runtime would
// otherwise retry forever or leak the container), so the plugin cleans up locally and writes what
// the server still has to forget into one small file per attachment under the state directory.
// The next invocation that reaches the server replays them; an ADD of the same attachment drops
// its pending entry first (the runtime re-added it, so the lease is wanted again).
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface PendingDelete {
  role: "ipam" | "chained";
  server: string;
  network: string;
  containerId: string;
  ifname: string;
  /** Chained role: the Workload to remove (only while it still belongs to this container). */
  workload?: string;
  at: string;
}

export class PendingDeletes {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, "pending-deletes");
  }

  #file(p: Pick<PendingDelete, "role" | "server" | "network" | "containerId" | "ifname">): string {
    const key = [p.role, p.server, p.network, p.containerId, p.ifname].join("\n");
    return join(this.#dir, `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`);
  }

  /** Written to a temporary name and renamed: a crash never leaves half an entry. */
  async add(entry: PendingDelete): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = this.#file(entry);
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
    await rename(tmp, file);
  }

  async remove(
    entry: Pick<PendingDelete, "role" | "server" | "network" | "containerId" | "ifname">,
  ): Promise<void> {
    await rm(this.#file(entry), { force: true });
  }

  async list(): Promise<PendingDelete[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const out: PendingDelete[] = [];
    for (const name of names) {
      if (!name.endsWith(".json")) continue;
      const text = await readFile(join(this.#dir, name), "utf8").catch(() => undefined);
      if (!text) continue;
      try {
        out.push(JSON.parse(text) as PendingDelete);
      } catch {
        await rm(join(this.#dir, name), { force: true }); // unreadable: nothing to replay
      }
    }
    return out;
  }
}
