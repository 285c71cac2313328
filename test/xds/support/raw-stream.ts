// A raw xDS stream for conformance tests: plain grpc-js calls with the wire codec, no AdsClient.
// It checks on every response that nonces never repeat on the stream.
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  type WireDecoded,
} from "../../../xds/wire/discovery.js";
import { ADS_PATHS } from "../../../xds/wire/services.js";

export interface StreamEnd {
  code: number;
  details: string;
}

class Queue<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((v: T) => void)[] = [];

  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#items.push(v);
  }

  next(timeoutMs: number, what: string): Promise<T> {
    const v = this.#items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (x: T) => {
        clearTimeout(timer);
        resolve(x);
      };
      this.#waiters.push(done);
    });
  }

  get size(): number {
    return this.#items.length;
  }
}

export class RawStream<Req, Res extends { nonce: string }> {
  readonly #responses = new Queue<Res>();
  readonly #nonces = new Set<string>();
  readonly #call: ReturnType<Client["makeBidiStreamRequest"]>;
  readonly ended: Promise<StreamEnd>;

  constructor(
    client: Client,
    path: string,
    encode: (r: Req) => Buffer,
    decode: (b: Buffer) => WireDecoded<Res>,
  ) {
    this.#call = client.makeBidiStreamRequest(path, encode as (r: unknown) => Buffer, decode, new Metadata());
    this.ended = new Promise<StreamEnd>((resolve) => {
      this.#call.on("status", (s: { code: number; details: string }) =>
        resolve({ code: s.code, details: s.details }),
      );
      this.#call.on("error", (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    });
    this.#call.on("data", (d: WireDecoded<Res>) => {
      if (!d.ok) throw new Error(d.error);
      if (this.#nonces.has(d.value.nonce)) throw new Error(`nonce ${d.value.nonce} repeated on one stream`);
      this.#nonces.add(d.value.nonce);
      this.#responses.push(d.value);
    });
  }

  send(req: Req): void {
    this.#call.write(req);
  }

  /** Writes bytes as they are, bypassing the codec (for undecodable-input tests). */
  sendRaw(bytes: Buffer): void {
    // The request serializer is the identity for Buffers handed in through this path.
    (this.#call as unknown as { write(b: unknown): void }).write({ __raw: bytes });
  }

  next(timeoutMs = 5000): Promise<Res> {
    return this.#responses.next(timeoutMs, "response");
  }

  get buffered(): number {
    return this.#responses.size;
  }

  close(): void {
    this.#call.cancel();
  }
}

function rawAware<T>(encode: (r: T) => Buffer): (r: T) => Buffer {
  return (r) => {
    const raw = (r as { __raw?: Buffer }).__raw;
    return raw ?? encode(r);
  };
}

export function xdsClient(port: number): Client {
  return new Client(`127.0.0.1:${port}`, credentials.createInsecure());
}

export function sotwStream(
  client: Client,
  path: string = ADS_PATHS.sotw,
): RawStream<DiscoveryRequest, DiscoveryResponse> {
  return new RawStream(client, path, rawAware(encodeDiscoveryRequest), decodeDiscoveryResponse);
}

export function deltaStream(
  client: Client,
  path: string = ADS_PATHS.delta,
): RawStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  return new RawStream(client, path, rawAware(encodeDeltaDiscoveryRequest), decodeDeltaDiscoveryResponse);
}

/** SotW request with the defaults filled in. */
export function req(p: Partial<DiscoveryRequest> & { typeUrl: string }): DiscoveryRequest {
  return { versionInfo: "", resourceNames: [], responseNonce: "", ...p };
}

export function dreq(p: Partial<DeltaDiscoveryRequest> & { typeUrl: string }): DeltaDiscoveryRequest {
  return {
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    initialResourceVersions: {},
    responseNonce: "",
    ...p,
  };
}

export { status };
