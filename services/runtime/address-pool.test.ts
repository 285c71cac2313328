import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LoopbackAddressPool } from "./address-pool.js";
import { RUNTIME_ERROR } from "./errors.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe("LoopbackAddressPool", () => {
  it("skips the network address, the gateway and the broadcast address", async () => {
    const pool = new LoopbackAddressPool({ cidr: "127.64.0.0/30" });
    expect(await pool.acquire("a-0")).toBe("127.64.0.2");
    await expect(pool.acquire("a-1")).rejects.toMatchObject({ code: RUNTIME_ERROR.addressesExhausted });
  });

  it("gives an owner the same address every time until released, then reuses it", async () => {
    const pool = new LoopbackAddressPool({ cidr: "127.64.0.0/24" });
    const a = await pool.acquire("a-0");
    expect(await pool.acquire("a-0")).toBe(a);
    const b = await pool.acquire("b-0");
    expect(b).not.toBe(a);
    await pool.release("a-0");
    await pool.release("a-0"); // twice is fine
    expect(await pool.acquire("c-0")).toBe(a);
  });

  it("never hands out a reserved address (Workloads, static endpoints)", async () => {
    const pool = new LoopbackAddressPool({
      cidr: "127.64.0.0/24",
      reserved: async () => ["127.64.0.2", "127.64.0.3", "10.0.0.1"],
    });
    expect(await pool.acquire("a-0")).toBe("127.64.0.4");
  });

  it("fromTop hands out the highest free address first (away from IPAM's bottom-up leases)", async () => {
    const pool = new LoopbackAddressPool({ cidr: "127.64.0.0/24", fromTop: true });
    expect(await pool.acquire("a-0")).toBe("127.64.0.254");
    expect(await pool.acquire("b-0")).toBe("127.64.0.253");
  });

  it("concurrent acquires get distinct addresses", async () => {
    const pool = new LoopbackAddressPool({ cidr: "127.64.0.0/24" });
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.acquire(`f-${i}`)));
    expect(new Set(got).size).toBe(50);
  });

  it("leases survive a restart through the file; leases outside a new CIDR are forgotten", async () => {
    dir = await mkdtemp(join(tmpdir(), "catena-pool-"));
    const file = join(dir, "addresses.json");
    const first = new LoopbackAddressPool({ cidr: "127.64.0.0/24", file });
    await first.acquire("a-0");
    const b = await first.acquire("b-0");
    const again = new LoopbackAddressPool({ cidr: "127.64.0.0/24", file });
    expect(await again.acquire("b-0")).toBe(b);
    expect(JSON.parse(await readFile(file, "utf8")).leases).toEqual({ "a-0": "127.64.0.2", "b-0": b });
    const moved = new LoopbackAddressPool({ cidr: "127.70.0.0/24", file });
    expect(await moved.acquire("b-0")).toBe("127.70.0.2");
  });

  it("rejects a CIDR it cannot use, naming it", () => {
    expect(() => new LoopbackAddressPool({ cidr: "127.64.0.1/16" })).toThrow(/instance CIDR/);
    expect(() => new LoopbackAddressPool({ cidr: "127.64.0.0/31" })).toThrow(/too small/);
  });
});
