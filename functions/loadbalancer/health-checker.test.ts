import { afterEach, describe, expect, it } from "vitest";
import { type Listener, listen, sleep } from "../sdk/testing/loopback.js";
import type { Endpoint } from "./endpoint.js";
import { ActiveHealthChecker } from "./health-checker.js";

const listeners: Listener[] = [];
const checkers: ActiveHealthChecker[] = [];

afterEach(async () => {
  for (const c of checkers.splice(0)) await c.close();
  for (const l of listeners.splice(0)) await l.close();
});

async function server(port = 0): Promise<Listener> {
  const l = await listen((s) => s.destroy(), "127.0.0.1", port);
  listeners.push(l);
  return l;
}

async function closedPort(): Promise<number> {
  const l = await listen(() => {});
  const port = l.port;
  await l.close();
  return port;
}

/** Polls until cond holds or the deadline passes; health checks are timer-driven. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(10);
  }
}

describe("ActiveHealthChecker against real TCP listeners", () => {
  it("marks listening endpoints healthy, closed ports unhealthy, and follows a listener that stops and restarts", async () => {
    const a = await server();
    const b = await server();
    const dead = await closedPort();
    const transitions: [string, boolean][] = [];
    const checker = new ActiveHealthChecker({
      intervalMs: 40,
      timeoutMs: 500,
      unhealthyThreshold: 2,
      healthyThreshold: 2,
      onTransition: (e, healthy) => transitions.push([String(e.port), healthy]),
    });
    checkers.push(checker);
    const eps: Endpoint[] = [a.port, b.port, dead].map((port) => ({ address: "127.0.0.1", port }));
    checker.setEndpoints(eps);
    await until(() => transitions.length >= 3);
    expect(new Set(transitions.map((t) => t.join(":")))).toEqual(
      new Set([`${a.port}:true`, `${b.port}:true`, `${dead}:false`]),
    );
    expect(checker.health(`127.0.0.1:${a.port}`)).toBe("healthy");

    // B stops listening: unhealthy after two failed probes, not one.
    const bPort = b.port;
    await b.close();
    const stoppedAt = Date.now();
    await until(() => checker.health(`127.0.0.1:${bPort}`) === "unhealthy");
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(40);
    expect(transitions.filter(([p]) => p === String(bPort))).toEqual([
      [String(bPort), true],
      [String(bPort), false],
    ]);

    // B listens again on the same port: healthy after two good probes.
    await server(bPort);
    await until(() => checker.health(`127.0.0.1:${bPort}`) === "healthy");
    expect(transitions.filter(([p]) => p === String(bPort)).at(-1)).toEqual([String(bPort), true]);
    // A never flapped.
    expect(transitions.filter(([p]) => p === String(a.port))).toEqual([[String(a.port), true]]);
  });

  it("fails a probe that outlives its timeout", async () => {
    const transitions: boolean[] = [];
    const checker = new ActiveHealthChecker({
      intervalMs: 20,
      timeoutMs: 30,
      unhealthyThreshold: 1,
      healthyThreshold: 1,
      onTransition: (_e, healthy) => transitions.push(healthy),
      // Never answers on its own; resolves only when aborted.
      probe: (_e, signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve(true))),
    });
    checkers.push(checker);
    checker.setEndpoints([{ address: "127.0.0.1", port: 1 }]);
    await until(() => transitions.length > 0);
    expect(transitions[0]).toBe(false);
  });

  it("stops probing removed endpoints and after close", async () => {
    const a = await server();
    let probes = 0;
    const checker = new ActiveHealthChecker({
      intervalMs: 10,
      timeoutMs: 100,
      unhealthyThreshold: 1,
      healthyThreshold: 1,
      onTransition: () => {},
      probe: async () => {
        probes++;
        return true;
      },
    });
    checker.setEndpoints([{ address: "127.0.0.1", port: a.port }]);
    await until(() => probes >= 3);
    checker.setEndpoints([]);
    const after = probes;
    await sleep(60);
    expect(probes).toBe(after);
    await checker.close();
    await checker.close();
    expect(() => checker.setEndpoints([])).toThrow(/closed/);
  });
});
