// One owner per data directory: a LOCK file holding the owner's pid, host and a random token.
// It guards against a second server opening the same directory by mistake; it is not a
// distributed lock. A lock left by a dead process on this host is taken over.
import { randomUUID } from "node:crypto";
import { link, readFile, realpath, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { CatenaError, ErrorCode } from "../errors.js";

export const LOCK_FILE = "LOCK";

interface LockOwner {
  pid: number;
  hostname: string;
  token: string;
  acquiredAt: string;
}

export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

// Directories this process holds: a second open in the same process must fail even though
// the pid in the file is alive (it is ours).
const heldInProcess = new Set<string>();

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null ? (err as { code?: string }).code : undefined;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (
      typeof value.pid === "number" &&
      typeof value.hostname === "string" &&
      typeof value.token === "string"
    ) {
      return value as LockOwner;
    }
  } catch {
    // fall through
  }
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return errnoCode(err) === "EPERM";
  }
}

/** Why the holder still owns the lock, or undefined when the lock is stale. */
function liveHolder(owner: LockOwner | undefined): string | undefined {
  if (!owner) return undefined; // not a lock we wrote
  if (owner.hostname !== hostname()) {
    return `pid ${owner.pid} on host ${owner.hostname} (cannot check a process on another host)`;
  }
  // Our own pid without our in-process entry: a previous incarnation (a container restarted as pid 1).
  if (owner.pid === process.pid) return undefined;
  return processAlive(owner.pid) ? `pid ${owner.pid}` : undefined;
}

export async function acquireDataDirLock(
  dir: string,
  warn: (msg: string, fields?: object) => void,
): Promise<DataDirLock> {
  const real = await realpath(dir);
  if (heldInProcess.has(real)) {
    throw new CatenaError(ErrorCode.Unavailable, `data dir ${dir} is already open in this process`);
  }
  heldInProcess.add(real);
  const path = join(real, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    token: randomUUID(),
    acquiredAt: new Date().toISOString(),
  };
  // Written whole, then linked into place: the LOCK file never exists half-written.
  const tmp = `${path}.${owner.token}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(owner), { mode: 0o600, flag: "wx" });
    try {
      await takeLock(dir, path, tmp, owner.token, warn);
    } finally {
      await unlink(tmp).catch(() => {});
    }
  } catch (err) {
    heldInProcess.delete(real);
    throw err;
  }

  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      try {
        const current = parseOwner(await readFile(path, "utf8"));
        if (current?.token === owner.token) await unlink(path);
      } catch (err) {
        if (errnoCode(err) !== "ENOENT")
          warn("could not remove the data dir lock", { path, error: String(err) });
      } finally {
        heldInProcess.delete(real);
      }
    },
  };
}

async function takeLock(
  dir: string,
  path: string,
  tmp: string,
  token: string,
  warn: (msg: string, fields?: object) => void,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await link(tmp, path);
      return;
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
    }
    let seen: string;
    try {
      seen = await readFile(path, "utf8");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") continue; // released meanwhile
      throw err;
    }
    const holder = liveHolder(parseOwner(seen));
    if (holder) {
      throw new CatenaError(
        ErrorCode.Unavailable,
        `data dir ${dir} is locked by ${holder}; if that server is gone, remove ${path}`,
      );
    }
    warn("taking over a stale data dir lock", { path, previous: seen });
    // Move it aside, then make sure what we moved is the stale lock we judged, not a lock
    // another starting server wrote in between (that one is put back).
    const aside = `${path}.${token}.stale`;
    try {
      await rename(path, aside);
    } catch (err) {
      if (errnoCode(err) === "ENOENT") continue;
      throw err;
    }
    const moved = await readFile(aside, "utf8");
    if (moved !== seen) {
      await link(aside, path).catch(() => {});
      await unlink(aside).catch(() => {});
      throw new CatenaError(ErrorCode.Unavailable, `data dir lock ${path} is contended by another server`);
    }
    await unlink(aside);
  }
  throw new CatenaError(ErrorCode.Unavailable, `could not take the data dir lock ${path}`);
}
