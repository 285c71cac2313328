// The control server as the plugin sees it: IPAM attachments and Workloads over the HTTP API.
// Transport failures (refused, reset, timed out) become TryAgainLater (11); HTTP errors keep
// the server's message. node:http rather than fetch: the plugin is a short-lived process, and
// fetch's first call costs tens of milliseconds of start-up on every ADD and DEL.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { PluginError, PluginErrorCode } from "./errors.js";

export interface Assignment {
  network: string;
  address: string;
  prefixLength: number;
  gateway: string;
  cidr: string;
  created: boolean;
}

export interface WorkloadObject {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { networks?: { name: string; address?: string }[] };
}

interface ErrorBody {
  error?: { code?: string; message?: string; details?: { path?: string; message?: string }[] };
}

export class ControlClient {
  readonly #base: string;
  readonly #timeoutMs: number;

  constructor(base: string, timeoutMs: number) {
    this.#base = base;
    this.#timeoutMs = timeoutMs;
  }

  get server(): string {
    return this.#base;
  }

  /** The raw call: status and body, or TryAgainLater when the server cannot be reached. */
  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    let res: { status: number; text: string };
    try {
      res = await send(
        `${this.#base}${path}`,
        method,
        body === undefined ? undefined : JSON.stringify(body),
        this.#timeoutMs,
      );
    } catch (err) {
      throw new PluginError(
        PluginErrorCode.TryAgainLater,
        `control server ${this.#base} unreachable`,
        err instanceof Error ? err.message : String(err),
        { cause: err },
      );
    }
    let parsed: unknown = res.text;
    try {
      parsed = res.text === "" ? undefined : JSON.parse(res.text);
    } catch {
      // Not JSON (a proxy's error page): keep the text for the message.
    }
    return { status: res.status, body: parsed };
  }

  async #json<T>(method: string, path: string, body?: unknown, allow404 = false): Promise<T | undefined> {
    const res = await this.request(method, path, body);
    if (res.status >= 200 && res.status < 300) return res.body as T;
    if (res.status === 404 && allow404) return undefined;
    throw this.#failure(res.status, res.body, `${method} ${path}`);
  }

  #failure(status: number, body: unknown, what: string): PluginError {
    const err = (body as ErrorBody | undefined)?.error;
    const message = err?.message ?? `${what}: HTTP ${status}`;
    const details = err?.details?.map((d) => (d.path ? `${d.path}: ${d.message}` : d.message)).join("; ");
    if (status === 503 && details?.includes("exhausted"))
      return new PluginError(PluginErrorCode.Exhausted, message, details);
    if (status === 503 || status === 429 || status >= 500)
      return new PluginError(PluginErrorCode.TryAgainLater, message, details);
    if (status === 404 || status === 400)
      return new PluginError(PluginErrorCode.InvalidConfig, message, details);
    return new PluginError(PluginErrorCode.Internal, message, details);
  }

  #attachment(network: string, containerId: string, ifname: string): string {
    return `/v1/ipam/networks/${encodeURIComponent(network)}/attachments/${encodeURIComponent(containerId)}/${encodeURIComponent(ifname)}`;
  }

  async allocate(
    network: string,
    containerId: string,
    ifname: string,
    body: { workload?: string; node?: string },
  ): Promise<Assignment> {
    return (await this.#json<Assignment>(
      "PUT",
      this.#attachment(network, containerId, ifname),
      body,
    )) as Assignment;
  }

  lookup(network: string, containerId: string, ifname: string): Promise<Assignment | undefined> {
    return this.#json<Assignment>("GET", this.#attachment(network, containerId, ifname), undefined, true);
  }

  async release(network: string, containerId: string, ifname: string): Promise<void> {
    // A Network deleted meanwhile has no lease left to release.
    await this.#json("DELETE", this.#attachment(network, containerId, ifname), undefined, true);
  }

  async gc(network: string, node: string, keep: { containerId: string; ifname: string }[]): Promise<void> {
    await this.#json("POST", `/v1/ipam/networks/${encodeURIComponent(network)}/gc`, { node, keep }, true);
  }

  network(network: string): Promise<{ free: string } | undefined> {
    return this.#json("GET", `/v1/ipam/networks/${encodeURIComponent(network)}`, undefined, true);
  }

  async applyWorkload(doc: unknown): Promise<void> {
    await this.#json("POST", "/v1/apply", [doc]);
  }

  getWorkload(name: string): Promise<WorkloadObject | undefined> {
    return this.#json<WorkloadObject>("GET", `/v1/workloads/${encodeURIComponent(name)}`, undefined, true);
  }

  async listWorkloads(): Promise<WorkloadObject[]> {
    return ((await this.#json<{ items: WorkloadObject[] }>("GET", "/v1/workloads")) ?? { items: [] }).items;
  }

  async deleteWorkload(name: string): Promise<void> {
    await this.#json("DELETE", `/v1/workloads/${encodeURIComponent(name)}`, undefined, true);
  }
}

/** One request, the whole body read; rejects on transport failure or after `timeoutMs`. */
function send(
  url: string,
  method: string,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(
      u,
      {
        method,
        timeout: timeoutMs,
        headers:
          body === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
