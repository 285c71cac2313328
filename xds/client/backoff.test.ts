import { describe, expect, it } from "vitest";
import { Backoff, checkBackoffOptions } from "./backoff.js";

describe("Backoff", () => {
  it("grows by the multiplier up to the maximum", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
  });

  it("jitter spreads each delay within ±jitter", () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0);
    const high = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, () => 0.999999);
    expect(low.next()).toBe(80);
    expect(high.next()).toBe(120);
  });

  it("reset starts again from the initial delay", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });

  it.each([
    { name: "initialMs", o: { initialMs: 0, maxMs: 1, multiplier: 2, jitter: 0 } },
    { name: "maxMs", o: { initialMs: 10, maxMs: 1, multiplier: 2, jitter: 0 } },
    { name: "multiplier", o: { initialMs: 1, maxMs: 1, multiplier: 0.5, jitter: 0 } },
    { name: "jitter", o: { initialMs: 1, maxMs: 1, multiplier: 2, jitter: 2 } },
  ])("rejects a bad $name", ({ name, o }) => {
    expect(() => checkBackoffOptions(o)).toThrow(new RegExp(name));
  });
});
