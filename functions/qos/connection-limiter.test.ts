import { describe, expect, it } from "vitest";
import { ConnectionLimiter } from "./connection-limiter.js";

describe("ConnectionLimiter (connection_limit)", () => {
  it("admits up to maxConnections and refuses the next", () => {
    const l = new ConnectionLimiter({ maxConnections: 2 });
    const a = l.tryAdmit();
    const b = l.tryAdmit();
    expect(a && b).toBeTruthy();
    expect(l.tryAdmit()).toBeUndefined();
    expect(l.active).toBe(2);
  });

  it("releases a slot once even when release runs twice (close and error)", () => {
    const l = new ConnectionLimiter({ maxConnections: 1 });
    const a = l.tryAdmit();
    a?.release();
    a?.release();
    expect(l.active).toBe(0);
    const b = l.tryAdmit();
    expect(b).toBeDefined();
    expect(l.tryAdmit()).toBeUndefined();
  });

  it("applies a lower limit to new connections and keeps the admitted ones", () => {
    const l = new ConnectionLimiter({ maxConnections: 3, delayMs: 5 });
    const held = [l.tryAdmit(), l.tryAdmit(), l.tryAdmit()];
    l.update({ maxConnections: 1 });
    expect(l.delayMs).toBe(0);
    expect(l.tryAdmit()).toBeUndefined();
    for (const h of held) h?.release();
    expect(l.tryAdmit()).toBeDefined();
  });
});
