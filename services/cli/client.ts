// The CLI's view of the control server's HTTP API.
import { CatenaError, type ErrorCode, type ErrorDetail } from "../control/errors.js";
import type { CloudEvent } from "../control/events/types.js";
import { KIND_PLURALS, type Kind, type StoredResource } from "../control/model/resource.js";
import type { OpAction } from "../control/store/store.js";

export interface ApplyResponse {
  revision: number;
  items: { action: OpAction; object: StoredResource }[];
}

export interface XdsNodeStatus {
  id: string;
  cluster: string;
  connected: boolean;
  connectedAt: string;
  types: {
    typeUrl: string;
    sent?: string;
    acked?: string;
    nacked?: string;
    error?: string;
    resources: number;
  }[];
}

/** GET /v1/services/<name>/endpoints: a Service's endpoints and the index a watch continues from. */
export interface LookupResponse {
  service: string;
  index: number;
  endpoints: {
    address: string;
    port: number;
    weight: number;
    portName?: string;
    source: string;
    id?: string;
    owner?: string;
    healthy: boolean;
  }[];
}

/** The server could not be reached at all (as opposed to answering with an error). */
export class UnreachableError extends Error {
  override readonly name = "UnreachableError";
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  apply(documents: unknown[], options: { dryRun?: boolean } = {}): Promise<ApplyResponse> {
    return this.#request("POST", `/v1/apply${options.dryRun ? "?dryRun=true" : ""}`, { items: documents });
  }

  deleteMany(
    documents: unknown[],
    options: { dryRun?: boolean; ignoreNotFound?: boolean } = {},
  ): Promise<ApplyResponse> {
    const query = new URLSearchParams();
    if (options.dryRun) query.set("dryRun", "true");
    if (options.ignoreNotFound) query.set("ignoreNotFound", "true");
    return this.#request("POST", `/v1/delete${query.size > 0 ? `?${query}` : ""}`, { items: documents });
  }

  deleteOne(kind: Kind, name: string): Promise<ApplyResponse> {
    return this.#request("DELETE", `/v1/${KIND_PLURALS[kind]}/${encodeURIComponent(name)}`);
  }

  get(kind: Kind, name: string): Promise<StoredResource> {
    return this.#request("GET", `/v1/${KIND_PLURALS[kind]}/${encodeURIComponent(name)}`);
  }

  async list(kind: Kind, labelSelector?: string): Promise<StoredResource[]> {
    const query = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : "";
    const body = await this.#request<{ items: StoredResource[] }>("GET", `/v1/${KIND_PLURALS[kind]}${query}`);
    return body.items;
  }

  /** A Service's endpoints; with `index`, a blocking query that answers when they change (or after `wait`). */
  lookup(
    service: string,
    options: { healthy?: boolean; index?: number; wait?: string; signal?: AbortSignal } = {},
  ): Promise<LookupResponse> {
    const query = new URLSearchParams();
    if (options.healthy) query.set("healthy", "true");
    if (options.index !== undefined) query.set("index", String(options.index));
    if (options.wait) query.set("wait", options.wait);
    const qs = query.size > 0 ? `?${query}` : "";
    return this.#request(
      "GET",
      `/v1/services/${encodeURIComponent(service)}/endpoints${qs}`,
      undefined,
      options.signal,
    );
  }

  async xdsNodes(): Promise<XdsNodeStatus[]> {
    return (await this.#request<{ items: XdsNodeStatus[] }>("GET", "/v1/xds/nodes")).items;
  }

  async recentEvents(
    filter: { type?: string; kind?: string; name?: string },
    limit = 100,
  ): Promise<CloudEvent[]> {
    const query = new URLSearchParams({ ...filter, limit: String(limit) });
    const body = await this.#request<{ items: CloudEvent[] }>("GET", `/v1/events?${query}`);
    return body.items;
  }

  /** Follows the SSE feed until the signal aborts or the server ends it. */
  async *followEvents(filter: { type?: string }, signal?: AbortSignal): AsyncGenerator<CloudEvent> {
    const query = new URLSearchParams({ ...filter, follow: "true" });
    const res = await this.#fetch(`/v1/events?${query}`, {
      headers: { accept: "text/event-stream" },
      ...(signal ? { signal } : {}),
    });
    if (!res.ok || !res.body) throw await toError(res);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((line) => line.slice(6))
          .join("\n");
        if (data) yield JSON.parse(data) as CloudEvent;
        end = buffer.indexOf("\n\n");
      }
    }
  }

  async #request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.#fetch(path, {
      method,
      ...(signal ? { signal } : {}),
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    if (!res.ok) throw await toError(res);
    return (await res.json()) as T;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(new URL(path, this.baseUrl), init);
    } catch (err) {
      throw new UnreachableError(`cannot reach the control server at ${this.baseUrl}`, { cause: err });
    }
  }
}

async function toError(res: Response): Promise<CatenaError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as {
      error?: { code: ErrorCode; message: string; details?: ErrorDetail[] };
    };
    if (body.error) return new CatenaError(body.error.code, body.error.message, body.error.details ?? []);
  } catch {
    // not JSON: fall through
  }
  return new CatenaError("CATENA_INTERNAL", `HTTP ${res.status}: ${text.slice(0, 200)}`);
}
