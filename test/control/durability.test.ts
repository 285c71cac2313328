// kill -9 of the control server during a stream of applies: after a restart on the same data
// directory, every apply that was acknowledged is there.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../services/control/events/nats-server-process.js";
import { spawnCatena } from "../support/cli.js";
import { deleteEventStream, SHARED_NATS_URL, uniqueRoot } from "../support/nats.js";

async function waitHealthy(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`control server at ${url} did not come up`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("durability", () => {
  it("keeps every acknowledged apply across kill -9", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "catena-durable-"));
    dirs.push(dataDir);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const root = uniqueRoot();
    const env = { CATENA_NATS_PREFIX: root };
    const args = [
      "control",
      "--api-addr",
      `127.0.0.1:${port}`,
      "--xds-addr",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
    ];

    const first = spawnCatena(args, env);
    const exited = new Promise((resolve) => first.on("exit", resolve));
    await waitHealthy(url);

    const acknowledged: string[] = [];
    let stop = false;
    const writer = async (lane: number) => {
      for (let i = 0; !stop; i++) {
        const name = `n-${lane}-${i}`;
        const cidr = `10.${lane}.${i % 256}.${Math.floor(i / 256) * 16}/28`;
        try {
          const res = await fetch(`${url}/v1/apply`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              apiVersion: "catena.dev/v1alpha1",
              kind: "Network",
              metadata: { name },
              spec: { cidr },
            }),
          });
          if (res.status === 200) acknowledged.push(name);
          else throw new Error(`apply ${name}: HTTP ${res.status} ${await res.text()}`);
        } catch (err) {
          if (stop) return;
          throw err;
        }
      }
    };
    const lanes = [1, 2, 3, 4].map((lane) => writer(lane).catch((err: unknown) => err));
    while (acknowledged.length < 150) await new Promise((r) => setTimeout(r, 5));
    first.kill("SIGKILL");
    stop = true;
    await exited;
    const failures = (await Promise.all(lanes)).filter((e) => e !== undefined);
    expect(failures.every((e) => e instanceof TypeError)).toBe(true); // only "fetch failed" after the kill

    const second = spawnCatena(args, env);
    try {
      await waitHealthy(url);
      const res = await fetch(`${url}/v1/networks`);
      const present = new Set(
        ((await res.json()) as { items: { metadata: { name: string } }[] }).items.map((o) => o.metadata.name),
      );
      const lost = acknowledged.filter((n) => !present.has(n));
      expect(lost).toEqual([]);
      expect(acknowledged.length).toBeGreaterThanOrEqual(150);
    } finally {
      second.kill("SIGTERM");
      await new Promise((resolve) => second.on("exit", resolve));
      await deleteEventStream(SHARED_NATS_URL, root);
    }
  }, 60_000);
});
