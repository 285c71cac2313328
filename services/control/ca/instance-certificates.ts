// Keeps one certificate per function instance that sent a CSR, for the current renewal window, and
// re-issues every one when the window turns. get() is synchronous so snapshot builders can call it.
import { type CertWindow, certWindow } from "./cert-window.js";
import type { MeshCa } from "./mesh-ca.js";

export interface InstanceCertificate {
  certPem: string;
  notAfter: Date;
  spiffeId: string;
}

export interface InstanceCsr {
  id: string;
  function: string;
  csr?: string;
}

export interface InstanceCertificatesOptions {
  ca: MeshCa;
  lifetimeMs: number;
  /** After a batch of issuances stored at least one certificate. */
  onChange: () => void;
  /** A CSR (or its issuance) failed; it is not retried until the instance sends another CSR. */
  onError?: (id: string, err: unknown) => void;
  now?: () => number;
}

interface Entry {
  function: string;
  csr: string;
  spiffeId: string;
  cert?: InstanceCertificate & { window: number };
  /** The window being issued for, while an issuance runs. */
  pending?: number;
  failed: boolean;
}

export class InstanceCertificates {
  readonly #ca: MeshCa;
  readonly #lifetimeMs: number;
  readonly #onChange: () => void;
  readonly #onError: (id: string, err: unknown) => void;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: InstanceCertificatesOptions) {
    this.#ca = options.ca;
    this.#lifetimeMs = options.lifetimeMs;
    this.#onChange = options.onChange;
    this.#onError = options.onError ?? (() => {});
    this.#now = options.now ?? Date.now;
    certWindow(0, this.#lifetimeMs); // validates the lifetime now rather than at the first sync
  }

  sync(instances: readonly InstanceCsr[]): void {
    if (this.#closed) return;
    const listed = new Set<string>();
    for (const instance of instances) {
      if (instance.csr === undefined || instance.csr === "") continue;
      listed.add(instance.id);
      const entry = this.#entries.get(instance.id);
      if (entry && entry.csr === instance.csr && entry.function === instance.function) continue;
      let spiffeId: string;
      try {
        spiffeId = this.#ca.spiffeId(instance.function, instance.id);
      } catch (err) {
        this.#entries.set(instance.id, {
          function: instance.function,
          csr: instance.csr,
          spiffeId: "",
          failed: true,
        });
        this.#onError(instance.id, err);
        continue;
      }
      this.#entries.set(instance.id, {
        function: instance.function,
        csr: instance.csr,
        spiffeId,
        failed: false,
      });
    }
    for (const id of this.#entries.keys()) if (!listed.has(id)) this.#entries.delete(id);
    this.#issueMissing();
  }

  get(id: string): InstanceCertificate | undefined {
    const entry = this.#entries.get(id);
    const cert = entry?.cert;
    if (!entry || !cert) return undefined;
    const now = this.#now();
    const current = certWindow(now, this.#lifetimeMs).index;
    if (cert.window === current) return view(cert);
    // Just after the window turns, until its certificate is issued (milliseconds), the previous one,
    // still valid, rather than nothing: a vanished secret would make hosts tear down listeners.
    if (cert.window === current - 1 && !entry.failed && cert.notAfter.getTime() > now) return view(cert);
    return undefined;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#entries.clear();
  }

  /** Starts issuing for every entry without a certificate for the current window; one onChange per batch. */
  #issueMissing(): void {
    const window = certWindow(this.#now(), this.#lifetimeMs);
    const batch: Promise<boolean>[] = [];
    for (const [id, entry] of this.#entries) {
      if (entry.failed || entry.cert?.window === window.index || entry.pending === window.index) continue;
      batch.push(this.#issue(id, entry, window));
    }
    this.#schedule(window);
    if (batch.length === 0) return;
    void Promise.allSettled(batch).then((results) => {
      if (!this.#closed && results.some((r) => r.status === "fulfilled" && r.value)) this.#onChange();
    });
  }

  async #issue(id: string, entry: Entry, window: CertWindow): Promise<boolean> {
    entry.pending = window.index;
    try {
      const issued = await this.#ca.issue(entry.csr, entry.spiffeId, window);
      // The instance may have gone, or sent another CSR, meanwhile.
      if (this.#entries.get(id) !== entry) return false;
      if (!entry.cert || entry.cert.window < window.index) {
        entry.cert = {
          certPem: issued.certPem,
          notAfter: issued.notAfter,
          spiffeId: entry.spiffeId,
          window: window.index,
        };
      }
      return true;
    } catch (err) {
      if (this.#entries.get(id) !== entry) return false;
      entry.failed = true;
      this.#onError(id, err);
      return false;
    } finally {
      if (entry.pending === window.index) entry.pending = undefined;
    }
  }

  #schedule(window: CertWindow): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#entries.size === 0) return;
    // Timers may fire a little early: #issueMissing recomputes the window and, if it has not turned, re-arms.
    const delay = Math.max(1, window.renewAt.getTime() - this.#now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#issueMissing();
    }, delay);
    this.#timer.unref();
  }
}

function view(cert: InstanceCertificate): InstanceCertificate {
  return { certPem: cert.certPem, notAfter: cert.notAfter, spiffeId: cert.spiffeId };
}
