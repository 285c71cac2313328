import { describe, expect, it } from "vitest";
import { certWindow, parseCertLifetime } from "./cert-window.js";

const H = 3_600_000;

describe("certWindow", () => {
  it("24 h lifetime: windows of 16 h, backdated 60 s", () => {
    const w = certWindow(0, 24 * H);
    expect(w.index).toBe(0);
    expect(w.notBefore.getTime()).toBe(-60_000);
    expect(w.notAfter.getTime()).toBe(24 * H);
    expect(w.renewAt.getTime()).toBe(16 * H);

    const k = 123_456;
    const start = k * 16 * H;
    for (const now of [start, start + 1, start + 16 * H - 1]) {
      const x = certWindow(now, 24 * H);
      expect(x.index).toBe(k);
      expect(x.notBefore.getTime()).toBe(start - 60_000);
      expect(x.notAfter.getTime()).toBe(start + 24 * H);
      expect(x.renewAt.getTime()).toBe(start + 16 * H);
    }
    expect(certWindow(start + 16 * H, 24 * H).index).toBe(k + 1);
    expect(certWindow(start - 1, 24 * H).index).toBe(k - 1);
  });

  it("renews at two thirds of the lifetime, so a window's cert outlives it by a third", () => {
    const lifetime = 90 * 60_000;
    const now = Date.UTC(2026, 10, 28, 3, 17, 42, 123);
    const w = certWindow(now, lifetime);
    const r = (2 * lifetime) / 3;
    expect(w.renewAt.getTime() - (w.notBefore.getTime() + 60_000)).toBe(r);
    expect(w.notAfter.getTime() - w.renewAt.getTime()).toBe(lifetime / 3);
    expect(now).toBeGreaterThanOrEqual(w.notBefore.getTime());
    expect(now).toBeLessThan(w.renewAt.getTime());
    expect(certWindow(w.renewAt.getTime(), lifetime).index).toBe(w.index + 1);
    expect(certWindow(w.renewAt.getTime() - 1, lifetime).index).toBe(w.index);
  });

  it("short lifetimes backdate by R/2, not 60 s", () => {
    const w = certWindow(1000, 300); // R = 200 ms
    expect(w.index).toBe(5);
    expect(w.notBefore.getTime()).toBe(900);
    expect(w.notAfter.getTime()).toBe(1300);
    expect(w.renewAt.getTime()).toBe(1200);
  });

  it("a fractional R still has the next window begun at renewAt", () => {
    for (let now = 0; now < 20_000; now += 37) {
      const w = certWindow(now, 1000); // R = 666.67 ms
      expect(certWindow(w.renewAt.getTime(), 1000).index).toBe(w.index + 1);
      expect(w.renewAt.getTime()).toBeGreaterThan(now);
    }
  });

  it("refuses a non-positive lifetime", () => {
    expect(() => certWindow(0, 0)).toThrow(/lifetime/);
    expect(() => certWindow(0, Number.NaN)).toThrow(/lifetime/);
  });
});

describe("parseCertLifetime", () => {
  it("reads h, m, s, ms", () => {
    expect(parseCertLifetime("24h")).toBe(24 * H);
    expect(parseCertLifetime("90m")).toBe(90 * 60_000);
    expect(parseCertLifetime("3s")).toBe(3000);
    expect(parseCertLifetime("500ms")).toBe(500);
  });

  it("refuses junk and zero", () => {
    for (const bad of ["", "soon", "1d", "-1h", "0s"]) {
      expect(() => parseCertLifetime(bad)).toThrow(/bad certificate lifetime/);
    }
  });
});
