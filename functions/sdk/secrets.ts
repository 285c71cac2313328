// SDS secrets as the host keeps them, and the TLS material a context plan resolves to: our certificate
// (its secret) with our own private key, and the trusted roots (theirs). Each secret carries a
// generation that changes with its content, so users can tell a rotation from a repeat and rebuild
// only then. A plan whose secrets have not all arrived has no material yet: its listener or cluster
// waits (Envoy's warming).
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { SecretPlan, TlsContextPlan } from "./tls-config.js";

interface Held {
  plan: SecretPlan;
  generation: number;
}

export class SecretStore {
  readonly #secrets = new Map<string, Held>();
  readonly #listeners = new Set<() => void>();
  #generation = 0;

  /** Adds or replaces a secret; listeners hear of it when the content changed. */
  set(plan: SecretPlan): void {
    const old = this.#secrets.get(plan.name);
    if (old && samePlan(old.plan, plan)) return;
    this.#secrets.set(plan.name, { plan, generation: ++this.#generation });
    this.#notify();
  }

  /** A removed secret stays in force for what already uses it; nothing new can use it. */
  delete(name: string): void {
    if (this.#secrets.delete(name)) this.#notify();
  }

  get(name: string): SecretPlan | undefined {
    return this.#secrets.get(name)?.plan;
  }

  generation(name: string): number | undefined {
    return this.#secrets.get(name)?.generation;
  }

  names(): string[] {
    return [...this.#secrets.keys()];
  }

  /** Called after every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}

function samePlan(a: SecretPlan, b: SecretPlan): boolean {
  if (a.kind === "certificate" && b.kind === "certificate") return a.certPem === b.certPem;
  if (a.kind === "validation" && b.kind === "validation") return a.caPem === b.caPem;
  return false;
}

export interface TlsMaterial {
  /** Changes whenever the certificate or the roots do. */
  key: string;
  /** For tls.Server#setSecureContext and createSecureContext. */
  options: SecureContextOptions;
  context: SecureContext;
}

/** Resolves context plans against the store and our private key; caches one context per key. */
export class TlsMaterials {
  readonly store: SecretStore;
  readonly #privateKeyPem: string;
  readonly #cache = new Map<string, TlsMaterial>();

  constructor(store: SecretStore, privateKeyPem: string) {
    this.store = store;
    this.#privateKeyPem = privateKeyPem;
  }

  /** Secrets the plan names that have not arrived (or are of the wrong kind). */
  missing(plan: TlsContextPlan): string[] {
    const out: string[] = [];
    const cert = this.store.get(plan.certificateSecret);
    if (cert?.kind !== "certificate") out.push(plan.certificateSecret);
    const ca = this.store.get(plan.validationSecret);
    if (ca?.kind !== "validation") out.push(plan.validationSecret);
    return out;
  }

  /** The material now, or undefined while a secret is missing. Never throws. */
  material(plan: TlsContextPlan): TlsMaterial | undefined {
    const cert = this.store.get(plan.certificateSecret);
    const ca = this.store.get(plan.validationSecret);
    if (cert?.kind !== "certificate" || ca?.kind !== "validation") return undefined;
    const key = `${plan.certificateSecret}#${this.store.generation(plan.certificateSecret)}|${plan.validationSecret}#${this.store.generation(plan.validationSecret)}`;
    let m = this.#cache.get(key);
    if (m) return m;
    const options: SecureContextOptions = {
      cert: cert.certPem,
      key: this.#privateKeyPem,
      ca: ca.caPem,
      minVersion: "TLSv1.3",
      maxVersion: "TLSv1.3",
    };
    try {
      m = { key, options, context: createSecureContext(options) };
    } catch {
      return undefined;
    }
    // Old generations are of no use to new connections; keep the cache small.
    for (const k of this.#cache.keys())
      if (k.startsWith(`${plan.certificateSecret}#`) && k.includes(`|${plan.validationSecret}#`))
        this.#cache.delete(k);
    this.#cache.set(key, m);
    return m;
  }
}
