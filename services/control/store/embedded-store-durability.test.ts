// What survives: close and reopen, torn tails, compaction, a second opener, kill -9.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFile, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { removeTempDirs, tempDir, workload } from "../../../test/fixtures/store/helpers.js";
import { ErrorCode, isCatenaError } from "../errors.js";
import { LOCK_FILE } from "./data-dir-lock.js";
import { type EmbeddedStoreOptions, LOG_FILE, openEmbeddedStore, SNAPSHOT_FILE } from "./embedded-store.js";
import type { StoreOp } from "./store.js";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

afterEach(removeTempDirs);

function captureLogger() {
  const warnings: Array<{ msg: string; fields?: object }> = [];
  return { warnings, logger: { warn: (msg: string, fields?: object) => warnings.push({ msg, fields }) } };
}

function putOp(name: string, spec: Record<string, unknown> = {}): StoreOp {
  return { type: "put", object: workload(name, spec) };
}

/** Opens, runs `fn`, closes; returns what `fn` returned. */
async function withStore<T>(
  options: EmbeddedStoreOptions,
  fn: (store: Awaited<ReturnType<typeof openEmbeddedStore>>) => Promise<T>,
): Promise<T> {
  const store = await openEmbeddedStore(options);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe("options", () => {
  it.each([
    { name: "empty dataDir", options: { dataDir: "" }, field: "dataDir" },
    {
      name: "zero compactAfterBytes",
      options: { dataDir: "x", compactAfterBytes: 0 },
      field: "compactAfterBytes",
    },
    {
      name: "fractional watchBufferLimit",
      options: { dataDir: "x", watchBufferLimit: 1.5 },
      field: "watchBufferLimit",
    },
  ])("bad options fail before touching the disk: $name", async ({ options, field }) => {
    const err = await openEmbeddedStore(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCatenaError(err, ErrorCode.Invalid)).toBe(true);
    expect((err as { details: Array<{ path: string }> }).details[0]?.path).toBe(field);
  });
});

describe("persistence", () => {
  it("state survives close and reopen, and revisions continue", async () => {
    const dataDir = await tempDir();
    const before = await withStore({ dataDir }, async (store) => {
      await store.commit([putOp("a", { v: 1 }), putOp("b")]);
      await store.commit([putOp("a", { v: 2 })]);
      await store.setStatus("Workload", "a", { phase: "Running" });
      await store.commit([{ type: "delete", kind: "Workload", name: "b" }]);
      return { list: await store.list(), revision: store.revision() };
    });
    expect(before.revision).toBe(4);
    await withStore({ dataDir }, async (store) => {
      expect(await store.list()).toEqual(before.list);
      expect(store.revision()).toBe(4);
      const { revision } = await store.commit([putOp("c")]);
      expect(revision).toBe(5);
    });
  });

  it("creates the data dir with mode 0700", async () => {
    const dataDir = join(await tempDir(), "nested", "data");
    await withStore({ dataDir }, async () => {});
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
  });

  it("an empty store has revision 0", async () => {
    await withStore({ dataDir: await tempDir() }, async (store) => {
      expect(store.revision()).toBe(0);
      expect(await store.list()).toEqual([]);
    });
  });
});

describe("torn and corrupt log tails", () => {
  async function threeCommits(dataDir: string): Promise<number> {
    return withStore({ dataDir }, async (store) => {
      await store.commit([putOp("a")]);
      await store.commit([putOp("b")]);
      const before = (await stat(join(dataDir, LOG_FILE))).size;
      await store.commit([putOp("c")]);
      return before; // where the last record starts
    });
  }

  async function expectFirstTwoKept(dataDir: string, lastRecordAt: number): Promise<void> {
    const { warnings, logger } = captureLogger();
    await withStore({ dataDir, logger }, async (store) => {
      expect((await store.list()).map((o) => o.metadata.name)).toEqual(["a", "b"]);
      expect(store.revision()).toBe(2);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.fields).toMatchObject({ offset: lastRecordAt });
      expect((await stat(join(dataDir, LOG_FILE))).size).toBe(lastRecordAt);
      // Appending after the repaired tail yields a clean log.
      await store.commit([putOp("d")]);
    });
    await withStore({ dataDir, logger }, async (store) => {
      expect((await store.list()).map((o) => o.metadata.name)).toEqual(["a", "b", "d"]);
      expect(store.revision()).toBe(3);
      expect(warnings).toHaveLength(1);
    });
  }

  it("a torn last record (log truncated by a few bytes) is dropped, everything before it kept", async () => {
    const dataDir = await tempDir();
    const lastRecordAt = await threeCommits(dataDir);
    const logPath = join(dataDir, LOG_FILE);
    await truncate(logPath, (await stat(logPath)).size - 3);
    await expectFirstTwoKept(dataDir, lastRecordAt);
  });

  it("a last record with a flipped byte fails its checksum and is dropped", async () => {
    const dataDir = await tempDir();
    const lastRecordAt = await threeCommits(dataDir);
    const logPath = join(dataDir, LOG_FILE);
    const bytes = await readFile(logPath);
    const at = bytes.length - 5;
    bytes[at] = (bytes[at] as number) ^ 0x20;
    await writeFile(logPath, bytes);
    await expectFirstTwoKept(dataDir, lastRecordAt);
  });

  it("a zero-filled tail (file grown, data never written) is dropped", async () => {
    const dataDir = await tempDir();
    await threeCommits(dataDir);
    const logPath = join(dataDir, LOG_FILE);
    const size = (await stat(logPath)).size;
    await writeFile(logPath, Buffer.alloc(4096), { flag: "a" });
    const { warnings, logger } = captureLogger();
    await withStore({ dataDir, logger }, async (store) => {
      expect((await store.list()).map((o) => o.metadata.name)).toEqual(["a", "b", "c"]);
      expect(warnings[0]?.fields).toMatchObject({ offset: size, droppedBytes: 4096 });
    });
  });
});

