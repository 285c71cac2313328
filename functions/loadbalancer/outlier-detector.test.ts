import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { OutlierDetector } from "./outlier-detector.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const keys = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i}:80`);

function detector(extra: ConstructorParameters<typeof OutlierDetector>[0] = {}) {
  const events: [string, boolean][] = [];
  const d = new OutlierDetector({
    consecutiveFailures: 3,
    baseEjectionMs: 1000,
    maxEjectionMs: 10_000,
    maxEjectionPercent: 50,
    clock: () => Date.now(),
    onTransition: (k, e) => events.push([k, e]),
    ...extra,
  });
  d.setEndpoints(keys(4));
  return { d, events };
}

describe("OutlierDetector", () => {
  it("ejects after consecutive failures only; a success resets the count", () => {
    const { d, events } = detector();
    d.reportFailure("10.0.0.0:80");
    d.reportFailure("10.0.0.0:80");
    d.reportSuccess("10.0.0.0:80");
    d.reportFailure("10.0.0.0:80");
    d.reportFailure("10.0.0.0:80");
    expect(d.isEjected("10.0.0.0:80")).toBe(false);
    d.reportFailure("10.0.0.0:80");
    expect(d.isEjected("10.0.0.0:80")).toBe(true);
    expect(events).toEqual([["10.0.0.0:80", true]]);
  });

  it("returns an endpoint after an ejection time that doubles with each ejection, up to the max", () => {
    const { d, events } = detector();
    const k = "10.0.0.1:80";
    const ejectFor = () => {
      for (let i = 0; i < 3; i++) d.reportFailure(k);
      const start = Date.now();
      vi.advanceTimersByTime(1);
      while (d.isEjected(k)) vi.advanceTimersByTime(100);
      return Date.now() - start;
    };
    expect(ejectFor()).toBeCloseTo(1000, -2);
    expect(ejectFor()).toBeCloseTo(2000, -2);
    expect(ejectFor()).toBeCloseTo(4000, -2);
    expect(ejectFor()).toBeCloseTo(8000, -2);
    expect(ejectFor()).toBeCloseTo(10_000, -2);
    expect(events.filter(([, e]) => !e)).toHaveLength(5);
  });

  it("decays the backoff while the endpoint behaves", () => {
    const { d } = detector();
    const k = "10.0.0.1:80";
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) d.reportFailure(k);
      vi.advanceTimersByTime(20_000);
    }
    // Three ejections, then 20 s in: the count has decayed, so the next ejection is short again.
    vi.advanceTimersByTime(60_000);
    for (let i = 0; i < 3; i++) d.reportFailure(k);
    vi.advanceTimersByTime(1001);
    expect(d.isEjected(k)).toBe(false);
  });

  it("uses Envoy's linear multiplier when asked", () => {
    const { d } = detector({ backoff: "linear" });
    const k = "10.0.0.2:80";
    for (let i = 0; i < 3; i++) d.reportFailure(k);
    vi.advanceTimersByTime(1001);
    for (let i = 0; i < 3; i++) d.reportFailure(k);
    vi.advanceTimersByTime(1999);
    expect(d.isEjected(k)).toBe(true);
    vi.advanceTimersByTime(2);
    expect(d.isEjected(k)).toBe(false);
  });

  it("never ejects more than maxEjectionPercent, but always allows one", () => {
    const { d } = detector({ maxEjectionPercent: 50 });
    for (const k of keys(4)) for (let i = 0; i < 3; i++) d.reportFailure(k);
    expect(d.ejected).toBe(2);
    const tiny = detector({ maxEjectionPercent: 1 }).d;
    for (const k of keys(4)) for (let i = 0; i < 3; i++) tiny.reportFailure(k);
    expect(tiny.ejected).toBe(1);
  });

  it("forgets removed endpoints and reports nothing after close", () => {
    const { d, events } = detector();
    for (let i = 0; i < 3; i++) d.reportFailure("10.0.0.3:80");
    d.setEndpoints(keys(3));
    expect(d.ejected).toBe(0);
    for (let i = 0; i < 3; i++) d.reportFailure("10.0.0.0:80");
    d.close();
    vi.advanceTimersByTime(60_000);
    expect(events.filter(([, e]) => !e)).toEqual([]);
  });
});
