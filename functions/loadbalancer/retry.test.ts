import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "./circuit-breaker.js";
import { type Endpoint, endpointKey } from "./endpoint.js";
import { attemptEndpoints, RetryBudget } from "./retry.js";
import { RoundRobinPicker } from "./round-robin.js";

const eps: Endpoint[] = [1, 2, 3].map((i) => ({ address: `10.0.0.${i}`, port: 80 }));

describe("attemptEndpoints", () => {
  it("retries on another endpoint, never one already tried", async () => {
    const picker = new RoundRobinPicker(eps, () => 0);
    const tried: string[] = [];
    const results: [string, boolean][] = [];
    const r = await attemptEndpoints({
      maxAttempts: 3,
      pick: ({ exclude }) => picker.pick({ exclude }),
      attempt: async (e) => {
        tried.push(endpointKey(e));
        if (e.address !== "10.0.0.3") throw new Error("refused");
        return "socket";
      },
      onResult: (e, ok) => results.push([e.address, ok]),
    });
    expect(r).toMatchObject({ ok: true, value: "socket", attempts: 3 });
    expect(new Set(tried).size).toBe(3);
    expect(results).toEqual([
      ["10.0.0.1", false],
      ["10.0.0.2", false],
      ["10.0.0.3", true],
    ]);
  });

  it("stops after maxAttempts with every failure in the result", async () => {
    const r = await attemptEndpoints({
      maxAttempts: 2,
      pick: ({ exclude }) => eps.find((e) => !exclude.has(endpointKey(e))),
      attempt: async () => {
        throw new Error("down");
      },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe("attempts-exhausted");
      expect(r.failures.map((f) => f.endpoint.address)).toEqual(["10.0.0.1", "10.0.0.2"]);
    }
  });

  it("reports no-endpoint when the picker has nothing", async () => {
    const r = await attemptEndpoints({ maxAttempts: 3, pick: () => undefined, attempt: async () => 1 });
    expect(r).toEqual({ ok: false, reason: "no-endpoint", failures: [] });
  });

  it("does not retry beyond the retry budget, and gives slots back", async () => {
    const budget = new RetryBudget({ budgetPercent: 0, minRetryConcurrency: 1 });
    const gate: (() => void)[] = [];
    const slow = attemptEndpoints({
      maxAttempts: 2,
      budget,
      pick: ({ attempt }) => eps[attempt],
      attempt: (_e, attempt) =>
        attempt === 0
          ? Promise.reject(new Error("x"))
          : new Promise<number>((res) => gate.push(() => res(1))),
    });
    await new Promise((r) => setTimeout(r, 5));
    // The first request holds the only retry slot.
    const second = await attemptEndpoints({
      maxAttempts: 2,
      budget,
      pick: () => eps[0],
      attempt: async () => {
        throw new Error("y");
      },
    });
    expect(second.ok === false && second.reason).toBe("retry-budget");
    for (const g of gate) g();
    expect((await slow).ok).toBe(true);
    expect(budget.tryRetry()).toBeDefined();
  });

  it("respects the circuit breaker's retry limit", async () => {
    const breaker = new CircuitBreaker({ maxRetries: 0 });
    const r = await attemptEndpoints({
      maxAttempts: 3,
      retryGate: () => breaker.tryRetry(),
      pick: () => eps[0],
      attempt: async () => {
        throw new Error("z");
      },
    });
    expect(r.ok === false && r.reason).toBe("circuit-open");
  });
});

describe("CircuitBreaker", () => {
  it("opens at maxConnections and closes as leases are released", () => {
    const b = new CircuitBreaker({ maxConnections: 2 });
    const l1 = b.tryConnection();
    const l2 = b.tryConnection();
    expect(b.connectionsOpen).toBe(true);
    expect(b.tryConnection()).toBeUndefined();
    l1?.release();
    l1?.release();
    expect(b.activeConnections).toBe(1);
    expect(b.tryConnection()).toBeDefined();
    l2?.release();
  });

  it("defaults to Envoy's thresholds", () => {
    const b = new CircuitBreaker();
    const leases = Array.from({ length: 1024 }, () => b.tryConnection());
    expect(leases.every(Boolean)).toBe(true);
    expect(b.tryConnection()).toBeUndefined();
    expect([b.tryRetry(), b.tryRetry(), b.tryRetry(), b.tryRetry()].filter(Boolean)).toHaveLength(3);
  });
});