describe("compaction", () => {
  it("keeps state when the log is replaced by a snapshot", async () => {
    const dataDir = await tempDir();
    const options = { dataDir, compactAfterBytes: 2048 };
    const before = await withStore(options, async (store) => {
      for (let i = 0; i < 60; i++) {
        await store.commit([putOp(`w-${i % 20}`, { i, pad: "x".repeat(50) })]);
        if (i % 7 === 0) await store.commit([{ type: "delete", kind: "Workload", name: `w-${i % 20}` }]);
      }
      await store.setStatus("Workload", "w-1", { phase: "Running" });
      return { list: await store.list(), revision: store.revision() };
    });
    expect((await stat(join(dataDir, SNAPSHOT_FILE))).size).toBeGreaterThan(0);
    expect((await stat(join(dataDir, LOG_FILE))).size).toBeLessThanOrEqual(2048 + 1024);
    await withStore(options, async (store) => {
      expect(await store.list()).toEqual(before.list);
      expect(store.revision()).toBe(before.revision);
    });
  });

  it("a log the snapshot already covers is skipped (crash between snapshot and log truncation)", async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir }, async (store) => {
      await store.commit([putOp("a", { v: 1 })]);
      await store.commit([putOp("b")]);
    });
    const oldLog = join(dataDir, "old-log");
    await copyFile(join(dataDir, LOG_FILE), oldLog);
    const before = await withStore({ dataDir, compactAfterBytes: 1 }, async (store) => {
      await store.commit([putOp("a", { v: 2 })]); // compacts: snapshot at 3, log emptied
      return store.list();
    });
    expect((await stat(join(dataDir, LOG_FILE))).size).toBe(0);
    await copyFile(oldLog, join(dataDir, LOG_FILE)); // as if truncation never happened
    await withStore({ dataDir }, async (store) => {
      expect(await store.list()).toEqual(before);
      expect(store.revision()).toBe(3);
    });
  });

  it("a corrupt snapshot refuses to open (Internal) rather than start from partial state", async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir, compactAfterBytes: 1 }, async (store) => {
      await store.commit([putOp("a")]);
    });
    const path = join(dataDir, SNAPSHOT_FILE);
    const bytes = await readFile(path);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0x01;
    await writeFile(path, bytes);
    const err = await openEmbeddedStore({ dataDir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCatenaError(err, ErrorCode.Internal)).toBe(true);
    // The failed open released the lock.
    await expect(stat(join(dataDir, LOCK_FILE))).rejects.toThrow();
  });
});

