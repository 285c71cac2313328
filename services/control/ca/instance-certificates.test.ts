import { X509Certificate } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createIdentity, type Identity } from "../../../functions/sdk/identity.js";
import { certWindow } from "./cert-window.js";
import { InstanceCertificates } from "./instance-certificates.js";
import { MeshCa } from "./mesh-ca.js";

const DAY = 24 * 3_600_000;
let tmp: string;
let ca: MeshCa;
let a: Identity;
let b: Identity;
const open: InstanceCertificates[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "catena-ca-inst-"));
  ca = await MeshCa.open({ dataDir: tmp, trustDomain: "catena.local" });
  [a, b] = await Promise.all([createIdentity("a"), createIdentity("b")]);
  return () => rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  for (const certs of open.splice(0)) certs.close();
});

function track(certs: InstanceCertificates): InstanceCertificates {
  open.push(certs);
  return certs;
}

/** Resolves on the next onChange. */
function changes() {
  let wake: () => void = () => {};
  let count = 0;
  return {
    onChange: () => {
      count++;
      wake();
    },
    next: () => new Promise<void>((resolve) => (wake = resolve)),
    get count() {
      return count;
    },
  };
}

describe("InstanceCertificates", () => {
  it("issues for instances with a CSR, once per batch, and drops removed ones", async () => {
    const c = changes();
    const certs = track(new InstanceCertificates({ ca, lifetimeMs: DAY, onChange: c.onChange }));
    const changed = c.next();
    certs.sync([
      { id: "vpn-a-0", function: "vpn-a", csr: a.csrPem },
      { id: "vpn-b-0", function: "vpn-b", csr: b.csrPem },
      { id: "fw-0", function: "fw" },
    ]);
    expect(certs.get("vpn-a-0")).toBeUndefined(); // issuing is asynchronous
    await changed;
    expect(c.count).toBe(1);

    const got = certs.get("vpn-a-0")!;
    expect(got.spiffeId).toBe("spiffe://catena.local/function/vpn-a/vpn-a-0");
    expect(a.matches(got.certPem)).toBe(true);
    expect(new X509Certificate(got.certPem).subjectAltName).toBe(`URI:${got.spiffeId}`);
    expect(got.notAfter.getTime()).toBe(certWindow(Date.now(), DAY).notAfter.getTime());
    expect(b.matches(certs.get("vpn-b-0")!.certPem)).toBe(true);
    expect(certs.get("fw-0")).toBeUndefined();

    // The same CSRs again: nothing to issue, no onChange.
    certs.sync([
      { id: "vpn-a-0", function: "vpn-a", csr: a.csrPem },
      { id: "vpn-b-0", function: "vpn-b", csr: b.csrPem },
    ]);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.count).toBe(1);

    certs.sync([{ id: "vpn-b-0", function: "vpn-b", csr: b.csrPem }]);
    expect(certs.get("vpn-a-0")).toBeUndefined();
    expect(certs.get("vpn-b-0")).toBeDefined();
  });

  it("re-issues when the CSR changes", async () => {
    const c = changes();
    const certs = track(new InstanceCertificates({ ca, lifetimeMs: DAY, onChange: c.onChange }));
    let changed = c.next();
    certs.sync([{ id: "i", function: "f", csr: a.csrPem }]);
    await changed;
    changed = c.next();
    certs.sync([{ id: "i", function: "f", csr: b.csrPem }]);
    await changed;
    expect(b.matches(certs.get("i")!.certPem)).toBe(true);
  });

  it("reports a bad CSR once and does not retry it until it changes", async () => {
    const c = changes();
    const errors: [string, string][] = [];
    const certs = track(
      new InstanceCertificates({
        ca,
        lifetimeMs: DAY,
        onChange: c.onChange,
        onError: (id, err) => errors.push([id, (err as Error).message]),
      }),
    );
    certs.sync([{ id: "i", function: "f", csr: "garbage" }]);
    await new Promise((r) => setTimeout(r, 50));
    certs.sync([{ id: "i", function: "f", csr: "garbage" }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toEqual([["i", "CSR is not PEM (no CERTIFICATE REQUEST block)"]]);
    expect(c.count).toBe(0);
    expect(certs.get("i")).toBeUndefined();

    const changed = c.next();
    certs.sync([{ id: "i", function: "f", csr: a.csrPem }]);
    await changed;
    expect(certs.get("i")).toBeDefined();
    expect(errors).toHaveLength(1);
  });

  it("renews everyone when the window turns (300 ms lifetime, real timers)", async () => {
    const lifetimeMs = 300; // R = 200 ms
    const issued: { id: string; window: number; certPem: string }[] = [];
    const spyCa = {
      spiffeId: (fn: string, id: string) => ca.spiffeId(fn, id),
      issue: async (...args: Parameters<MeshCa["issue"]>) => {
        const out = await ca.issue(...args);
        issued.push({ id: args[1].split("/").pop()!, window: args[2].index, certPem: out.certPem });
        return out;
      },
    } as unknown as MeshCa;
    // What get() returns as each onChange fires. With sub-second windows the cert's validity (whole
    // seconds in X.509) may already be over by then, so an undefined is allowed, a foreign cert is not.
    const seen: (string | undefined)[] = [];
    let certs: InstanceCertificates | undefined;
    let wake = () => {};
    const onChange = () => {
      seen.push(certs?.get("a")?.certPem);
      wake();
    };
    certs = track(new InstanceCertificates({ ca: spyCa, lifetimeMs, onChange }));
    const three = new Promise<void>((resolve) => {
      wake = () => seen.length >= 3 && resolve();
    });
    certs.sync([
      { id: "a", function: "f", csr: a.csrPem },
      { id: "b", function: "f", csr: b.csrPem },
    ]);
    await three; // the first issuance, then two renewals with no sync in between
    for (const pem of seen) if (pem !== undefined) expect(a.matches(pem)).toBe(true);
    for (const [id, identity] of [
      ["a", a],
      ["b", b],
    ] as const) {
      const mine = issued.filter((i) => i.id === id);
      expect(mine.length).toBeGreaterThanOrEqual(3);
      for (const i of mine) expect(identity.matches(i.certPem)).toBe(true);
      const windows = mine.map((i) => i.window);
      expect(new Set(windows).size).toBe(windows.length); // one issuance per window
      expect(windows).toEqual([...windows].sort((x, y) => x - y));
    }
  });

  it("serves the previous certificate while the next window's is being issued", async () => {
    let now = certWindow(Date.now(), DAY).renewAt.getTime() - 1000;
    let release = () => {};
    let gate = Promise.resolve();
    const slowCa = {
      spiffeId: (fn: string, id: string) => ca.spiffeId(fn, id),
      issue: async (...args: Parameters<MeshCa["issue"]>) => {
        await gate;
        return ca.issue(...args);
      },
    } as unknown as MeshCa;
    let wake = () => {};
    const certs = track(
      new InstanceCertificates({ ca: slowCa, lifetimeMs: DAY, onChange: () => wake(), now: () => now }),
    );
    let changed = new Promise<void>((resolve) => (wake = resolve));
    certs.sync([{ id: "a", function: "f", csr: a.csrPem }]);
    await changed;
    const old = certs.get("a")!.certPem;

    gate = new Promise<void>((resolve) => (release = resolve));
    changed = new Promise<void>((resolve) => (wake = resolve));
    now += 1000; // the window turns; the renewal timer (armed for 1 s of fake time) fires
    await new Promise((r) => setTimeout(r, 1100));
    expect(certs.get("a")?.certPem).toBe(old);
    release();
    await changed;
    const renewed = certs.get("a")!.certPem;
    expect(renewed).not.toBe(old);
    expect(a.matches(renewed)).toBe(true);
  });

  it("stops the timer when closed or when nobody is left", async () => {
    const c = changes();
    const certs = track(new InstanceCertificates({ ca, lifetimeMs: 300, onChange: c.onChange }));
    const changed = c.next();
    certs.sync([{ id: "a", function: "f", csr: a.csrPem }]);
    await changed;
    certs.sync([]);
    const before = c.count;
    await new Promise((r) => setTimeout(r, 500));
    expect(c.count).toBe(before);
  });
});
