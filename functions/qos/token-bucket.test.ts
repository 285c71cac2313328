import { describe, expect, it } from "vitest";
import { TokenBucket } from "./token-bucket.js";

function fakeClock(start = 1000) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

describe("TokenBucket (continuous)", () => {
  it("honours the burst: capacity tokens at once, then a wait", () => {
    const t = fakeClock();
    const b = new TokenBucket({ capacity: 10, tokensPerSecond: 100, clock: t.clock });
    for (let i = 0; i < 10; i++) expect(b.take()).toBe(0);
    expect(b.take()).toBeCloseTo(10, 6);
    t.advance(10);
    expect(b.take()).toBe(0);
  });

  it("returns a wait after which the take succeeds, taking nothing meanwhile", () => {
    const t = fakeClock();
    const b = new TokenBucket({ capacity: 1000, tokensPerSecond: 1000, initialTokens: 0, clock: t.clock });
    const wait = b.take(250);
    expect(wait).toBeCloseTo(250, 6);
    t.advance(wait);
    expect(b.take(250)).toBe(0);
    expect(b.available).toBeCloseTo(0, 6);
  });

  it("delivers the configured rate over a long run", () => {
    const t = fakeClock();
    const b = new TokenBucket({ capacity: 50, tokensPerSecond: 200, initialTokens: 0, clock: t.clock });
    let taken = 0;
    for (let ms = 0; ms < 10_000; ms += 7) {
      t.advance(7);
      while (b.take() === 0) taken++;
    }
    expect(taken).toBeGreaterThanOrEqual(1990);
    expect(taken).toBeLessThanOrEqual(2000);
  });

  it("never holds more than its capacity", () => {
    const t = fakeClock();
    const b = new TokenBucket({ capacity: 5, tokensPerSecond: 1000, clock: t.clock });
    t.advance(60_000);
    expect(b.available).toBe(5);
    expect(b.take(6)).toBe(Number.POSITIVE_INFINITY);
  });

  it("takeUpTo takes whole tokens present and refund gives them back", () => {
    const t = fakeClock();
    const b = new TokenBucket({ capacity: 100, tokensPerSecond: 10, initialTokens: 7.5, clock: t.clock });
    expect(b.takeUpTo(50)).toBe(7);
    expect(b.takeUpTo(50)).toBe(0);
    b.refund(3);
    expect(b.takeUpTo(2)).toBe(2);
    b.refund(1000);
    expect(b.available).toBe(100);
  });
});

describe("TokenBucket (Envoy fill interval)", () => {
  it("adds tokens_per_fill only at whole fill intervals", () => {
    const t = fakeClock();
    const b = new TokenBucket({
      capacity: 5,
      tokensPerFill: 2,
      fillIntervalMs: 100,
      initialTokens: 0,
      clock: t.clock,
    });
    expect(b.take()).toBe(100);
    t.advance(99);
    expect(b.take()).toBe(1);
    t.advance(1);
    expect(b.take(2)).toBe(0);
    t.advance(250); // two fills due, half an interval into the third
    expect(b.available).toBe(4);
    expect(b.take(5)).toBe(50); // the next fill keeps the original phase
    t.advance(50);
    expect(b.take(5)).toBe(0);
  });

  it("starts full, as Envoy's bucket does", () => {
    const b = new TokenBucket({
      capacity: 3,
      tokensPerFill: 1,
      fillIntervalMs: 1000,
      clock: fakeClock().clock,
    });
    expect([b.take(), b.take(), b.take()]).toEqual([0, 0, 0]);
    expect(b.take()).toBe(1000);
    expect(b.rate).toBe(1);
  });
});

describe("TokenBucket options", () => {
  it.each([
    { name: "zero capacity", o: { capacity: 0, tokensPerSecond: 1 }, msg: /capacity/ },
    { name: "negative rate", o: { capacity: 1, tokensPerSecond: -1 }, msg: /tokensPerSecond/ },
    {
      name: "zero fill interval",
      o: { capacity: 1, tokensPerFill: 1, fillIntervalMs: 0 },
      msg: /fillIntervalMs/,
    },
  ])("refuses $name with a coded error", ({ o, msg }) => {
    expect(() => new TokenBucket(o as ConstructorParameters<typeof TokenBucket>[0])).toThrow(msg);
    try {
      new TokenBucket(o as ConstructorParameters<typeof TokenBucket>[0]);
    } catch (e) {
      expect((e as { code?: string }).code).toBe("CATENA_SDK_INVALID_ARGUMENT");
    }
  });
});