describe("data dir lock", () => {
  it("a second open of the same data dir fails while the first is open", async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir }, async () => {
      const err = await openEmbeddedStore({ dataDir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isCatenaError(err, ErrorCode.Unavailable)).toBe(true);
    });
    // Closing released it.
    await withStore({ dataDir }, async () => {});
  });

  it("a lock held by a live process is refused; once that process is dead it is taken over", async () => {
    const dataDir = await tempDir();
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      const lock = {
        pid: holder.pid,
        hostname: hostname(),
        token: "other",
        acquiredAt: new Date().toISOString(),
      };
      await writeFile(join(dataDir, LOCK_FILE), JSON.stringify(lock));
      const err = await openEmbeddedStore({ dataDir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isCatenaError(err, ErrorCode.Unavailable)).toBe(true);
      expect(String((err as Error).message)).toContain(`pid ${holder.pid}`);
    } finally {
      holder.kill("SIGKILL");
      await once(holder, "exit");
    }
    const { warnings, logger } = captureLogger();
    await withStore({ dataDir, logger }, async (store) => {
      expect(store.revision()).toBe(0);
    });
    expect(warnings.map((w) => w.msg)).toContain("taking over a stale data dir lock");
  });

  it("a lock from another host is refused", async () => {
    const dataDir = await tempDir();
    const lock = {
      pid: 1,
      hostname: `not-${hostname()}`,
      token: "other",
      acquiredAt: new Date().toISOString(),
    };
    await writeFile(join(dataDir, LOCK_FILE), JSON.stringify(lock));
    const err = await openEmbeddedStore({ dataDir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCatenaError(err, ErrorCode.Unavailable)).toBe(true);
  });
});

describe("kill -9", () => {
  async function killMidStream(dataDir: string, args: string[], acks: number): Promise<Map<string, number>> {
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", "test/fixtures/store/writer.ts", dataDir, ...args],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const acked = new Map<string, number>();
    const exited = once(child, "exit");
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    for await (const line of lines) {
      const [revision, name] = line.split(" ");
      if (name) acked.set(name, Number(revision));
      if (acked.size >= acks) {
        child.kill("SIGKILL");
        break;
      }
    }
    const [code, signal] = await exited;
    expect({ code, signal, stderr: signal === "SIGKILL" ? "" : stderr }).toMatchObject({ signal: "SIGKILL" });
    return acked;
  }

  async function expectAllAcknowledged(dataDir: string, acked: Map<string, number>): Promise<void> {
    await withStore({ dataDir }, async (store) => {
      const stored = new Map((await store.list("Workload")).map((o) => [o.metadata.name, o]));
      const missing = [...acked.keys()].filter((name) => !stored.has(name));
      expect(missing).toEqual([]);
      expect(store.revision()).toBeGreaterThanOrEqual(Math.max(...acked.values()));
      // Commits are atomic: both objects of a commit, or neither.
      for (const name of stored.keys()) {
        const pair = name.endsWith("-a") ? name.replace(/-a$/, "-b") : name.replace(/-b$/, "-a");
        expect(stored.has(pair), `${name} without ${pair}`).toBe(true);
      }
    });
  }

  it("every acknowledged commit survives SIGKILL of the writer", async () => {
    const dataDir = await tempDir();
    const acked = await killMidStream(dataDir, ["8388608", "16"], 2000);
    await expectAllAcknowledged(dataDir, acked);
  });

  it("every acknowledged commit survives SIGKILL while compactions run", async () => {
    const dataDir = await tempDir();
    const acked = await killMidStream(dataDir, ["16384", "16"], 2000);
    await expectAllAcknowledged(dataDir, acked);
  });
});
