// The runtime against tiny stand-in instances (node -e scripts), so supervision rules are tested
// without the function host: restart with backoff, stable lowest indexes, withdraw before SIGTERM,
// type change, SIGKILL after the grace period.
import { spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import type { CatenaEvent } from "../control/events/types.js";
import { LoopbackAddressPool } from "./address-pool.js";
import type { InstanceSpec, Launcher } from "./launcher.js";
import { Runtime } from "./runtime.js";

/** Script per instance type: `stay` runs until SIGTERM, `crash` exits 3 after 50 ms, `stubborn` ignores SIGTERM. */
const SCRIPTS: Record<string, string> = {
  stay: "process.on('SIGTERM',()=>{console.log('term');process.exit(0)});setInterval(()=>{},1000);console.log('up')",
  crash: "console.log('up');setTimeout(()=>process.exit(3),50)",
  stubborn: "process.on('SIGTERM',()=>console.log('ignored'));setInterval(()=>{},1000);console.log('up')",
};

function scriptLauncher(): Launcher {
  return {
    spawn: (spec: InstanceSpec) =>
      spawn(process.execPath, ["-e", SCRIPTS[spec.type] ?? (SCRIPTS.stay as string)], {
        stdio: ["ignore", "pipe", "pipe"],
      }),
  };
}

const runtimes: Runtime[] = [];
afterEach(() => {
  for (const r of runtimes.splice(0)) r.destroy();
});

function setup(options: { stopGraceMs?: number; withdrawn?: string[] } = {}) {
  const events: CatenaEvent[] = [];
  const lines: string[] = [];
  const timeline: string[] = [];
  const runtime = new Runtime({
    launcher: scriptLauncher(),
    addresses: new LoopbackAddressPool({ cidr: "127.64.0.0/24" }),
    logs: {
      line: (id, _stream, text) => {
        lines.push(`${id} ${text}`);
        if (text === "term") timeline.push(`term ${id}`);
      },
    },
    events: { emit: (e) => events.push(e) },
    withdrawal: {
      withdraw: async (id) => {
        timeline.push(`withdraw ${id}`);
        options.withdrawn?.push(id);
      },
    },
    backoff: { initialMs: 50, maxMs: 400, multiplier: 2, jitter: 0 },
    stableMs: 10_000,
    stopGraceMs: options.stopGraceMs ?? 5000,
  });
  runtimes.push(runtime);
  return { runtime, events, lines, timeline };
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Runtime", () => {
  it("keeps `replicas` instances with ids <function>-<n>, each with its own address, logs tagged", async () => {
    const { runtime, lines } = setup();
    await runtime.apply({ name: "fw", type: "stay", replicas: 3 });
    const ids = runtime.instances().map((i) => i.id);
    expect(ids).toEqual(["fw-0", "fw-1", "fw-2"]);
    expect(new Set(runtime.instances().map((i) => i.address)).size).toBe(3);
    await until("every instance logged", () => ids.every((id) => lines.includes(`${id} up`)));
  });

  it("restarts an instance that exits on its own, with growing delays, and says so", async () => {
    const { runtime, events } = setup();
    await runtime.apply({ name: "bad", type: "crash", replicas: 1 });
    await until("three restarts", () => (runtime.instances()[0]?.restarts ?? 0) >= 3);
    const exited = events.filter((e) => e.verb === "exited").map((e) => e.data as Record<string, unknown>);
    expect(exited.slice(0, 3).map((d) => d.restartInMs)).toEqual([50, 100, 200]);
    expect(exited[0]).toMatchObject({ code: 3, signal: null, function: "bad", restarts: 1 });
    expect(events.filter((e) => e.verb === "restarted").length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.kind === "runtime")).toBe(true);
  });

  it("scales down from the highest index, withdrawing each before its SIGTERM; scales up into the lowest free", async () => {
    const { runtime, timeline, events, lines } = setup();
    await runtime.apply({ name: "lb", type: "stay", replicas: 3 });
    await until("all three up", () => ["lb-0", "lb-1", "lb-2"].every((id) => lines.includes(`${id} up`)));
    const addressOf1 = runtime.instances()[1]?.address;
    await runtime.apply({ name: "lb", type: "stay", replicas: 1 });
    expect(runtime.instances().map((i) => i.id)).toEqual(["lb-0"]);
    await until("both stopped", () => events.filter((e) => e.verb === "stopped").length === 2);
    for (const id of ["lb-1", "lb-2"])
      expect(timeline.indexOf(`withdraw ${id}`)).toBeLessThan(timeline.indexOf(`term ${id}`));
    await runtime.apply({ name: "lb", type: "stay", replicas: 2 });
    expect(runtime.instances().map((i) => i.id)).toEqual(["lb-0", "lb-1"]);
    // Released on scale-down, the lowest free address goes to the next instance.
    expect(runtime.instances()[1]?.address).toBe(addressOf1);
    const scaled = events.filter((e) => e.verb === "scaled").map((e) => e.data);
    expect(scaled).toEqual([
      { function: "lb", from: 0, to: 3 },
      { function: "lb", from: 3, to: 1 },
      { function: "lb", from: 1, to: 2 },
    ]);
  });

  it("a changed type replaces the instances: the old ones are gone before the new start", async () => {
    const { runtime, events } = setup();
    await runtime.apply({ name: "x", type: "stay", replicas: 1 });
    const first = runtime.instances()[0]?.pid;
    await runtime.apply({ name: "x", type: "stubborn", replicas: 1 });
    const verbs = events.filter((e) => e.name === "x-0").map((e) => e.verb);
    expect(verbs).toEqual(["started", "stopped", "started"]);
    expect(runtime.instances()[0]?.pid).not.toBe(first);
    expect(runtime.instances()[0]?.type).toBe("stubborn");
  });

  it("remove() stops a deleted function's instances; close() SIGKILLs one that ignores SIGTERM after the grace", async () => {
    const { runtime, events, lines } = setup({ stopGraceMs: 300 });
    await runtime.apply({ name: "a", type: "stay", replicas: 1 });
    await runtime.apply({ name: "b", type: "stubborn", replicas: 1 });
    await runtime.remove("a");
    expect(runtime.instances().map((i) => i.id)).toEqual(["b-0"]);
    await until("its SIGTERM handler installed", () => lines.includes("b-0 up"));
    const t0 = Date.now();
    await runtime.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const stopped = events.find((e) => e.name === "b-0" && e.verb === "stopped");
    expect(stopped?.data).toMatchObject({ signal: "SIGKILL" });
    await expect(runtime.apply({ name: "c", type: "stay", replicas: 1 })).rejects.toMatchObject({
      code: "CATENA_RUNTIME_CLOSED",
    });
  });
});
